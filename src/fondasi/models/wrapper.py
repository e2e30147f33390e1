"""The base of every model that wraps other models: fallback chains, privacy routes, guarded
models, served aliases.

A wrapper meets the whole model contract by handing each call to the model chosen for it:
facts (capabilities, chat form, context, card) come from its ``primary`` model; texts to
embed or classify go to ``for_texts`` (a privacy route looks at them first); generation is
the wrapper's own ``stream``, and ``generate`` is that stream folded. A capability the
chosen model lacks raises the same ``CapabilityError`` a plain model raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fondasi.backends.base import Capability, Purpose
from fondasi.models.contract import Labels, ModelHandle, PromptInput
from fondasi.models.results import Folds
from fondasi.prompts.render import Budget
from fondasi.types import ImageOptions, Label, TokenLogprob, TranscribeOptions, Transcription

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from fondasi.catalog.schema import ModelCard
    from fondasi.prompts.template import PromptTemplate
    from fondasi.settings import Settings


class Wrapper(Folds):
    """A model made of other models; subclasses choose who answers."""

    def primary(self) -> ModelHandle:
        """The model whose facts (capabilities, chat form, context) this one has."""
        raise NotImplementedError

    def for_texts(self, texts: Sequence[str]) -> ModelHandle:
        """The model that embeds or classifies ``texts``: the primary, unless told otherwise."""
        return self.primary()

    def for_audio(self) -> ModelHandle:
        """The model that transcribes audio: the primary, unless told otherwise."""
        return self.primary()

    def explain(self) -> str:
        """Why the latest call was answered by whom."""
        return self.primary().explain()

    # -- facts -------------------------------------------------------------------------

    @property
    def id(self) -> str:
        """The primary model's id."""
        return self.primary().id

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What the primary model can do."""
        return self.primary().capabilities

    def can(self, capability: Capability) -> bool:
        """Whether the primary model can do this."""
        return capability in self.capabilities

    @property
    def remote(self) -> bool:
        """Whether calls may leave this machine."""
        return self.primary().remote

    @property
    def card(self) -> ModelCard | None:
        """The primary model's card."""
        return self.primary().card

    @property
    def version(self) -> str | None:
        """The primary model's version."""
        return self.primary().version

    @property
    def settings(self) -> Settings | None:
        """The settings the models were loaded with."""
        return self.primary().settings

    @property
    def context_length(self) -> int | None:
        """The primary model's context length."""
        return self.primary().context_length

    @property
    def dimension(self) -> int | None:
        """The primary model's embedding length."""
        return self.primary().dimension

    @property
    def labels(self) -> list[str]:
        """The primary model's own classes."""
        return self.primary().labels

    # -- calls -------------------------------------------------------------------------

    def score(self, prompt: PromptInput, continuations: Sequence[str]) -> list[float]:
        """The primary model scores."""
        return self.primary().score(prompt, continuations)

    def token_logprobs(self, text: str, top: int = 0) -> list[TokenLogprob | None]:
        """The primary model reads the text."""
        return self.primary().token_logprobs(text, top)

    def count_tokens(self, text: str) -> int:
        """By the primary model's tokenizer."""
        return self.primary().count_tokens(text)

    def budget(self, reserve: int) -> Budget | None:
        """The primary model's room for a prompt."""
        return self.primary().budget(reserve)

    def embed(self, texts: str | Sequence[str], purpose: Purpose = None) -> npt.NDArray[np.float32]:
        """Vectors from the model chosen for these texts."""
        batch = [texts] if isinstance(texts, str) else list(texts)
        return self.for_texts(batch).embed(texts, purpose)

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
        """Labels from the model chosen for these texts."""
        batch = [texts] if isinstance(texts, str) else list(texts)
        return self.for_texts(batch).classify(
            texts,
            labels,
            shots=shots,
            template=template,
            k=k,
            select=select,
            calibrate=calibrate,
        )

    def fill_mask(self, text: str, top_k: int = 5) -> list[Label]:
        """Words for the mask, from the model chosen for the text."""
        return self.for_texts([text]).fill_mask(text, top_k)

    def classify_image(self, images: Any, labels: Labels | None = None, top_k: int = 5) -> Any:
        """The primary model labels images."""
        return self.primary().classify_image(images, labels, top_k)

    def embed_images(self, images: Any) -> npt.NDArray[np.float32]:
        """The primary model embeds images."""
        return self.primary().embed_images(images)

    def imagine(
        self,
        prompt: str,
        *,
        options: ImageOptions | None = None,
        on_step: Callable[[int, int], None] | None = None,
        **overrides: Any,
    ) -> list[Any]:
        """The primary model draws."""
        return self.primary().imagine(prompt, options=options, on_step=on_step, **overrides)

    def transcribe(
        self, audio: Any, *, options: TranscribeOptions | None = None, **overrides: Any
    ) -> Transcription:
        """The model chosen for audio transcribes it."""
        return self.for_audio().transcribe(audio, options=options, **overrides)
