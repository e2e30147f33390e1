"""fondasi: a local-first workbench for pre-trained models.

Know the models (``load_catalog``), choose one (``recommend``), use it
(``model(id).generate(...)``, ``.embed(...)``), prompt it zero-shot or few-shot
(``Prompt.load(name).render(...)``, ``ask(model, template, ...)``), and — as the other
layers land —
adapt, measure, guard and serve it.
"""

from __future__ import annotations

from fondasi.api import card, load_catalog, model, recommend
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
from fondasi.recommend import Ranking, Recommendation, Requirements
from fondasi.settings import Settings
from fondasi.system import Hardware
from fondasi.types import Completion, GenerateOptions, Message
from fondasi.version import __version__

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
