"""A served alias with its traffic split: ``support-bot -> tuned:lora-7 (90%), tuned:lora-8 (10%)``.

Each generation or classification picks a target by the shares, so a canary gets its share
of the traffic; the answer's ``route`` names the split and the pick. Facts (capabilities,
chat form) and embeddings come from the target with the largest share: vectors of two
versions cannot share an index.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from fondasi.errors import BadInputError
from fondasi.models.contract import ModelHandle, PromptInput
from fondasi.models.results import routed
from fondasi.models.wrapper import Wrapper
from fondasi.types import Chunk

Targets = Sequence[tuple[str, float]]  # (model ref, share in percent)


def choose(targets: Targets, rng: random.Random) -> str:
    """One target's ref, chosen by the shares."""
    point = rng.uniform(0, sum(share for _, share in targets))
    for ref, share in targets:
        point -= share
        if point <= 0:
            return ref
    return targets[-1][0]


def split_text(name: str, targets: Targets) -> str:
    """``support-bot -> a (90%), b (10%)``."""
    if len(targets) == 1:
        return f"{name} -> {targets[0][0]}"
    return f"{name} -> " + ", ".join(f"{ref} ({share:g}%)" for ref, share in targets)


@dataclass(eq=False)
class Split(Wrapper):
    """An alias over weighted targets, each loaded on first use."""

    name: str
    targets: list[tuple[str, float]]  # (model ref, share in percent)
    load: Callable[[str], ModelHandle]
    rng: random.Random = field(default_factory=random.Random)
    loaded: dict[str, ModelHandle] = field(default_factory=dict)
    last: str | None = None  # the latest call's pick

    def __post_init__(self) -> None:
        if not self.targets or any(share <= 0 for _, share in self.targets):
            raise BadInputError(f"alias {self.name!r} needs targets with positive shares")

    @property
    def id(self) -> str:
        """The alias's name."""
        return self.name

    def describe(self) -> str:
        """``support-bot -> a (90%), b (10%)``."""
        return split_text(self.name, self.targets)

    def explain(self) -> str:
        """The split and the latest pick."""
        return f"{self.describe()}: {self.last or 'no request yet'}"

    def _model(self, ref: str) -> ModelHandle:
        if ref not in self.loaded:
            self.loaded[ref] = self.load(ref)
        return self.loaded[ref]

    def primary(self) -> ModelHandle:
        """The target with the largest share (the stable version)."""
        return self._model(max(self.targets, key=lambda target: target[1])[0])

    def pick(self) -> ModelHandle:
        """One target, chosen by the shares."""
        self.last = choose(self.targets, self.rng)
        return self._model(self.last)

    def for_texts(self, texts: Sequence[str]) -> ModelHandle:
        """Classification follows the split (embeddings stay on the primary, see ``embed``)."""
        return self.pick()

    def embed(self, texts: Any, purpose: Any = None) -> Any:
        """The primary target embeds: one index, one model."""
        return self.primary().embed(texts, purpose)

    def stream(self, prompt: PromptInput, **kwargs: Any) -> Iterator[Chunk]:
        """The picked target answers; the final chunk's route names the split and the pick."""
        target = self.pick()
        chosen = self.last
        return routed(iter(target.stream(prompt, **kwargs)), lambda: f"{self.describe()}: {chosen}")
