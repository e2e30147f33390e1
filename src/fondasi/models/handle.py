"""A loaded model: one backend behind the model contract, exposing exactly what it can do.

Buffering, timing, pricing and input checks live here, once, above the backends: a backend
only streams; the final chunk is stamped with who answered and the cost
(``results.timed``), and ``generate`` is the stream folded (``results.fold``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError

from fondasi.backends.base import (
    AsyncEmbedder,
    AsyncTextGenerator,
    Backend,
    Capability,
    Embedder,
    ImageClassifier,
    ImageEmbedder,
    ImageGenerator,
    MaskFiller,
    ModelSpec,
    Purpose,
    Scorer,
    TextGenerator,
    TokenLogprobs,
    Transcriber,
    VisionLanguageModel,
)
from fondasi.backends.remote import Resilient
from fondasi.costs import call_cost
from fondasi.errors import BadInputError
from fondasi.models import json_mode, tracing
from fondasi.models.calls import MAX_TEXTS, Prepared, count_with, operation, prepare, texts_of
from fondasi.models.contract import CapabilityError, Labels, PromptInput
from fondasi.models.results import Folds, Stamp, options_of, timed
from fondasi.prompts.render import Budget, Rendered
from fondasi.settings import Settings
from fondasi.types import (
    Chunk,
    GenerateOptions,
    ImageOptions,
    Label,
    Message,
    Role,
    TokenLogprob,
    TranscribeOptions,
    Transcription,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from fondasi.catalog.schema import ModelCard
    from fondasi.prompts.template import PromptTemplate


__all__ = ["MAX_TEXTS", "CapabilityError", "Model", "PromptInput", "options_of"]


class Model(Folds):
    """A loaded model. Methods it lacks raise ``CapabilityError`` naming what it can do."""

    def __init__(
        self,
        spec: ModelSpec,
        backend: Backend,
        backend_name: str,
        usd_per_hour: float = 0.0,
        settings: Settings | None = None,
    ) -> None:
        self.spec = spec
        self.backend = backend
        self.backend_name = backend_name
        self.usd_per_hour = usd_per_hour
        self.settings = settings

    def __repr__(self) -> str:
        return f"Model({self.id!r}, backend={self.backend_name!r})"

    @property
    def remote(self) -> bool:
        """Whether calls leave this machine (a hosted API)."""
        return isinstance(self.backend, Resilient)

    @property
    def id(self) -> str:
        """The id it was loaded by."""
        return self.spec.id

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What this model can do."""
        return self.backend.capabilities

    def can(self, capability: Capability) -> bool:
        """Whether the model has a capability."""
        return capability in self.capabilities

    def _need(self, capability: Capability) -> Backend:
        if capability not in self.capabilities:
            raise CapabilityError(f"{self.id} cannot {capability.value}; it can: {self._can()}")
        return self.backend

    def _can(self) -> str:
        return ", ".join(sorted(c.value for c in self.capabilities)) or "nothing"

    @property
    def card(self) -> ModelCard | None:
        """The catalog card, for catalog models."""
        return self.spec.card

    @property
    def version(self) -> str | None:
        """What identifies the weights: the package pin, the provider's model id, or the path."""
        if self.spec.extra.get("version"):
            return self.spec.extra["version"]
        packaged = self.spec.card.availability.pip if self.spec.card else None
        if packaged:
            return f"{packaged[0].package}=={packaged[0].version}"
        if self.remote and self.spec.extra.get("model"):
            return f"{self.spec.extra.get('provider')}:{self.spec.extra['model']}"
        return str(self.spec.path) if self.spec.path else None

    @property
    def dimension(self) -> int | None:
        """Length of the embedding vectors; None if it does not embed."""
        if not self.can(Capability.EMBED):
            return None
        size = getattr(self.backend, "dimension", None)
        return int(size) if size else None

    @property
    def labels(self) -> list[str]:
        """A classifier's own classes, in its head's order; empty for other models."""
        names = getattr(self.backend, "names", None) if self.can(Capability.CLASSIFY) else None
        return [str(name) for name in names] if isinstance(names, list | tuple) else []

    def explain(self) -> str:
        """A plain model answers its own calls."""
        return f"{self.id}: answered"

    def count_tokens(self, text: str) -> int:
        """Tokens the model's tokenizer makes of ``text`` (words when it has none)."""
        if not isinstance(text, str):
            raise BadInputError("count tokens of a string")
        counted = count_with(self.backend, text)
        return counted if counted is not None else len(text.split())

    def _price(self, usage: Any, seconds: float) -> float | None:
        return call_cost(self.spec.card, self.remote, usage, seconds, self.usd_per_hour)

    @property
    def context_length(self) -> int | None:
        """Most tokens the model reads at once, where known."""
        length = getattr(self.backend, "context_length", None) or (
            self.spec.card.context_length if self.spec.card else None
        )
        return int(length) if length else None

    def _prompt(self, prompt: PromptInput, system: str | None) -> Any:
        if isinstance(prompt, Rendered):
            prompt = prompt.prompt(self.can(Capability.CHAT))
        if isinstance(prompt, str):
            if not prompt.strip():
                raise BadInputError("the prompt is empty")
            if not self.can(Capability.CHAT):
                return f"{system}\n\n{prompt}" if system else prompt
            messages = [Message(role=Role.USER, content=prompt)]
        else:
            messages = [m if isinstance(m, Message) else Message(**m) for m in prompt]
            if not messages:
                raise BadInputError("the conversation is empty")
            self._need(Capability.CHAT)
        if system:
            messages.insert(0, Message(role=Role.SYSTEM, content=system))
        return messages

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
        """Yield the answer as it is generated; chat models get their chat template.

        ``images`` (paths, bytes, arrays or PIL images) go to vision-language models;
        ``chat_template=False`` continues a text prompt as given. The final chunk carries
        usage, who answered, the cost and the timing.
        """
        call = prepare(self, prompt, system, images, options_of(options, overrides), chat_template)
        if call.images is not None:
            seer = cast(VisionLanguageModel, self._need(Capability.VISION_CHAT))
            chunks = seer.stream_vision(call.asked, call.images, call.options)
        else:
            chunks = cast(TextGenerator, self.backend).stream(call.asked, call.options)
        chunks = json_mode.enforce(iter(chunks)) if call.enforced else iter(chunks)
        span = tracing.start(operation(chat_template), self.id, self.provider, call.options)
        return tracing.traced(
            span, timed(call.plan.answer(chunks), self.id, self.version, self._price)
        )

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
        """``stream`` on the event loop: a hosted API's async client where the backend has one
        and the handle adds nothing to its answer; otherwise the sync stream on a worker."""
        chosen = options_of(options, overrides)
        if isinstance(self.backend, AsyncTextGenerator):
            call = prepare(self, prompt, system, images, chosen, chat_template)
            if call.images is None and not call.enforced and call.plan.passes_through:
                return self._native(call, operation(chat_template))
        return super().astream(
            prompt, system=system, images=images, options=chosen, chat_template=chat_template
        )

    async def aclose(self) -> None:
        """Close what the running event loop opened for this model (an SDK's async client)."""
        close = getattr(self.backend, "aclose", None)
        if close is not None:
            await close()

    @property
    def provider(self) -> str:
        """Who runs it: the hosted API's adapter (openai, anthropic ...) or the local engine."""
        return str(self.spec.extra.get("adapter") or self.backend_name)

    async def _native(self, call: Prepared, operation: str) -> AsyncGenerator[Chunk, None]:
        stamp = Stamp(self.id, self.version, self._price)
        backend = cast(AsyncTextGenerator, self.backend)
        chunks = backend.astream(call.asked, call.options)

        async def stamped() -> AsyncIterator[Chunk]:
            async for chunk in chunks:
                yield stamp(chunk)

        span = tracing.start(operation, self.id, self.provider, call.options)
        async with aclosing(tracing.atraced(span, stamped())) as answer:
            try:
                async for chunk in answer:
                    yield chunk
            finally:  # a reader that leaves early ends the provider's stream too
                close = getattr(chunks, "aclose", None)
                if close is not None:
                    await close()

    def score(self, prompt: PromptInput, continuations: Sequence[str]) -> list[float]:
        """Log-probability of each continuation after ``prompt`` (local language models)."""
        scorer = cast(Scorer, self._need(Capability.SCORE))
        if isinstance(continuations, str) or not continuations:
            raise BadInputError("give a list of continuations to score")
        return scorer.score(self._prompt(prompt, None), list(continuations))

    def token_logprobs(self, text: str, top: int = 0) -> list[TokenLogprob | None]:
        """Each token of ``text`` with its log-probability given those before (first: None)."""
        if not isinstance(text, str) or not text:
            raise BadInputError("give a non-empty text to read")
        if not 0 <= top <= 20:
            raise BadInputError("top must be between 0 and 20")
        reader = self.backend if isinstance(self.backend, TokenLogprobs) else None
        if reader is None:
            raise CapabilityError(
                f"{self.id} cannot read prompt log-probabilities (local language models can)"
            )
        return reader.token_logprobs(text, top)

    def embed(self, texts: str | Sequence[str], purpose: Purpose = None) -> npt.NDArray[np.float32]:
        """Normalised float32 vectors, one row per text (``purpose``: query or passage)."""
        embedder = cast(Embedder, self._need(Capability.EMBED))
        batch = texts_of(texts)
        span = tracing.start("embeddings", self.id, self.provider, None)
        return tracing.around(span, lambda: embedder.embed(batch, purpose))

    async def aembed(
        self, texts: str | Sequence[str], purpose: Purpose = None
    ) -> npt.NDArray[np.float32]:
        """``embed`` without blocking the event loop: on the SDK's async client where the
        backend has one (hosted APIs), else on a worker thread."""
        embedder = self._need(Capability.EMBED)
        if not isinstance(embedder, AsyncEmbedder):
            return await super().aembed(texts, purpose)
        vectors: npt.NDArray[np.float32] = await embedder.aembed(texts_of(texts), purpose)
        return vectors

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
        """Ranked labels per text (a single text gives a single ranking).

        Embedding models classify zero-shot against ``labels`` (names, or a mapping of
        name -> description), or against class prototypes of labelled ``shots``
        (``{"text", "label"}`` rows). Classifiers with their own labels may be restricted
        by them. Language models classify through a label template (default
        ``classify-en``): local ones by each label's log-probability, hosted ones by
        reading their answer; ``shots`` then become few-shot examples (``k`` of them,
        chosen by ``select``).
        """
        from fondasi.models.classifying import classify

        return classify(self, texts, labels, shots, template, k, select, calibrate)

    def budget(self, reserve: int) -> Budget | None:
        """The room a prompt has in this model's context, leaving ``reserve`` for the answer."""
        length = self.context_length
        if not length or getattr(self.backend, "count_tokens", None) is None:
            return None
        return Budget(self.count_tokens, max(length - reserve, 1))

    def fill_mask(self, text: str, top_k: int = 5) -> list[Label]:
        """Words for the one mask token in ``text`` (``[MASK]`` or ``<mask>``), best first."""
        filler = cast(MaskFiller, self._need(Capability.FILL_MASK))
        if top_k < 1:
            raise BadInputError("top_k must be at least 1")
        return filler.fill_mask(text, top_k)

    def classify_image(
        self,
        images: Any,
        labels: Labels | None = None,
        top_k: int = 5,
    ) -> Any:
        """Top-k labels per image (a single image gives a single ranking).

        Images are paths, bytes, numpy arrays or PIL images. CLIP-like models need
        ``labels``; ImageNet classifiers use their own classes.
        """
        classifier = cast(ImageClassifier, self._need(Capability.IMAGE_CLASSIFY))
        single = not isinstance(images, list | tuple)
        batch = [images] if single else list(images)
        if not batch:
            raise BadInputError("no images given")
        if top_k < 1:
            raise BadInputError("top_k must be at least 1")
        ranked = [ranking[:top_k] for ranking in classifier.classify_images(batch, labels)]
        return ranked[0] if single else ranked

    def embed_images(self, images: Any) -> npt.NDArray[np.float32]:
        """Normalised vectors for images, one row each."""
        embedder = cast(ImageEmbedder, self._need(Capability.IMAGE_EMBED))
        batch = [images] if not isinstance(images, list | tuple) else list(images)
        if not batch:
            raise BadInputError("no images given")
        return embedder.embed_images(batch)

    def imagine(
        self,
        prompt: str,
        *,
        options: ImageOptions | None = None,
        on_step: Callable[[int, int], None] | None = None,
        **overrides: Any,
    ) -> list[Any]:
        """Draw images (PIL) from a prompt with a text-to-image model."""
        generator = cast(ImageGenerator, self._need(Capability.IMAGE_GENERATE))
        if not prompt.strip():
            raise BadInputError("the prompt is empty")
        try:
            merged = ImageOptions(**{**(options.model_dump() if options else {}), **overrides})
        except ValidationError as exc:
            first = exc.errors()[0]
            raise BadInputError(f"bad option {first['loc'][0]!r}: {first['msg']}") from None
        return generator.generate_images(prompt, merged, on_step)

    def transcribe(
        self, audio: Any, *, options: TranscribeOptions | None = None, **overrides: Any
    ) -> Transcription:
        """What was said in an audio file (a path, its bytes or an open file): the text, its
        language (detected unless ``language`` is given) and timed segments."""
        from fondasi.models.transcribing import transcribe

        backend = cast(Transcriber, self._need(Capability.TRANSCRIBE))
        return transcribe(self, backend, audio, options, overrides)
