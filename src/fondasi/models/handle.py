"""``fondasi.model(id)``: one handle over any backend, exposing exactly what it can do.

Buffering, timing and input checks live here, once, above the backends: a backend only
streams; ``generate`` is ``stream`` collected.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError

from fondasi.models import json_mode
from fondasi.backends.base import (
    Backend,
    Capability,
    Classifier,
    Embedder,
    ImageClassifier,
    ImageEmbedder,
    ImageGenerator,
    MaskFiller,
    ModelSpec,
    Purpose,
    Scorer,
    TextGenerator,
    VisionLanguageModel,
)
from fondasi.backends.classify import label_texts
from fondasi.backends.registry import Registry
from fondasi.backends.remote import Resilient, RetryPolicy
from fondasi.backends.resolve import resolve
from fondasi.catalog.loader import Catalog
from fondasi.costs import call_cost
from fondasi.errors import BadInputError, FondasiError
from fondasi.prompts.classify import (
    PromptClassifier,
    as_examples,
    by_generation,
    by_logprob,
    by_prototypes,
)
from fondasi.prompts.render import Budget, Rendered
from fondasi.prompts.template import PromptTemplate
from fondasi.settings import Settings
from fondasi.types import Chunk, Completion, GenerateOptions, ImageOptions, Label, Message, Role

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MAX_TEXTS = 100_000
# English-first: the small bundled models follow English instructions best.
DEFAULT_CLASSIFY_TEMPLATE = "classify-en"
PromptInput = str | Sequence[Message | dict[str, str]] | Rendered


class CapabilityError(BadInputError):
    """The model cannot do what was asked."""


def _options(options: GenerateOptions | None, overrides: dict[str, Any]) -> GenerateOptions:
    try:
        base = options.model_dump() if options else {}
        return GenerateOptions(**{**base, **overrides})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BadInputError(f"bad option {first['loc'][0]!r}: {first['msg']}") from None


class Model:
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
        **overrides: Any,
    ) -> Iterator[Chunk]:
        """Yield the answer as it is generated; chat models get their chat template.

        ``images`` (paths, bytes, arrays or PIL images) go to vision-language models.
        """
        chosen = _options(options, overrides)
        needed = Capability.GENERATE if images is None else Capability.VISION_CHAT
        backend = self._need(needed)
        enforced = chosen.json_mode and not json_mode.native(backend)
        asked = self._prompt(prompt, json_mode.with_instruction(system) if enforced else system)
        if images is not None:
            batch = list(images) if isinstance(images, list | tuple) else [images]
            chunks = cast(VisionLanguageModel, backend).stream_vision(asked, batch, chosen)
        else:
            chunks = cast(TextGenerator, backend).stream(asked, chosen)
        return json_mode.enforce(iter(chunks)) if enforced else chunks

    def generate(
        self,
        prompt: PromptInput,
        *,
        system: str | None = None,
        images: Any = None,
        options: GenerateOptions | None = None,
        **overrides: Any,
    ) -> Completion:
        """The whole answer, with token usage and timing."""
        start = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        final: Chunk | None = None
        for chunk in self.stream(
            prompt, system=system, images=images, options=options, **overrides
        ):
            if chunk.text and first is None:
                first = time.perf_counter() - start
            parts.append(chunk.text)
            final = chunk
        if final is None or final.usage is None or final.finish_reason is None:
            raise RuntimeError(f"{self.backend_name} ended a stream without usage")
        seconds = time.perf_counter() - start
        return Completion(
            model=self.id,
            text="".join(parts),
            usage=final.usage,
            finish_reason=final.finish_reason,
            seconds=seconds,
            first_token_seconds=first,
            cost_usd=call_cost(
                self.spec.card, self.remote, final.usage, seconds, self.usd_per_hour
            ),
        )

    def score(self, prompt: PromptInput, continuations: Sequence[str]) -> list[float]:
        """Log-probability of each continuation after ``prompt`` (local language models)."""
        scorer = cast(Scorer, self._need(Capability.SCORE))
        if isinstance(continuations, str) or not continuations:
            raise BadInputError("give a list of continuations to score")
        return scorer.score(self._prompt(prompt, None), list(continuations))

    def embed(self, texts: str | Sequence[str], purpose: Purpose = None) -> npt.NDArray[np.float32]:
        """Normalised float32 vectors, one row per text (``purpose``: query or passage)."""
        embedder = cast(Embedder, self._need(Capability.EMBED))
        batch = [texts] if isinstance(texts, str) else list(texts)
        if len(batch) > MAX_TEXTS:
            raise BadInputError(f"{len(batch)} texts in one call; send at most {MAX_TEXTS}")
        if any(not isinstance(text, str) for text in batch):
            raise BadInputError("every text to embed must be a string")
        return embedder.embed(batch, purpose)

    def classify(
        self,
        texts: str | Sequence[str],
        labels: Sequence[str] | Mapping[str, str] | None = None,
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
        batch = [texts] if isinstance(texts, str) else list(texts)
        if not batch or any(not isinstance(text, str) or not text.strip() for text in batch):
            raise BadInputError("every text to classify must be a non-empty string")
        if shots is None and template is None and self.can(Capability.CLASSIFY):
            own = cast(Classifier, self.backend)
            ranked: list[list[Label]] = own.classify(batch, labels)
        elif self.can(Capability.EMBED) and template is None:
            names = label_texts(labels)[0] if labels is not None else []
            examples = as_examples(shots or [], names)
            ranked = by_prototypes(
                cast(Embedder, self.backend), batch, examples, labels or _labels_of(examples)
            )
        elif self.can(Capability.GENERATE):
            ranked = self._classify_by_prompt(batch, labels, shots, template, k, select, calibrate)
        else:
            raise CapabilityError(f"{self.id} cannot classify text; it can: {self._can()}")
        return ranked[0] if isinstance(texts, str) else ranked

    def _classify_by_prompt(
        self,
        texts: list[str],
        labels: Sequence[str] | Mapping[str, str] | None,
        shots: Sequence[Mapping[str, str]] | None,
        template: str | PromptTemplate | None,
        k: int | None,
        select: str | None,
        calibrate: bool,
    ) -> list[list[Label]]:
        home = self.settings.home if self.settings else None
        chosen = template if isinstance(template, PromptTemplate) else None
        chosen = chosen or PromptTemplate.load(str(template or DEFAULT_CLASSIFY_TEMPLATE), home)
        names = list(labels) if labels is not None else chosen.label_names
        examples = as_examples(shots, names) if shots is not None else None
        knn = (select or chosen.fewshot.select) == "knn"
        embedder = embedder_for(self.settings) if knn else None
        classifier = PromptClassifier(
            chosen,
            names,
            examples=examples,
            shots=k,
            select=select,
            embed=embedder,
            budget=self.budget(reserve=32),
            chat=self.can(Capability.CHAT),
        )
        if self.can(Capability.SCORE):
            return by_logprob(cast(Scorer, self.backend), classifier, texts, calibrate)
        return by_generation(
            lambda rendered: self.generate(rendered, max_tokens=16).text, classifier, texts
        )

    def budget(self, reserve: int) -> Budget | None:
        """The room a prompt has in this model's context, leaving ``reserve`` for the answer."""
        length = self.context_length
        counter = getattr(self.backend, "count_tokens", None)
        if not length or counter is None:
            return None
        return Budget(counter, max(length - reserve, 1))

    def fill_mask(self, text: str, top_k: int = 5) -> list[Label]:
        """Words for the one mask token in ``text`` (``[MASK]`` or ``<mask>``), best first."""
        filler = cast(MaskFiller, self._need(Capability.FILL_MASK))
        if top_k < 1:
            raise BadInputError("top_k must be at least 1")
        return filler.fill_mask(text, top_k)

    def classify_image(
        self,
        images: Any,
        labels: Sequence[str] | Mapping[str, str] | None = None,
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


def load(ref: str, settings: Settings | None = None, catalog: Catalog | None = None) -> Model:
    """Resolve ``ref`` (a catalog id or hf:/gguf:/onnx: path) and load it."""
    settings = settings or Settings.load()
    catalog = catalog or Catalog.load(settings.card_dirs())
    spec = resolve(ref, catalog, settings)
    factory = Registry.from_entry_points().find(spec)
    try:
        backend = factory.load(spec, settings)
    except FondasiError:
        raise
    except Exception as exc:
        # Third-party loaders raise many types for corrupt or truncated weights; the
        # user needs one clear line naming the model and the file, not a traceback.
        raise BadInputError(
            f"{spec.id}: cannot load {spec.path} with {factory.name}: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    endpoint = getattr(backend, "remote_endpoint", None)
    if endpoint:
        # Every hosted API gets the same retries and circuit breaker, whatever its adapter.
        backend = Resilient(backend, endpoint, RetryPolicy(max_retries=settings.retries))
    return Model(spec, backend, factory.name, settings.hardware_usd_per_hour, settings)


def embedder_for(settings: Settings | None) -> Any:
    """The settings' embedding model's ``embed``, for k-NN example selection."""
    settings = settings or Settings.load()
    return load(settings.embedding_model, settings).embed


def _labels_of(examples: Sequence[Mapping[str, str]]) -> list[str]:
    """The labels the examples use, in order of first appearance."""
    names = list(dict.fromkeys(example["output"] for example in examples))
    if len(names) < 2:
        raise BadInputError("give labels, or shots covering at least two labels")
    return names
