"""Honest baselines, on by default: what a pre-trained model has to beat to earn its cost.

Classification: TF-IDF + logistic regression fitted on the train split, the majority class,
and a seeded random label. Retrieval: BM25 (``bm25s``). Generation: copying the input.
Each baseline registers for its task by name, as ``TASK/NAME`` (``classification/majority``);
a plug-in adds one through the ``fondasi.baselines`` entry-point group.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from fondasi.extras import require
from fondasi.registry import Registry, unknown

if TYPE_CHECKING:
    from fondasi.evaluate.datasets import Example
    from fondasi.evaluate.tasks import Context


class Baseline:
    """Fitted on the train split, then predicts outputs for test examples."""

    task: ClassVar[str]
    name: ClassVar[str]
    label: ClassVar[str]
    learns: ClassVar[bool] = False  # its answers change with the train split (learning curves)

    def fit(self, context: Context) -> None:
        """Learn from ``context.train`` (most baselines need little)."""

    def predict(self, examples: Sequence[Example]) -> list[Any]:
        """One output per example."""
        raise NotImplementedError


def _adopt(key: str, member: object) -> type[Baseline]:
    if not (isinstance(member, type) and issubclass(member, Baseline)):
        raise TypeError(f"{member!r} is not a subclass of fondasi.evaluate.baselines.Baseline")
    if key != f"{member.task}/{member.name}":
        raise ValueError(f"the baseline is {member.task}/{member.name}, not {key}")
    return member


BASELINES: Registry[type[Baseline]] = Registry("baseline", group="fondasi.baselines", adopt=_adopt)
B = TypeVar("B", bound=type[Baseline])


def register(kind: B) -> B:
    """Make a baseline available for its task."""
    BASELINES.register(f"{kind.task}/{kind.name}", kind)
    return kind


def of_task(task: str) -> dict[str, type[Baseline]]:
    """The baselines of ``task`` by name."""
    return {kind.name: kind for kind in BASELINES.values() if kind.task == task}


def for_task(task: str, wanted: bool | list[str]) -> list[Baseline]:
    """The baselines a run asked for: all of the task's, none, or by name."""
    known = of_task(task)
    if wanted is False:
        return []
    names = list(known) if wanted is True else wanted
    chosen = []
    for name in names:
        if name not in known:
            raise unknown(f"baseline for task {task}", name, known, empty="(none for this task)")
        chosen.append(known[name]())
    return chosen


def _labels(context: Context) -> list[str]:
    return [str(example.fields["label"]) for example in context.train]


@register
class TfidfLogistic(Baseline):
    """Word and character n-gram TF-IDF with logistic regression (scikit-learn)."""

    task = "classification"
    name = "tfidf-lr"
    learns = True
    label = "baseline · TF-IDF + LR"

    def fit(self, context: Context) -> None:
        require("sklearn", "eval", "the TF-IDF baseline")  # the extra, named
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline, make_union

        texts = [str(example.fields["text"]) for example in context.train]
        # Character n-grams carry Indonesian affixes and slang spellings that words miss.
        features = make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        )
        self.model = make_pipeline(
            features, LogisticRegression(max_iter=2000, random_state=context.config.seed)
        )
        self.constant = None
        labels = _labels(context)
        if len(set(labels)) < 2:
            self.constant = labels[0] if labels else None
            return
        self.model.fit(texts, labels)

    def predict(self, examples: Sequence[Example]) -> list[Any]:
        if self.constant is not None:
            return [self.constant] * len(examples)
        return [str(label) for label in self.model.predict([e.fields["text"] for e in examples])]


@register
class Majority(Baseline):
    """Always the most common train label."""

    task = "classification"
    name = "majority"
    label = "baseline · majority class"

    def fit(self, context: Context) -> None:
        counts = Counter(_labels(context))
        # Ties go to the alphabetically first label, so the choice never depends on order.
        self.top = min(counts, key=lambda name: (-counts[name], name)) if counts else None

    def predict(self, examples: Sequence[Example]) -> list[Any]:
        return [self.top] * len(examples)


@register
class RandomLabel(Baseline):
    """A label drawn uniformly at random (seeded) from the label set."""

    task = "classification"
    name = "random"
    label = "baseline · random label"

    def fit(self, context: Context) -> None:
        self.labels = sorted(set(context.labels or _labels(context)))
        self.rng = random.Random(context.config.seed)

    def predict(self, examples: Sequence[Example]) -> list[Any]:
        return [self.rng.choice(self.labels) for _ in examples]


@register
class Bm25(Baseline):
    """BM25 over the corpus (bm25s), with a simple lower-case word tokenizer."""

    task = "retrieval"
    name = "bm25"
    label = "baseline · BM25"

    def fit(self, context: Context) -> None:
        bm25s = require("bm25s", "eval", "the BM25 baseline")
        self.bm25s = bm25s
        self.ids = [str(doc.fields["id"]) for doc in context.corpus]
        # No English stop words: the corpus may be Indonesian.
        tokens = bm25s.tokenize(
            [str(doc.fields["text"]) for doc in context.corpus], stopwords=None, show_progress=False
        )
        self.index = bm25s.BM25()
        self.index.index(tokens, show_progress=False)

    def predict(self, examples: Sequence[Example]) -> list[Any]:
        from fondasi.evaluate.tasks.rank import MAX_RANKED

        queries = self.bm25s.tokenize(
            [str(e.fields["query"]) for e in examples], stopwords=None, show_progress=False
        )
        top = min(MAX_RANKED, len(self.ids))
        found, _ = self.index.retrieve(queries, k=top, show_progress=False, n_threads=1)
        return [[self.ids[int(i)] for i in row] for row in found]


@register
class CopyInput(Baseline):
    """The input itself as the answer: a floor for rewriting, summaries and translation."""

    task = "generation"
    name = "copy-input"
    label = "baseline · copy the input"

    def predict(self, examples: Sequence[Example]) -> list[Any]:
        return [str(example.fields["input"]) for example in examples]
