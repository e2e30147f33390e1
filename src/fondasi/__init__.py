"""fondasi: a local-first workbench for pre-trained models.

Know the models (``load_catalog``), choose one (``recommend``), use it
(``model(id).generate(...)``, ``.embed(...)``), prompt it zero-shot or few-shot
(``Prompt.load(name).render(...)``, ``ask(model, template, ...)``), and — as the other
layers land —
adapt, measure, guard and serve it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fondasi.backends.base import Capability
from fondasi.catalog import Catalog, Kind, ModelCard, Task
from fondasi.errors import (
    BadInputError,
    CatalogError,
    FondasiError,
    MissingExtraError,
    UnknownModelError,
)
from fondasi.models.handle import CapabilityError, Model
from fondasi.models.prompting import Answer, ask
from fondasi.prompts.parse import OutputParseError
from fondasi.prompts.render import Rendered
from fondasi.prompts.sandbox import PromptError
from fondasi.prompts.template import PromptTemplate as Prompt
from fondasi.recommend import Ranking, Recommendation, Requirements, rank
from fondasi.models.router import Fallback, PrivateRoute, route
from fondasi.settings import Settings
from fondasi.system import Hardware
from fondasi.types import Completion, GenerateOptions, Message

if TYPE_CHECKING:
    from fondasi.guard.wrap import GuardedModel

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
    "OutputParseError",
    "PrivateRoute",
    "Prompt",
    "PromptError",
    "Ranking",
    "Recommendation",
    "Rendered",
    "Requirements",
    "Settings",
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


def model(
    model_id: str,
    settings: Settings | None = None,
    fallbacks: list[str] | None = None,
    private_model: str | None = None,
    guard: str | None = None,
) -> Model | Fallback | PrivateRoute | GuardedModel:
    """Load a model by catalog id (``smollm2-135m-instruct``), path (``hf:/dir``,
    ``gguf:file``) or provider (``openai:gpt-4.1-mini``).

    With fallbacks (given, or ``[fallbacks]`` in config.toml) you get a ``Fallback`` chain;
    with a ``private_model`` (given, or in config.toml) a hosted model is wrapped in a
    ``PrivateRoute`` that keeps requests with personal data on that local model. A
    ``[router]`` budget or latency SLO passes a hosted model over for the next in its chain
    (or ``over_budget_model``); routed calls are recorded in the log store. With ``guard``
    (a policy name from ``[guard]`` in config.toml, or ``standard``/``strict``/``audit``)
    every call goes through that policy: PII masked before it leaves, answers checked.
    """
    from fondasi.models.handle import load

    settings = settings or Settings.load()
    catalog = load_catalog(settings)

    def loader(ref: str) -> Model:
        return load(ref, settings, catalog)

    chain = list(fallbacks if fallbacks is not None else settings.fallbacks.get(model_id, []))
    routed = route(model_id, chain, private_model or settings.private_model, settings, loader)
    if guard is None:
        return routed
    from fondasi.guard import load_policy

    policy = load_policy(settings, guard)
    return policy.wrap(routed) if policy is not None else routed


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
