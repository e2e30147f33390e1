"""Fallback chains: when a model fails, the next one answers, and the decision is recorded.

``fondasi.model("gpt-4o", fallbacks=["gpt-4o-mini", "smollm2-135m-instruct"])`` or, in
``config.toml``::

    [fallbacks]
    gpt-4o = ["gpt-4o-mini", "smollm2-135m-instruct"]

A model falls through when its provider fails after fondasi's retries (or its circuit is
open), or when it cannot even be loaded here (no key, no weights). Embeddings never fall
back: vectors of different models cannot share an index.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from fondasi.backends.remote import ProviderError
from fondasi.errors import BadInputError, FondasiError
from fondasi.prompts.render import Rendered
from fondasi.types import Chunk, Completion

if TYPE_CHECKING:
    from fondasi.models.handle import Model
    from fondasi.models.route_policy import RoutePolicy
    from fondasi.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class Attempt:
    """One model tried for one request, and what became of it."""

    model: str
    outcome: str  # "answered", or why it was skipped


@dataclass
class Fallback:
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

    def explain(self) -> str:
        """Why the latest request was answered by whom, in one line."""
        return "; ".join(f"{a.model}: {a.outcome}" for a in self.last) or "no request yet"

    def _model(self, model_id: str) -> Model:
        if model_id not in self.loaded:
            self.loaded[model_id] = self.load(model_id)
        return self.loaded[model_id]

    def _route(self, call: Callable[[Model], T]) -> tuple[Model, T]:
        self.last = []
        failures: list[str] = []
        for place, model_id in enumerate(self.chain, start=1):
            try:
                model = self._model(model_id)
            except BadInputError as exc:  # cannot run here: no key, no weights
                self.last.append(Attempt(model_id, f"not loadable ({exc})"))
                failures.append(f"{model_id}: {exc}")
                continue
            last_resort = place == len(self.chain)
            if self.policy is not None and (why := self.policy.skip(model, last_resort)):
                self.last.append(Attempt(model_id, f"passed over ({why})"))
                failures.append(f"{model_id}: {why}")
                continue
            try:
                result = call(model)
            except ProviderError as exc:
                self.last.append(Attempt(model_id, f"failed ({exc})"))
                failures.append(f"{model_id}: {exc}")
                continue
            self.last.append(Attempt(model_id, "answered"))
            return model, result
        self._record(None, None)
        raise FondasiError("every model in the chain failed — " + " | ".join(failures))

    def _record(self, model: Model | None, cost: float | None) -> None:
        if self.policy is None:
            return
        from fondasi.monitor.ledger import RoutedCall
        from fondasi.models.route_policy import provider_of

        self.policy.record(
            RoutedCall(
                model=model.id if model else self.last[-1].model if self.last else self.id,
                provider=provider_of(model) if model else None,
                cost_usd=cost,
                answered=model is not None,
                decision=self.explain(),
            )
        )

    def generate(self, prompt: Any, **kwargs: Any) -> Completion:
        """The first model that answers does; ``Completion.model`` says which."""
        model, answer = self._route(lambda model: model.generate(prompt, **kwargs))
        if self.policy is not None:
            self.policy.observed(model, answer.seconds)
        self._record(model, answer.cost_usd)
        return answer

    def stream(self, prompt: Any, **kwargs: Any) -> Iterator[Chunk]:
        """Falls through only before the first chunk; afterwards a failure is raised."""

        # A stream cannot be taken back once shown: a model is judged by its first chunk,
        # and the rest flows straight from the model that answered.
        def open_first(model: Model) -> tuple[Chunk | None, Iterator[Chunk]]:
            iterator = iter(model.stream(prompt, **kwargs))
            return next(iterator, None), iterator

        start = time.perf_counter()
        model, (first, rest) = self._route(open_first)
        final = first
        if first is not None:
            yield first
        for chunk in rest:
            final = chunk
            yield chunk
        seconds = time.perf_counter() - start
        if self.policy is not None:
            self.policy.observed(model, seconds)
            usage = final.usage if final is not None else None
            self._record(model, self.policy.cost(model, usage, seconds))


def _text_of(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Rendered):
        return prompt.text
    return "\n".join(
        str(m["content"] if isinstance(m, dict) else getattr(m, "content", "")) for m in prompt
    )


@dataclass
class PrivateRoute:
    """Requests with personal data, or marked confidential, stay on this machine.

    Everything else goes to ``public`` (a hosted model or a fallback chain). The check runs
    on the prompt and the system prompt before anything is sent.
    """

    public: Any  # Model or Fallback
    private_id: str
    load: Callable[[str], Model]
    private: Model | None = None
    last: list[Attempt] = field(default_factory=list)
    policy: RoutePolicy | None = None  # records the calls kept local

    @property
    def id(self) -> str:
        """The public model's id."""
        return str(self.public.id)

    def explain(self) -> str:
        """Why the latest request went where it went."""
        return "; ".join(f"{a.model}: {a.outcome}" for a in self.last) or "no request yet"

    def _local(self) -> Model:
        if self.private is None:
            model = self.load(self.private_id)
            if model.remote:
                raise BadInputError(
                    f"private_model {self.private_id!r} is a hosted API; it must run locally"
                )
            self.private = model
        return self.private

    def _choose(self, prompt: Any, kwargs: dict[str, Any], confidential: bool) -> Any:
        from fondasi.guard import find_pii

        text = _text_of(prompt) + "\n" + str(kwargs.get("system") or "")
        kinds = sorted({finding.type for finding in find_pii(text)})
        if confidential or kinds:
            why = "marked confidential" if confidential else f"personal data ({', '.join(kinds)})"
            self.last = [Attempt(self.private_id, f"answered locally: {why} never leaves")]
            return self._local()
        self.last = [Attempt(self.id, "answered: no personal data found")]
        return self.public

    def generate(self, prompt: Any, *, confidential: bool = False, **kwargs: Any) -> Completion:
        """Route, then generate; ``Completion.model`` says which model answered."""
        target = self._choose(prompt, kwargs, confidential)
        answer: Completion = target.generate(prompt, **kwargs)
        if isinstance(target, Fallback):
            self.last = target.last
        elif target is self.private:
            self._record(answer.cost_usd)
        return answer

    def stream(self, prompt: Any, *, confidential: bool = False, **kwargs: Any) -> Iterator[Chunk]:
        """Route, then stream."""
        target = self._choose(prompt, kwargs, confidential)
        start = time.perf_counter()
        final: Chunk | None = None
        for chunk in target.stream(prompt, **kwargs):
            final = chunk
            yield chunk
        if isinstance(target, Fallback):
            self.last = target.last
        if self.private is not None and target is self.private and self.policy is not None:
            usage = final.usage if final is not None else None
            self._record(self.policy.cost(self.private, usage, time.perf_counter() - start))

    def _record(self, cost: float | None) -> None:
        if self.policy is None:
            return
        from fondasi.monitor.ledger import RoutedCall

        self.policy.record(
            RoutedCall(model=self.private_id, cost_usd=cost, answered=True, decision=self.explain())
        )


def route(
    model_id: str,
    chain: list[str],
    private: str | None,
    settings: Settings,
    loader: Callable[[str], Model],
) -> Model | Fallback | PrivateRoute:
    """The model, chain or private route that the settings' routing policy asks for."""
    router = settings.router
    primary: Model | None = None
    if not chain and (router.budgets or router.latency_slo_ms):
        try:  # budgets and the SLO only route hosted models: look before wrapping
            primary = loader(model_id)
        except BadInputError:
            primary = None
        if primary is not None and not primary.remote:
            return primary
    spare = router.over_budget_model or private
    if router.budgets and spare and spare != model_id and spare not in chain:
        chain = [*chain, spare]
    policy = None
    if chain or private or router.budgets or router.latency_slo_ms:
        from fondasi.models.route_policy import RoutePolicy

        policy = RoutePolicy.from_settings(settings)
    public: Model | Fallback
    if chain or router.budgets or router.latency_slo_ms:
        loaded = {model_id: primary} if primary is not None else {}
        public = Fallback([model_id, *chain], loader, loaded, policy=policy)
    else:
        public = primary or loader(model_id)
    remote = isinstance(public, Fallback) or public.remote
    if private and remote and private != model_id:
        return PrivateRoute(public, private, loader, policy=policy)
    return public
