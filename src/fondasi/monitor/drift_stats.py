"""The tests behind drift signals: MMD² with permutations, Kolmogorov-Smirnov, Fisher's
exact test and Mann-Whitney U. Inputs are plain sequences; scipy does the classic tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy.typing as npt


def mmd_test(
    x: npt.NDArray[Any], y: npt.NDArray[Any], permutations: int = 500, seed: int = 0
) -> tuple[float, float]:
    """MMD² (biased, RBF kernel, median-distance bandwidth) of two samples and its
    permutation p-value."""
    import numpy as np

    pooled = np.vstack([x, y]).astype(np.float64)
    n, total = len(x), len(pooled)
    squares = np.sum(pooled**2, axis=1)
    distances = np.maximum(squares[:, None] + squares[None, :] - 2 * pooled @ pooled.T, 0.0)
    upper = distances[np.triu_indices(total, k=1)]
    median = float(np.median(upper[upper > 0])) if np.any(upper > 0) else 1.0
    kernel = np.exp(-distances / median)
    # MMD² of a split = s' K s with s = +1/n on one side, -1/m on the other: one matrix
    # product scores every permutation at once.
    rng = np.random.default_rng(seed)
    splits = np.empty((permutations + 1, total))
    base = np.concatenate([np.full(n, 1.0 / n), np.full(total - n, -1.0 / (total - n))])
    splits[0] = base
    for row in range(1, permutations + 1):
        splits[row] = base[rng.permutation(total)]
    scores = np.einsum("ij,ij->i", splits @ kernel, splits)
    observed = float(scores[0])
    p_value = float((1 + np.sum(scores[1:] >= observed - 1e-12)) / (permutations + 1))
    return max(observed, 0.0), p_value


def ks_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and two-sided p-value."""
    from scipy.stats import ks_2samp

    result = ks_2samp(list(a), list(b))
    return float(result.statistic), float(result.pvalue)


def proportion_test(hits_a: int, n_a: int, hits_b: int, n_b: int) -> tuple[float, float]:
    """Difference of two rates (b - a) and Fisher's exact two-sided p-value."""
    from scipy.stats import fisher_exact

    _, p_value = fisher_exact([[hits_a, n_a - hits_a], [hits_b, n_b - hits_b]])
    return hits_b / n_b - hits_a / n_a, float(p_value)


def rank_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mann-Whitney U statistic and two-sided p-value (1.0 when both are constant alike)."""
    from scipy.stats import mannwhitneyu

    if len(set(a) | set(b)) == 1:
        return float(len(a) * len(b)) / 2, 1.0
    result = mannwhitneyu(list(a), list(b), alternative="two-sided")
    return float(result.statistic), float(result.pvalue)
