"""Small classifiers over the bundled embeddings, trained at first use from a shipped set.

The labelled set (``data/<task>_train.jsonl``, Indonesian and English) is embedded with the
chosen embedding model and fitted with scikit-learn's logistic regression once; the weights
are cached as ``.npz`` plus a ``.json`` note of what they were trained on (never pickle), so
later runs load in milliseconds and predict with numpy alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fondasi.errors import BadInputError
from fondasi.guard.base import Filter, Finding
from fondasi.guard.text import language, sentences

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from fondasi.settings import Settings

BATCH = 64
CS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)  # penalties _fit chooses from; in the cache key


def training_rows(task: str) -> list[dict[str, Any]]:
    """The shipped labelled rows for ``task`` (toxicity, injection)."""
    source = resources.files("fondasi.guard") / "data" / f"{task}_train.jsonl"
    if not source.is_file():
        raise BadInputError(f"no training set for guard classifier {task!r}")
    text = source.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class LinearHead:
    """Logistic regression weights: P(positive) = sigmoid(x . w + b)."""

    weights: npt.NDArray[np.float32]
    bias: float
    embed: Callable[[list[str]], npt.NDArray[np.float32]]

    def predict(self, texts: Sequence[str]) -> list[float]:
        """Probability of the positive class for each text."""
        import numpy as np

        scores: list[float] = []
        for start in range(0, len(texts), BATCH):
            vectors = self.embed(list(texts[start : start + BATCH]))
            logits = vectors @ self.weights + self.bias
            scores.extend((1.0 / (1.0 + np.exp(-logits))).tolist())
        return scores


@dataclass(frozen=True)
class CategoryHead:
    """Multinomial logistic regression over the positive rows' categories (hate, threat ...)."""

    weights: npt.NDArray[np.float32]  # one row per category
    bias: npt.NDArray[np.float32]
    names: list[str]
    embed: Callable[[list[str]], npt.NDArray[np.float32]]

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most likely category of each text (taken to be positive already)."""
        found: list[str] = []
        for start in range(0, len(texts), BATCH):
            logits = self.embed(list(texts[start : start + BATCH])) @ self.weights.T + self.bias
            found.extend(self.names[int(i)] for i in logits.argmax(axis=1))
        return found


def _fingerprint(rows: list[dict[str, Any]], model_id: str) -> str:
    digest = hashlib.sha256(f"{model_id}\tlogistic-cv Cs={CS}".encode())
    for row in rows:
        digest.update(f"{row['label']}\t{row['text']}\n".encode())
    return digest.hexdigest()[:16]


def _fit(vectors: Any, labels: list[int]) -> tuple[Any, float]:
    from fondasi.extras import require

    linear = require("sklearn.linear_model", "local", "training guard classifiers")
    folds = require("sklearn.model_selection", "local", "training guard classifiers")
    # The penalty is chosen by 5-fold cross-validated log-loss on the training rows: a fixed
    # weak one (C=20) made probabilities extreme, so ordinary text near any training row
    # scored 0.9 (a third of ordinary tweets flagged on real data).
    model = linear.LogisticRegressionCV(
        Cs=CS,
        l1_ratios=(0.0,),  # plain L2
        use_legacy_attributes=False,
        cv=folds.StratifiedKFold(5, shuffle=True, random_state=0),
        scoring="neg_log_loss",
        class_weight="balanced",
        max_iter=3000,
    )
    model.fit(vectors, labels)
    return model.coef_[0].astype("float32"), float(model.intercept_[0])


# Loaded embedders by (model, cache folder): policies built many times share one model.
_EMBEDDERS: dict[tuple[str, str], Callable[[list[str]], Any]] = {}


def _embedder(model_id: str, settings: Settings) -> Callable[[list[str]], Any]:
    key = (model_id, str(settings.cache_dir))
    if key not in _EMBEDDERS:
        from fondasi.models.load import load

        model = load(model_id, settings)
        _EMBEDDERS[key] = lambda texts: model.embed(texts, purpose="query")
    return _EMBEDDERS[key]


def head(task: str, model_id: str, settings: Settings) -> LinearHead:
    """The trained head for ``task`` on ``model_id``: from the cache, or trained now."""
    import numpy as np

    rows = training_rows(task)
    embed = _embedder(model_id, settings)
    key = _fingerprint(rows, model_id)
    folder = settings.cache_dir / "guard"
    weights_file = folder / f"{task}-{key}.npz"
    if weights_file.is_file():
        with np.load(weights_file, allow_pickle=False) as stored:
            return LinearHead(stored["weights"], float(stored["bias"][0]), embed)
    texts = [row["text"] for row in rows]
    vectors = np.concatenate([embed(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)])
    weights, bias = _fit(vectors, [int(row["label"]) for row in rows])
    folder.mkdir(parents=True, exist_ok=True)
    partial = weights_file.with_suffix(".tmp.npz")
    np.savez(partial, weights=weights, bias=np.array([bias], dtype="float32"))
    partial.replace(weights_file)  # whole file or none: a killed run leaves no half cache
    note = {"task": task, "model": model_id, "rows": len(rows), "fingerprint": key}
    Path(weights_file.with_suffix(".json")).write_text(json.dumps(note, indent=2))
    return LinearHead(weights, bias, embed)


def category_head(task: str, model_id: str, settings: Settings) -> CategoryHead | None:
    """What kind of positive a text is, for tasks whose rows say (toxicity); else None."""
    import numpy as np

    from fondasi.extras import require

    rows = [r for r in training_rows(task) if r["label"] == 1 and r.get("category")]
    if len({r["category"] for r in rows}) < 2:
        return None
    embed = _embedder(model_id, settings)
    digest = hashlib.sha256(f"{model_id}\tcategories".encode())
    for row in rows:
        digest.update(f"{row['category']}\t{row['text']}\n".encode())
    weights_file = settings.cache_dir / "guard" / f"{task}-categories-{digest.hexdigest()[:16]}.npz"
    if weights_file.is_file():
        with np.load(weights_file, allow_pickle=False) as stored:
            names = [str(n) for n in stored["names"]]
            return CategoryHead(stored["weights"], stored["bias"], names, embed)
    texts = [row["text"] for row in rows]
    vectors = np.concatenate([embed(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)])
    linear = require("sklearn.linear_model", "local", "training guard classifiers")
    model = linear.LogisticRegression(C=4.0, class_weight="balanced", max_iter=3000)
    model.fit(vectors, [row["category"] for row in rows])
    names = [str(n) for n in model.classes_]
    weights, bias = model.coef_.astype("float32"), model.intercept_.astype("float32")
    weights_file.parent.mkdir(parents=True, exist_ok=True)
    partial = weights_file.with_suffix(".tmp.npz")
    np.savez(partial, weights=weights, bias=bias, names=np.array(names))  # text, not pickle
    partial.replace(weights_file)
    return CategoryHead(weights, bias, names, embed)


# Heads by (kind, task, model, cache folder): built or loaded once per process, not on
# every scan (each build reads and hashes the training rows and opens the .npz).
_HEADS: dict[tuple[str, str, str, str], Any] = {}


def _once(
    build: Callable[[str, str, Settings], Any], task: str, model_id: str, settings: Settings
) -> Any:
    key = (build.__name__, task, model_id, str(settings.cache_dir))
    if key not in _HEADS:
        _HEADS[key] = build(task, model_id, settings)
    return _HEADS[key]


def is_classifier(finding: Finding) -> bool:
    """Whether the embedding classifier made this finding (not a rule or the word list)."""
    return finding.detail == "classifier" or finding.detail.endswith("(classifier)")


def sentence_findings(task: str, text: str, filt: Filter) -> list[Finding]:
    """The classifier's hits, one per sentence scoring at least the filter's threshold."""
    if not filt.config.classifier or filt.settings is None:
        return []
    spans = list(sentences(text))
    if not spans:
        return []
    model = filt.config.embedding_model or filt.settings.embedding_model
    scores = _once(head, task, model, filt.settings).predict([text[s:e] for s, e in spans])
    floor = operating_point(filt, text)
    hits = [(s, e, p) for (s, e), p in zip(spans, scores, strict=True) if p >= floor]
    kinds = _once(category_head, task, model, filt.settings) if hits else None
    details = (
        [f"{kind} (classifier)" for kind in kinds.predict([text[s:e] for s, e, _ in hits])]
        if kinds is not None
        else ["classifier"] * len(hits)
    )
    return [
        Finding(task, s, e, round(p, 4), filt.name, detail)
        for (s, e, p), detail in zip(hits, details, strict=True)
    ]


def operating_point(filt: Filter, text: str) -> float:
    """The lowest classifier score that counts: the policy's threshold where it sets one,
    else the filter's measured operating point for the text's language."""
    points: dict[str, float] = getattr(filt, "operating_points", {})
    if filt.name in filt.config.thresholds or not points:
        return filt.min_score
    return points.get(language(text), points[""])
