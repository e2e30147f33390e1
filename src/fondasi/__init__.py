"""fondasi: a local-first workbench for pre-trained models.

Know the models (``load_catalog``), choose one (``recommend``), use it
(``model(id).generate(...)``, ``.embed(...)``), prompt it zero-shot or few-shot
(``Prompt.load(name).render(...)``, ``ask(model, template, ...)``), and — as the other
layers land —
adapt, measure, guard and serve it.
"""

from __future__ import annotations

from fondasi.api import model
from fondasi.backends.base import Capability
from fondasi.catalog import Catalog, Kind, ModelCard, Task
from fondasi.errors import (
    BadInputError,
    CatalogError,
    FondasiError,
    MissingExtraError,
    UnknownModelError,
)
from fondasi.models.contract import CapabilityError, ModelHandle
from fondasi.models.handle import Model
from fondasi.models.prompting import Answer, ask
from fondasi.models.router import Fallback, PrivateRoute
from fondasi.models.split import Split
from fondasi.prompts.parse import OutputParseError
from fondasi.prompts.render import Rendered
from fondasi.prompts.sandbox import PromptError
from fondasi.prompts.template import PromptTemplate as Prompt
from fondasi.recommend import Ranking, Recommendation, Requirements, rank
from fondasi.settings import Settings
from fondasi.system import Hardware
from fondasi.types import Completion, GenerateOptions, Message

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "BadInputError",
    "Capability",
    "CapabilityError",
    "Catalog",
    "CatalogError",
    "Completion",
    "Fallback",
    "FondasiError",
    "GenerateOptions",
    "Hardware",
    "Kind",
    "Message",
    "MissingExtraError",
    "Model",
    "ModelCard",
    "ModelHandle",
    "OutputParseError",
    "PrivateRoute",
    "Prompt",
    "PromptError",
    "Ranking",
    "Recommendation",
    "Rendered",
    "Requirements",
    "Settings",
    "Split",
    "Task",
    "UnknownModelError",
    "__version__",
    "ask",
    "card",
    "load_catalog",
    "model",
    "recommend",
]


def load_catalog(settings: Settings | None = None) -> Catalog:
    """The built-in model cards plus the user's own (``FONDASI_HOME/catalog/*.yaml``)."""
    settings = settings or Settings.load()
    return Catalog.load(settings.card_dirs())


def card(model_id: str, settings: Settings | None = None) -> ModelCard:
    """One model's card; an unknown id raises ``UnknownModelError`` naming close matches."""
    return load_catalog(settings).get(model_id)


def recommend(
    requirements: Requirements,
    *,
    catalog: Catalog | None = None,
    hardware: Hardware | None = None,
    settings: Settings | None = None,
) -> list[Recommendation]:
    """The best catalog models for ``requirements``, best first, each with its reasons."""
    from fondasi import system

    ranking = rank(requirements, catalog or load_catalog(settings), hardware or system.detect())
    return ranking.picks
