"""The one model contract: what every object ``fondasi.model()`` returns can be asked.

A plain model, a fallback chain, a privacy route, a guarded model and a served alias all
meet ``ModelHandle``: the same methods for every capability, the same ``capabilities``, and
results that say who answered. A capability the model behind a wrapper lacks raises the
same ``CapabilityError`` a plain model raises.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from fondasi.backends.base import Capability, Purpose
from fondasi.errors import BadInputError
from fondasi.prompts.render import Budget, Rendered
from fondasi.types import (
    Chunk,
    Completion,
    GenerateOptions,
    ImageOptions,
    Label,
    Message,
    TokenLogprob,
    TranscribeOptions,
    Transcription,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from fondasi.catalog.schema import ModelCard
    from fondasi.prompts.template import PromptTemplate
    from fondasi.settings import Settings

PromptInput = str | Sequence[Message | dict[str, Any]] | Rendered
Labels = Sequence[str] | Mapping[str, str]


class CapabilityError(BadInputError):
    """The model cannot do what was asked."""


@runtime_checkable
class ModelHandle(Protocol):
    """Every model object: plain, fallback chain, privacy route, guarded, served alias."""

    @property
    def id(self) -> str:
        """The id it was asked for (a route's primary model, an alias's name)."""

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What it can do."""

    @property
    def remote(self) -> bool:
        """Whether calls may leave this machine."""

    @property
    def card(self) -> ModelCard | None:
        """The catalog card of the model that decides its facts, if it has one."""

    @property
    def version(self) -> str | None:
        """What identifies the weights (the primary model's, for a route)."""

    @property
    def settings(self) -> Settings | None:
        """The settings it was loaded with."""

    @property
    def context_length(self) -> int | None:
        """Most tokens it reads at once, where known."""

    @property
    def dimension(self) -> int | None:
        """Length of its embedding vectors; None if it does not embed."""

    @property
    def labels(self) -> list[str]:
        """A classifier's own classes, in its head's order; empty for other models."""

    def can(self, capability: Capability) -> bool:
        """Whether it has a capability."""

    def explain(self) -> str:
        """Why the latest call was answered by whom, in one line."""

    def stream(
        self,
        prompt: PromptInput,
        *,
        system: str | None = None,
        images: Any = None,
        options: GenerateOptions | None = None,
        chat_template: bool = True,
        **overrides: Any,
    ) -> Iterator[Chunk]:
        """The answer as it is generated; the final chunk says who answered and the cost."""

    def generate(
        self,
        prompt: PromptInput,
        *,
        system: str | None = None,
        images: Any = None,
        options: GenerateOptions | None = None,
        chat_template: bool = True,
        **overrides: Any,
    ) -> Completion:
        """The whole answer (the stream folded), with usage, timing, cost and who answered."""

    def score(self, prompt: PromptInput, continuations: Sequence[str]) -> list[float]:
        """Log-probability of each continuation after ``prompt``."""

    def token_logprobs(self, text: str, top: int = 0) -> list[TokenLogprob | None]:
        """Each token of ``text`` with its log-probability given those before (first: None)."""

    def count_tokens(self, text: str) -> int:
        """Tokens its tokenizer makes of ``text``."""

    def budget(self, reserve: int) -> Budget | None:
        """The room a prompt has in its context, leaving ``reserve`` for the answer."""

    def embed(self, texts: str | Sequence[str], purpose: Purpose = None) -> npt.NDArray[np.float32]:
        """Normalised float32 vectors, one row per text."""

    def classify(
        self,
        texts: str | Sequence[str],
        labels: Labels | None = None,
        *,
        shots: Sequence[Mapping[str, str]] | None = None,
        template: str | PromptTemplate | None = None,
        k: int | None = None,
        select: str | None = None,
        calibrate: bool = True,
    ) -> Any:
        """Ranked labels per text (a single text gives a single ranking)."""

    def fill_mask(self, text: str, top_k: int = 5) -> list[Label]:
        """Words for the one mask token in ``text``, best first."""

    def classify_image(self, images: Any, labels: Labels | None = None, top_k: int = 5) -> Any:
        """Top-k labels per image."""

    def embed_images(self, images: Any) -> npt.NDArray[np.float32]:
        """Normalised vectors for images, one row each."""

    def imagine(
        self,
        prompt: str,
        *,
        options: ImageOptions | None = None,
        on_step: Callable[[int, int], None] | None = None,
        **overrides: Any,
    ) -> list[Any]:
        """Images (PIL) drawn from a prompt."""

    def transcribe(
        self, audio: Any, *, options: TranscribeOptions | None = None, **overrides: Any
    ) -> Transcription:
        """What was said in an audio file: text, language and timed segments."""

    # -- async: the calls above, off the event loop (models/aio.py) ----------------------

    def astream(
        self,
        prompt: PromptInput,
        *,
        system: str | None = None,
        images: Any = None,
        options: GenerateOptions | None = None,
        chat_template: bool = True,
        **overrides: Any,
    ) -> AsyncGenerator[Chunk, None]:
        """``stream`` without blocking the event loop; ``aclose`` (or ``break``) stops it."""

    async def agenerate(
        self,
        prompt: PromptInput,
        *,
        system: str | None = None,
        images: Any = None,
        options: GenerateOptions | None = None,
        chat_template: bool = True,
        **overrides: Any,
    ) -> Completion:
        """``generate`` without blocking the event loop (generate's own answer, on a worker)."""

    async def aembed(
        self, texts: str | Sequence[str], purpose: Purpose = None
    ) -> npt.NDArray[np.float32]:
        """``embed`` without blocking the event loop."""

    async def aclassify(
        self,
        texts: str | Sequence[str],
        labels: Labels | None = None,
        *,
        shots: Sequence[Mapping[str, str]] | None = None,
        template: str | PromptTemplate | None = None,
        k: int | None = None,
        select: str | None = None,
        calibrate: bool = True,
    ) -> Any:
        """``classify`` without blocking the event loop."""

    async def ascore(self, prompt: PromptInput, continuations: Sequence[str]) -> list[float]:
        """``score`` without blocking the event loop."""


Loader = Callable[[str], ModelHandle]  # a model id -> the loaded plain model
PiiDetector = Callable[[str], Sequence[str]]  # text -> the kinds of personal data in it
