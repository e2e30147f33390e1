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

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from fondasi.backends.remote import ProviderError
from fondasi.errors import BadInputError, FondasiError
from fondasi.prompts.render import Rendered
from fondasi.types import Chunk, Completion

if TYPE_CHECKING:
    from fondasi.handle import Model

T = TypeVar("T")


@dataclass(frozen=True)
class Attempt:
    """One model tried for one request, and what became of it."""

    model: str
    outcome: str  # "answered", or why it was skipped


@dataclass
class Fallback:
    """Models tried in order; loaded only when needed."""

    chain: list[str]
    load: Callable[[str], Model]
    loaded: dict[str, Model] = field(default_factory=dict)
    last: list[Attempt] = field(default_factory=list)  # the latest request's route

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

    def _route(self, call: Callable[[Model], T]) -> T:
        self.last = []
        failures: list[str] = []
        for model_id in self.chain:
            try:
                model = self._model(model_id)
            except BadInputError as exc:  # cannot run here: no key, no weights
                self.last.append(Attempt(model_id, f"not loadable ({exc})"))
                failures.append(f"{model_id}: {exc}")
                continue
            try:
                result = call(model)
            except ProviderError as exc:
                self.last.append(Attempt(model_id, f"failed ({exc})"))
                failures.append(f"{model_id}: {exc}")
                continue
            self.last.append(Attempt(model_id, "answered"))
            return result
        raise FondasiError("every model in the chain failed — " + " | ".join(failures))

    def generate(self, prompt: Any, **kwargs: Any) -> Completion:
        """The first model that answers does; ``Completion.model`` says which."""
        return self._route(lambda model: model.generate(prompt, **kwargs))

    def stream(self, prompt: Any, **kwargs: Any) -> Iterator[Chunk]:
        """Falls through only before the first chunk; afterwards a failure is raised."""

        # A stream cannot be taken back once shown: a model is judged by its first chunk,
        # and the rest flows straight from the model that answered.
        def open_first(model: Model) -> tuple[Chunk | None, Iterator[Chunk]]:
            iterator = iter(model.stream(prompt, **kwargs))
            return next(iterator, None), iterator

        first, rest = self._route(open_first)
        if first is not None:
            yield first
        yield from rest


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
        return answer

    def stream(self, prompt: Any, *, confidential: bool = False, **kwargs: Any) -> Iterator[Chunk]:
        """Route, then stream."""
        target = self._choose(prompt, kwargs, confidential)
        yield from target.stream(prompt, **kwargs)
