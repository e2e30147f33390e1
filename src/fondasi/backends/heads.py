"""Classifier heads over frozen embeddings, each registered by name: ``linear`` (logistic
regression), ``knn`` (a vote of the nearest labelled examples) and ``hybrid`` (TF-IDF
n-grams beside the embedding, one logistic regression over both).

A fitted head is plain arrays and a little JSON: ``Fitted.state`` is saved as ``.npz`` and
read back with ``allow_pickle=False``, so a tuned folder never runs code when it loads.
``fondasi tune --method linear-head|knn|hybrid|setfit`` and eval candidates with ``head:``
fit them here; ``fondasi.backends.tuned_head`` serves them. Another package adds a head
through the ``fondasi.heads`` entry-point group.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from fondasi.errors import BadInputError
from fondasi.extras import require
from fondasi.registry import Registry, instances_of

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Array = npt.NDArray[Any]

# Regularisation strengths tried by cross-validation. Unit-length embeddings need weak
# regularisation (C of 10 to 100) to separate classes; TF-IDF rows need less room.
CS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
KS = (1, 3, 5, 7, 11, 15, 21, 31)  # neighbour counts leave-one-out chooses from
DENSE_WEIGHTS = (1.0, 3.0, 10.0)  # the embedding block's length over the TF-IDF part's
# A heavier dense block needs less C to reach the same fit; above 30 lbfgs only crawls
# towards memorising the n-grams.
HYBRID_CS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
# Three fits per C and fold: a looser stopping rule made them 3x faster (300 rows, 16k
# n-grams) for a C one step away.
HYBRID_TOL = 1e-3
MOST_FOR_CHOOSING_K = 3000  # rows the leave-one-out similarity matrix is built over


@dataclass
class Fitted:
    """A head fitted on labelled vectors: what it predicts and the arrays it needs."""

    head: str
    labels: list[str]
    state: dict[str, Array] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


class Head:
    """How a label is read off embeddings; a subclass fits and scores."""

    name: ClassVar[str]
    summary: ClassVar[str]

    def fit(
        self,
        vectors: Array,
        texts: Sequence[str],
        targets: Sequence[int],
        labels: list[str],
        *,
        seed: int = 0,
        k: int | None = None,
    ) -> Fitted:
        """Learn from rows of ``vectors`` (and their ``texts``) labelled ``labels[targets[i]]``."""
        raise NotImplementedError

    def scores(self, fitted: Fitted, vectors: Array, texts: Sequence[str]) -> Array:
        """One row of label probabilities per input, columns in ``fitted.labels`` order."""
        raise NotImplementedError


HEADS: Registry[Head] = Registry(
    "head", "fondasi.heads", builtins=(__name__,), adopt=instances_of(Head, "head")
)
H = TypeVar("H", bound=Head)


def register_head(kind: type[H]) -> type[H]:
    """Make a head available by its name."""
    HEADS.register(kind.name, kind())
    return kind


def head(name: str) -> Head:
    """The head called ``name``; an unknown one lists the close ones."""
    return HEADS.get(name)


def _logistic(
    features: Any,
    targets: Sequence[int],
    seed: int,
    strengths: Sequence[float] = CS,
    tol: float = 1e-4,
) -> dict[str, Array]:
    """Coefficients of an L2 logistic regression, C chosen by stratified cross-validation."""
    require("sklearn", "local", "classifier heads")
    import numpy as np
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(targets)
    classes = sorted(set(y.tolist()))
    if len(classes) < 2:
        raise BadInputError("a head needs examples of at least two labels")
    folds = min(5, min(Counter(y.tolist()).values()))
    if folds < 2:  # a label with one example cannot be in every fold: no search
        model: Any = LogisticRegression(C=10.0, max_iter=3000)
        chosen, fitness = 10.0, float("-inf")
        model.fit(features, y)
    else:
        model = LogisticRegressionCV(
            Cs=list(strengths),
            l1_ratios=(0.0,),  # plain L2
            use_legacy_attributes=False,
            cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
            # Log-loss picks a C whose probabilities mean something, not only the argmax.
            scoring="neg_log_loss",
            max_iter=3000,
            tol=tol,
        )
        model.fit(features, y)
        chosen = float(model.C_)
        # scores_: folds x l1 ratios x Cs; the best C's mean over the folds.
        fitness = float(np.max(np.asarray(model.scores_).mean(axis=0)))
    return {
        "coef": np.asarray(model.coef_, dtype=np.float32),
        "intercept": np.asarray(model.intercept_, dtype=np.float32),
        "classes": np.asarray(model.classes_, dtype=np.int64),
        "C": np.asarray([chosen], dtype=np.float32),
        "cv_log_loss": np.asarray([-fitness], dtype=np.float32),  # lower is better
    }


def _probabilities(state: dict[str, Array], features: Any, width: int) -> Array:
    """Logistic-regression probabilities from saved coefficients, as sklearn computes them."""
    import numpy as np

    z = np.asarray(features @ state["coef"].T, dtype=np.float64) + state["intercept"]
    if z.shape[1] == 1:  # two classes: one logit for the second
        second = 1.0 / (1.0 + np.exp(-z[:, 0]))
        probabilities = np.stack([1.0 - second, second], axis=1)
    else:
        z -= z.max(axis=1, keepdims=True)
        probabilities = np.exp(z)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
    out = np.zeros((z.shape[0], width), dtype=np.float32)
    out[:, state["classes"]] = probabilities  # labels never seen in training score 0
    return out


@register_head
class Linear(Head):
    """Logistic regression on the embedding, C chosen by cross-validation."""

    name = "linear"
    summary = "logistic regression on frozen embeddings (C by cross-validation)"

    def fit(
        self,
        vectors: Array,
        texts: Sequence[str],
        targets: Sequence[int],
        labels: list[str],
        *,
        seed: int = 0,
        k: int | None = None,
    ) -> Fitted:
        state = _logistic(vectors, targets, seed)
        return Fitted(self.name, labels, state, {"C": float(state["C"][0])})

    def scores(self, fitted: Fitted, vectors: Array, texts: Sequence[str]) -> Array:
        return _probabilities(fitted.state, vectors, len(fitted.labels))


def _vote(similarity: Array, targets: Array, k: int, width: int) -> Array:
    """Label shares of the ``k`` most similar rows, each weighted by its similarity."""
    import numpy as np

    k = min(k, similarity.shape[1])
    nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    weights = np.clip(np.take_along_axis(similarity, nearest, axis=1), 1e-6, None)
    out = np.zeros((similarity.shape[0], width), dtype=np.float32)
    np.add.at(out, (np.arange(similarity.shape[0])[:, None], targets[nearest]), weights)
    shares: Array = out / out.sum(axis=1, keepdims=True)
    return shares


def choose_k(vectors: Array, targets: Array, seed: int) -> int:
    """The neighbour count with the best leave-one-out accuracy on the labelled rows."""
    import numpy as np

    rows = np.arange(len(targets))
    if len(rows) > MOST_FOR_CHOOSING_K:
        rows = np.random.default_rng(seed).choice(rows, MOST_FOR_CHOOSING_K, replace=False)
    sample, truth = vectors[rows], targets[rows]
    similarity = sample @ sample.T
    np.fill_diagonal(similarity, -np.inf)  # a row must not vote for itself
    width = int(targets.max()) + 1
    best, best_k = -1.0, 1
    for k in (k for k in KS if k < len(rows)):
        accuracy = float((_vote(similarity, truth, k, width).argmax(axis=1) == truth).mean())
        if accuracy > best:  # ties keep the smaller k
            best, best_k = accuracy, k
    return best_k


@register_head
class Knn(Head):
    """A similarity-weighted vote of the nearest labelled examples (cosine)."""

    name = "knn"
    summary = "vote of the k most similar labelled examples (cosine; k by leave-one-out)"

    def fit(
        self,
        vectors: Array,
        texts: Sequence[str],
        targets: Sequence[int],
        labels: list[str],
        *,
        seed: int = 0,
        k: int | None = None,
    ) -> Fitted:
        import numpy as np

        if not len(targets):
            raise BadInputError("a kNN head needs labelled examples")
        y = np.asarray(targets, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32)
        chosen = k or choose_k(vectors, y, seed)
        return Fitted(self.name, labels, {"vectors": vectors, "targets": y}, {"k": chosen})

    def scores(self, fitted: Fitted, vectors: Array, texts: Sequence[str]) -> Array:
        similarity = vectors @ fitted.state["vectors"].T
        return _vote(similarity, fitted.state["targets"], fitted.config["k"], len(fitted.labels))


def _vectorizers(word: Array | None = None, char: Array | None = None) -> list[Any]:
    """The baseline's two TF-IDF vectorizers; with saved terms, rebuilt without fitting."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    def vocabulary(terms: Array | None) -> dict[str, int] | None:
        return None if terms is None else {str(t): i for i, t in enumerate(terms)}

    # Character n-grams carry Indonesian affixes and slang spellings that words miss.
    return [
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, vocabulary=vocabulary(word)),
        TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, vocabulary=vocabulary(char)
        ),
    ]


def _hybrid_features(
    vectorizers: list[Any], vectors: Array, texts: Sequence[str], weight: float
) -> Any:
    from scipy import sparse

    # Each TF-IDF block has unit rows, so the sparse part has length sqrt(2); the dense
    # block is scaled to ``weight`` times that length.
    dense = sparse.csr_matrix(vectors * (weight * 2**0.5))
    return sparse.hstack([v.transform(texts) for v in vectorizers] + [dense], format="csr")


@register_head
class Hybrid(Head):
    """Word and character TF-IDF beside the embedding, one logistic regression over both."""

    name = "hybrid"
    summary = "TF-IDF n-grams + embedding, scaled to equal weight, one logistic regression"

    def fit(
        self,
        vectors: Array,
        texts: Sequence[str],
        targets: Sequence[int],
        labels: list[str],
        *,
        seed: int = 0,
        k: int | None = None,
    ) -> Fitted:
        import numpy as np

        vectorizers = _vectorizers()
        for vectorizer in vectorizers:
            vectorizer.fit(texts)

        # Thousands of n-grams can memorise a few hundred rows where the embedding would
        # generalise: how much the dense block weighs is chosen by the same cross-validation.
        def features(weight: float) -> Any:
            return _hybrid_features(vectorizers, vectors, texts, weight)

        fits = [
            (w, _logistic(features(w), targets, seed, HYBRID_CS, HYBRID_TOL)) for w in DENSE_WEIGHTS
        ]
        weight, state = min(fits, key=lambda fit: float(fit[1]["cv_log_loss"][0]))
        state["dense_weight"] = np.asarray([weight], dtype=np.float32)
        for part, vectorizer in zip(("word", "char"), vectorizers, strict=True):
            terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
            state[f"{part}_terms"] = np.asarray(terms, dtype=str)  # unicode, not objects
            state[f"{part}_idf"] = vectorizer.idf_.astype(np.float64)
        config = {"C": float(state["C"][0]), "dense_weight": weight}
        return Fitted(self.name, labels, state, config)

    def scores(self, fitted: Fitted, vectors: Array, texts: Sequence[str]) -> Array:
        vectorizers = fitted.config.get("_vectorizers")
        if vectorizers is None:  # rebuilt once per loaded head, then kept beside it
            vectorizers = _vectorizers(fitted.state["word_terms"], fitted.state["char_terms"])
            for part, vectorizer in zip(("word", "char"), vectorizers, strict=True):
                vectorizer.idf_ = fitted.state[f"{part}_idf"]
            fitted.config["_vectorizers"] = vectorizers
        weight = float(fitted.state["dense_weight"][0])
        features = _hybrid_features(vectorizers, vectors, texts, weight)
        return _probabilities(fitted.state, features, len(fitted.labels))


def fit(
    name: str,
    vectors: Array,
    texts: Sequence[str],
    labels_of_rows: Sequence[str],
    *,
    labels: list[str] | None = None,
    seed: int = 0,
    k: int | None = None,
) -> Fitted:
    """Fit head ``name`` on rows labelled ``labels_of_rows``; ``labels`` (default: theirs,
    sorted) may name more, which then score 0."""
    labels = labels or sorted(set(labels_of_rows))
    index = {label: i for i, label in enumerate(labels)}
    targets = [index[label] for label in labels_of_rows]
    return head(name).fit(vectors, texts, targets, labels, seed=seed, k=k)


def predict(fitted: Fitted, vectors: Array, texts: Sequence[str]) -> Array:
    """Label probabilities for new rows, columns in ``fitted.labels`` order."""
    import numpy as np

    # A floor keeps every label possible: asking for a subset of labels renormalises over
    # them, which a row of zeros (no neighbour of that label) would turn into 0 / 0.
    scores = np.clip(head(fitted.head).scores(fitted, vectors, texts), 1e-9, None)
    shares: Array = scores / scores.sum(axis=1, keepdims=True)
    return shares


def as_matrix(rows: Any) -> np.ndarray[Any, Any]:
    """Embeddings as a float32 matrix with unit-length rows (cosine is then a dot product)."""
    import numpy as np

    matrix = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: np.ndarray[Any, Any] = matrix / np.clip(norms, 1e-12, None)
    return unit
