"""Ranking metrics: retrieval (recall@k, MRR, nDCG@k) and image classification (top-k).

A retrieval reference is a mapping of relevant document id -> grade (1 when the data
lists ids only); an output is the ranked list of document ids. nDCG comes from
scikit-learn; recall@k and MRR are their textbook definitions, averaged over queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fondasi.evaluate.metrics import metric, normalise_text
from fondasi.extras import require


def relevance(value: Any) -> dict[str, float]:
    """A reference as id -> grade: from a list of ids, a mapping, or "a, b" text."""
    if isinstance(value, Mapping):
        return {str(key): float(grade) for key, grade in value.items() if float(grade) > 0}
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, Sequence):
        return {str(item): 1.0 for item in value}
    return {str(value): 1.0}


def _ranked(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, Sequence) else []


def recall_one(reference: Any, output: Any, k: int) -> float:
    """Share of one query's relevant documents found in the top k."""
    relevant = relevance(reference)
    if not relevant:
        return 0.0
    return len(set(_ranked(output)[:k]) & set(relevant)) / len(relevant)


def reciprocal_rank(reference: Any, output: Any) -> float:
    """1 / the rank of the first relevant document (0 when none is returned)."""
    relevant = relevance(reference)
    for rank, doc in enumerate(_ranked(output), 1):
        if doc in relevant:
            return 1 / rank
    return 0.0


def ndcg_one(reference: Any, output: Any, k: int) -> float:
    """nDCG@k of one query (scikit-learn), relevant documents not returned ranked last."""
    import numpy as np

    require("sklearn", "eval", "ranking metrics")  # the extra, named
    from sklearn.metrics import ndcg_score

    relevant = relevance(reference)
    ranked = _ranked(output)
    missing = [doc for doc in relevant if doc not in ranked]
    docs = [*ranked, *missing, "\0pad"]  # at least two documents for scikit-learn
    truth = np.array([[relevant.get(doc, 0.0) for doc in docs]])
    scores = np.array(
        [[float(len(docs) - i) for i in range(len(ranked))] + [-1.0] * (len(missing) + 1)]
    )
    if not truth.any():
        return 0.0
    return float(ndcg_score(truth, scores, k=k))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


@metric("retrieval", "ndcg", "normalised discounted cumulative gain (scikit-learn)", k=10)
def ndcg(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    return _mean([ndcg_one(r, o, k) for r, o in zip(references, outputs, strict=True)])


@metric("retrieval", "recall", "share of relevant documents in the top k", k=5)
def recall(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    return _mean([recall_one(r, o, k) for r, o in zip(references, outputs, strict=True)])


@metric("retrieval", "mrr", "mean reciprocal rank of the first relevant document")
def mrr(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    return _mean([reciprocal_rank(r, o) for r, o in zip(references, outputs, strict=True)])


def label_matches(reference: Any, predicted: str) -> bool:
    """Whether a predicted class names the reference: ImageNet classes list synonyms."""
    wanted = {normalise_text(part) for part in str(reference).split("|")}
    names = {normalise_text(part) for part in predicted.split(",")}
    return bool(wanted & (names | {normalise_text(predicted)}))


def top_hit(reference: Any, output: Any, k: int) -> bool:
    """Whether the reference is among the first k predicted classes."""
    return any(label_matches(reference, label) for label in _ranked(output)[:k])


@metric("image-classification", "top1", "share of images whose first class is right")
def top1(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    return _mean([float(top_hit(r, o, 1)) for r, o in zip(references, outputs, strict=True)])


@metric("image-classification", "top5", "share of images with the right class in the top 5")
def top5(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    return _mean([float(top_hit(r, o, 5)) for r, o in zip(references, outputs, strict=True)])
