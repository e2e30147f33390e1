"""Few-shot example selection: fixed, random, label-balanced, nearest neighbours.

A selector returns example indices in priority order (the ones to keep first when the
context is short) and may arrange them differently for display: the k-NN selector puts
the nearest example last, next to the question, where it helps most.
Selectors register by name (a plug-in's through the ``fondasi.example_selectors`` entry-point
group); ``fondasi prompt`` lists them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar, cast

from fondasi.prompts.sandbox import PromptError
from fondasi.registry import Registry

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

Embed = Callable[[Sequence[str]], "npt.NDArray[np.float32]"]
Pool = Sequence[Mapping[str, str]]


@dataclass(frozen=True)
class Pick:
    """What a selector needs to know besides the pool."""

    query: str  # the input being answered, as one text
    k: int
    seed: int = 0
    label_field: str = "output"
    fields: tuple[str, ...] = ("input",)  # example fields that make up its input text
    embed: Embed | None = None


class Selector(Protocol):
    """Chooses examples for one input."""

    name: ClassVar[str]
    summary: ClassVar[str]

    def choose(self, pool: Pool, pick: Pick) -> list[int]:
        """Indices into ``pool``, most important first, at most ``pick.k``."""

    def arrange(self, chosen: list[int]) -> list[int]:
        """The order the chosen examples are shown in."""


def _adopt(name: str, member: object) -> Selector:
    made = member() if isinstance(member, type) else member
    if not all(callable(getattr(made, method, None)) for method in ("choose", "arrange")):
        raise TypeError(f"{member!r} is not an example selector (it needs choose and arrange)")
    if getattr(made, "name", None) != name:
        raise ValueError(f"the selector calls itself {getattr(made, 'name', None)!r}, not {name!r}")
    return cast(Selector, made)


SELECTORS: Registry[Selector] = Registry(
    "example selection", group="fondasi.example_selectors", adopt=_adopt
)
S = TypeVar("S")


def register(kind: type[S]) -> type[S]:
    """Make a selector available by its name."""
    made = cast(Selector, kind())
    SELECTORS.register(made.name, made)
    return kind


def selector(name: str) -> Selector:
    """The selector called ``name``; an unknown name lists the close ones."""
    return SELECTORS.get(name)


def example_text(example: Mapping[str, str], fields: Sequence[str]) -> str:
    """The input side of an example, as the k-NN selector compares it."""
    return "\n".join(example[field] for field in fields if field in example)


class _InOrder:
    def arrange(self, chosen: list[int]) -> list[int]:
        return chosen


@register
class Fixed(_InOrder):
    """The first k examples, in file order."""

    name = "fixed"
    summary = "the first k examples, in file order"

    def choose(self, pool: Pool, pick: Pick) -> list[int]:
        return list(range(min(pick.k, len(pool))))


@register
class Random(_InOrder):
    """k examples drawn at random with a seed."""

    name = "random"
    summary = "k examples drawn at random (seeded)"

    def choose(self, pool: Pool, pick: Pick) -> list[int]:
        return random.Random(pick.seed).sample(range(len(pool)), min(pick.k, len(pool)))


@register
class Balanced(_InOrder):
    """Labels take turns, so every class is shown before any is shown twice."""

    name = "balanced"
    summary = "labels take turns; random within a label (seeded)"

    def choose(self, pool: Pool, pick: Pick) -> list[int]:
        groups: dict[str, list[int]] = {}
        for index, example in enumerate(pool):
            if pick.label_field not in example:
                raise PromptError(
                    f"balanced selection: example {index + 1} has no {pick.label_field!r} field"
                )
            groups.setdefault(example[pick.label_field], []).append(index)
        rng = random.Random(pick.seed)
        for members in groups.values():
            rng.shuffle(members)
        # The seed also decides which label goes first, so with k below the number of
        # labels no label is always the one left out.
        order = list(groups.values())
        rng.shuffle(order)
        chosen: list[int] = []
        depth = 0
        while len(chosen) < min(pick.k, len(pool)):
            for members in order:
                if depth < len(members) and len(chosen) < pick.k:
                    chosen.append(members[depth])
            depth += 1
        return chosen


@register
class Nearest:
    """The k examples most similar to the input, by embedding cosine similarity."""

    name = "knn"
    summary = "the k examples most similar to the input (embeddings)"

    def choose(self, pool: Pool, pick: Pick) -> list[int]:
        if pick.embed is None:
            raise PromptError("knn selection needs an embedding model to compare examples with")
        if not pool or pick.k == 0:
            return []
        texts = [example_text(example, pick.fields) for example in pool]
        vectors = pick.embed([pick.query, *texts])
        similarity = vectors[1:] @ vectors[0]
        # Stable order for ties: the earlier example in the file wins.
        ranked = sorted(range(len(pool)), key=lambda i: (-float(similarity[i]), i))
        return ranked[: pick.k]

    def arrange(self, chosen: list[int]) -> list[int]:
        return list(reversed(chosen))
