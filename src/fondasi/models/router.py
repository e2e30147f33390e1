"""Fallback chains: when a model fails, the next one answers, and the decision is recorded.

``fondasi.model("gpt-4o", fallbacks=["gpt-4o-mini", "smollm2-135m-instruct"])`` or, in
``config.toml``::

    [fallbacks]
    gpt-4o = ["gpt-4o-mini", "smollm2-135m-instruct"]

A model falls through when its provider fails after fondasi's retries (or its circuit is
open), or when it cannot even be loaded here (no key, no weights). Generation and
classification fall through; embeddings never do: vectors of different models cannot share
an index, so the primary model embeds. A confidential request passes hosted models over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from fondasi.backends.remote import ProviderError
from fondasi.errors import BadInputError, FondasiError
from fondasi.models.contract import Labels, ModelHandle, PromptInput
from fondasi.models.handle import options_of
from fondasi.models.results import routed
from fondasi.models.route_policy import RoutedCall, provider_of
from fondasi.models.wrapper import Wrapper
from fondasi.types import Chunk, Completion, GenerateOptions

if TYPE_CHECKING:
    from fondasi.models.handle import Model
    from fondasi.models.route_policy import RoutePolicy
    from fondasi.prompts.template import PromptTemplate

T = TypeVar("T")


@dataclass(frozen=True)
class Attempt:
    """One model tried for one request, and what became of it."""

    model: str
    outcome: str  # "answered", or why it was skipped


def describe(attempts: Sequence[Attempt]) -> str:
    """A route in one line: each model tried and what became of it."""
    return "; ".join(f"{a.model}: {a.outcome}" for a in attempts) or "no request yet"


@dataclass(eq=False)
class Fallback(Wrapper):
    """Models tried in order; loaded only when needed.

    With a ``RoutePolicy`` a model over its provider's budget or its latency SLO is passed
    over like a failed one, and every request is recorded with its cost and reasons.
    """

    chain: list[str]
    load: Callable[[str], Model]
    loaded: dict[str, Model] = field(default_factory=dict)
    last: list[Attempt] = field(default_factory=list)  # the latest request's route
    policy: RoutePolicy | None = None

    def __post_init__(self) -> None:
        if not self.chain:
            raise BadInputError("a fallback chain needs at least one model")

    @property
    def id(self) -> str:
        """The primary model's id."""
        return self.chain[0]

    @property
    def remote(self) -> bool:
        """A chain may reach a hosted model."""
        return True

    def explain(self) -> str:
        """Why the latest request was answered by whom, in one line."""
        return describe(self.last)

    def primary(self) -> ModelHandle:
        """The first model in the chain that loads here."""
        failures = []
        for model_id in self.chain:
            try:
                return self._model(model_id)
            except BadInputError as exc:
                failures.append(f"{model_id}: {exc}")
        raise FondasiError("no model in the chain loads here — " + " | ".join(failures))

    def _model(self, model_id: str) -> Model:
        if model_id not in self.loaded:
            self.loaded[model_id] = self.load(model_id)
        return self.loaded[model_id]

    def _route(self, call: Callable[[Model], T], confidential: bool = False) -> tuple[Model, T]:
        attempts: list[Attempt] = []
        self.last = attempts
        failures: list[str] = []
        for place, model_id in enumerate(self.chain, start=1):
            try:
                model = self._model(model_id)
            except BadInputError as exc:  # cannot run here: no key, no weights
                attempts.append(Attempt(model_id, f"not loadable ({exc})"))
                failures.append(f"{model_id}: {exc}")
                continue
            last_resort = place == len(self.chain)
            why = (
                "confidential: it stays on this machine" if confidential and model.remote else None
            )
            if why is None and self.policy is not None:
                why = self.policy.skip(model, last_resort)
            if why:
                attempts.append(Attempt(model_id, f"passed over ({why})"))
                failures.append(f"{model_id}: {why}")
                continue
            try:
                result = call(model)
            except ProviderError as exc:
                attempts.append(Attempt(model_id, f"failed ({exc})"))
                failures.append(f"{model_id}: {exc}")
                continue
            attempts.append(Attempt(model_id, "answered"))
            return model, result
        self._record(None, None, attempts)
        raise FondasiError("every model in the chain failed — " + " | ".join(failures))

    def _record(self, model: Model | None, cost: float | None, attempts: list[Attempt]) -> None:
        if self.policy is None:
            return
        self.policy.record(
            RoutedCall(
                model=model.id if model else attempts[-1].model if attempts else self.id,
                provider=provider_of(model) if model else None,
                cost_usd=cost,
                answered=model is not None,
                decision=describe(attempts),
            )
        )

    def _finished(self, model: Model, final: Chunk | Completion, attempts: list[Attempt]) -> None:
        if self.policy is not None and final.seconds is not None:
            self.policy.observed(model, final.seconds)
        self._record(model, final.cost_usd, attempts)

    def generate(
        self, prompt: PromptInput, *, options: GenerateOptions | None = None, **kwargs: Any
    ) -> Completion:
        """The first model that answers does; ``Completion.model`` says which."""
        confidential = options_of(options, _overrides(kwargs)).confidential
        model, answer = self._route(
            lambda model: model.generate(prompt, options=options, **kwargs), confidential
        )
        attempts = self.last
        self._finished(model, answer, attempts)
        return answer.model_copy(update={"route": describe(attempts)})

    def stream(
        self, prompt: PromptInput, *, options: GenerateOptions | None = None, **kwargs: Any
    ) -> Iterator[Chunk]:
        """Falls through only before the first chunk; afterwards a failure is raised."""
        confidential = options_of(options, _overrides(kwargs)).confidential

        # A stream cannot be taken back once shown: a model is judged by its first chunk,
        # and the rest flows straight from the model that answered.
        def open_first(model: Model) -> tuple[Chunk | None, Iterator[Chunk]]:
            iterator = iter(model.stream(prompt, options=options, **kwargs))
            return next(iterator, None), iterator

        model, (first, rest) = self._route(open_first, confidential)
        attempts = self.last

        def flow() -> Iterator[Chunk]:
            if first is not None:
                yield first
            for chunk in rest:
                if chunk.final:
                    self._finished(model, chunk, attempts)
                yield chunk

        return routed(flow(), lambda: describe(attempts))

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
        """The first model that classifies does (a hosted one may fail)."""
        _, ranked = self._route(
            lambda model: model.classify(
                texts,
                labels,
                shots=shots,
                template=template,
                k=k,
                select=select,
                calibrate=calibrate,
            )
        )
        return ranked


def _overrides(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword options of a generate/stream call (not system, images or chat_template)."""
    return {k: v for k, v in kwargs.items() if k not in {"system", "images", "chat_template"}}


def _text_of(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    text = getattr(prompt, "text", None)  # a rendered template
    if isinstance(text, str):
        return text
    return "\n".join(
        str(m["content"] if isinstance(m, dict) else getattr(m, "content", "")) for m in prompt
    )


@dataclass(eq=False)
class PrivateRoute(Wrapper):
    """Requests with personal data, or marked confidential, stay on this machine.

    Everything else goes to ``public`` (a hosted model or a fallback chain). The check runs
    on the prompt and the system prompt (on the texts, to embed or classify) before anything
    is sent; ``pii`` names the kinds of personal data in a text.
    """

    public: ModelHandle
    private_id: str
    load: Callable[[str], Model]
    pii: Callable[[str], Sequence[str]]
    private: Model | None = None
    last: list[Attempt] = field(default_factory=list)
    policy: RoutePolicy | None = None  # records the calls kept local

    def primary(self) -> ModelHandle:
        """The public model's facts decide (its chat form, its context)."""
        return self.public

    @property
    def remote(self) -> bool:
        """Requests without personal data leave the machine."""
        return True

    def explain(self) -> str:
        """Why the latest request went where it went."""
        return describe(self.last)

    def _local(self) -> Model:
        if self.private is None:
            model = self.load(self.private_id)
            if model.remote:
                raise BadInputError(
                    f"private_model {self.private_id!r} is a hosted API; it must run locally"
                )
            self.private = model
        return self.private

    def _choose(self, text: str, confidential: bool) -> ModelHandle:
        kinds = sorted(set(self.pii(text)))
        if confidential or kinds:
            why = "marked confidential" if confidential else f"personal data ({', '.join(kinds)})"
            self.last = [Attempt(self.private_id, f"answered locally: {why} never leaves")]
            return self._local()
        self.last = [Attempt(self.id, "answered: no personal data found")]
        return self.public

    def for_texts(self, texts: Sequence[str]) -> ModelHandle:
        """Texts with personal data are embedded or classified by the private model."""
        return self._choose("\n".join(texts), False)

    def for_audio(self) -> ModelHandle:
        """The private model: what speech says cannot be checked before it is transcribed."""
        self.last = [Attempt(self.private_id, "answered locally: audio is not checked")]
        return self._local()

    def stream(
        self, prompt: PromptInput, *, options: GenerateOptions | None = None, **kwargs: Any
    ) -> Iterator[Chunk]:
        """Route, then stream; the final chunk says where the request went and why."""
        confidential = options_of(options, _overrides(kwargs)).confidential
        text = _text_of(prompt) + "\n" + str(kwargs.get("system") or "")
        target = self._choose(text, confidential)
        mine = list(self.last)
        local = target is self.private

        def flow() -> Iterator[Chunk]:
            for chunk in target.stream(prompt, options=options, **kwargs):
                if chunk.final and local:
                    self._record(chunk.cost_usd, mine)
                if chunk.final and isinstance(target, Fallback):
                    self.last = target.last  # the chain's own account is the fuller one
                yield chunk

        return routed(flow(), lambda: describe(mine))

    def _record(self, cost: float | None, attempts: list[Attempt]) -> None:
        if self.policy is None:
            return
        self.policy.record(
            RoutedCall(
                model=self.private_id, cost_usd=cost, answered=True, decision=describe(attempts)
            )
        )


__all__ = ["Attempt", "Fallback", "PrivateRoute", "describe"]
