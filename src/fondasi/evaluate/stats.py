"""Uncertainty and comparison: bootstrap intervals, a paired test, latency percentiles, Pareto.

The bootstrap resamples examples with replacement and recomputes the metric on each
resample (percentile interval). The significance test between two candidates is paired
approximate randomisation (Noreen 1989, as sacrebleu and MT papers use it): each
example's two predictions are swapped at random, and the p-value is the share of swaps
whose metric difference is at least as large as the observed one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Score = Callable[[Sequence[Any], Sequence[Any]], float]


@dataclass(frozen=True)
class Interval:
    """A confidence interval around a value."""

    low: float
    high: float
    level: float


def bootstrap(
    score: Score,
    references: Sequence[Any],
    outputs: Sequence[Any],
    rounds: int,
    seed: int,
    level: float = 0.95,
) -> Interval | None:
    """Percentile bootstrap interval of ``score``; None with no rounds or one example."""
    import numpy as np

    n = len(references)
    if rounds < 1 or n < 2:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        rows = rng.integers(0, n, n)
        values.append(score([references[i] for i in rows], [outputs[i] for i in rows]))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(low), float(high), level)


def bootstrap_draws(
    score: Score,
    references: Sequence[Any],
    draws: Sequence[Sequence[Any]],
    rounds: int,
    seed: int,
    level: float = 0.95,
) -> Interval | None:
    """Percentile interval of ``score`` over two sources of chance: which training sample
    was drawn (one of ``draws``, the outputs each gave) and which test examples were met."""
    import numpy as np

    n = len(references)
    if rounds < 1 or n < 2 or not draws:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        outputs = draws[int(rng.integers(0, len(draws)))]
        rows = rng.integers(0, n, n)
        values.append(score([references[i] for i in rows], [outputs[i] for i in rows]))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(low), float(high), level)


@dataclass(frozen=True)
class Paired:
    """The outcome of a paired test between two candidates on the same examples."""

    difference: float  # score(a) - score(b)
    p_value: float
    rounds: int
    method: str = "paired approximate randomisation"


def paired_test(
    score: Score,
    references: Sequence[Any],
    a: Sequence[Any],
    b: Sequence[Any],
    rounds: int,
    seed: int,
) -> Paired:
    """Whether ``a`` beats ``b`` by more than chance, example by example."""
    import numpy as np

    observed = score(references, a) - score(references, b)
    rng = np.random.default_rng(seed)
    extreme = 0
    for _ in range(rounds):
        swap = rng.random(len(references)) < 0.5
        left = [y if s else x for x, y, s in zip(a, b, swap, strict=True)]
        right = [x if s else y for x, y, s in zip(a, b, swap, strict=True)]
        if abs(score(references, left) - score(references, right)) >= abs(observed) - 1e-12:
            extreme += 1
    return Paired(observed, (extreme + 1) / (rounds + 1), rounds)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0–100), or None without values."""
    import numpy as np

    return float(np.percentile(list(values), q)) if values else None


def pareto(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of points no other point beats: lower x (cost, latency) and higher y (quality)."""
    front = []
    for i, (x, y) in enumerate(points):
        beaten = any(
            (ox <= x and oy >= y) and (ox < x or oy > y)
            for j, (ox, oy) in enumerate(points)
            if j != i
        )
        if not beaten:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])
