"""Metrics by task, registered by name, computed with the field's libraries.

scikit-learn (accuracy, F1, nDCG), sacrebleu (BLEU, chrF on its 0–100 scale) and
rouge-score (ROUGE-L). Every metric reads the references and the predictions of a whole
run, so the bootstrap can recompute it on resampled examples. A metric name may carry a
cut-off: ``recall@5``, ``ndcg@10``. A metric is registered as ``TASK/NAME``
(``classification/accuracy``), the name a plug-in's entry point in ``fondasi.metrics`` uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fondasi.errors import BadInputError, UnknownChoiceError
from fondasi.extras import require
from fondasi.registry import Registry, close_matches

MetricFn = Callable[[Sequence[Any], Sequence[Any], int], float]
NONE_LABEL = "(no answer)"


@dataclass(frozen=True)
class Metric:
    """One metric of one task."""

    task: str
    name: str
    fn: MetricFn
    summary: str
    default_k: int = 0  # 0: the metric takes no cut-off
    scale: float = 1.0  # 100 for sacrebleu's BLEU and chrF
    reads: str = "output"  # what the metric reads per example: "output" or "judge"


def _adopt(key: str, member: object) -> Metric:
    if not isinstance(member, Metric):
        raise TypeError(f"{member!r} is not a fondasi.evaluate.metrics.Metric")
    if key != f"{member.task}/{member.name}":
        raise ValueError(f"the metric is {member.task}/{member.name}, not {key}")
    return member


# Metrics that live beside their task (structured, function calling) register on import.
METRICS: Registry[Metric] = Registry(
    "metric",
    group="fondasi.metrics",
    builtins=(
        "fondasi.evaluate.ranking",
        "fondasi.evaluate.tasks.extract",
        "fondasi.evaluate.tasks.speech",
        "fondasi.evaluate.tasks.tools",
    ),
    adopt=_adopt,
)


def metric(
    task: str, name: str, summary: str, *, k: int = 0, scale: float = 1.0, reads: str = "output"
) -> Callable[[MetricFn], MetricFn]:
    """Register a metric function for a task."""

    def add(fn: MetricFn) -> MetricFn:
        METRICS.register(f"{task}/{name}", Metric(task, name, fn, summary, k, scale, reads))
        return fn

    return add


def of_task(task: str) -> dict[str, Metric]:
    """The metrics of ``task`` by name."""
    return {found.name: found for found in METRICS.values() if found.task == task}


@dataclass(frozen=True)
class Chosen:
    """A metric with its cut-off, as a config names it (``recall@5``)."""

    metric: Metric
    k: int

    @property
    def name(self) -> str:
        """The name as shown: with its cut-off when it has one."""
        return f"{self.metric.name}@{self.k}" if self.metric.default_k else self.metric.name

    def __call__(self, references: Sequence[Any], outputs: Sequence[Any]) -> float:
        return float(self.metric.fn(references, outputs, self.k))


def choose(task: str, name: str) -> Chosen:
    """The metric ``name`` of ``task``; an unknown one lists the task's metrics."""
    base, _, cut = name.partition("@")
    known = of_task(task)
    if base not in known:
        names = sorted(m.name + ("@k" if m.default_k else "") for m in known.values())
        raise UnknownChoiceError(
            f"metric for task {task}", name, names or ["(none)"], close_matches(base, list(known))
        )
    found = known[base]
    if cut and not found.default_k:
        raise BadInputError(f"metric {base!r} takes no @k cut-off")
    if cut and (not cut.isdigit() or int(cut) < 1):
        raise BadInputError(f"metric {name!r}: the cut-off after @ must be a positive number")
    return Chosen(found, int(cut) if cut else found.default_k)


def _labels(values: Sequence[Any]) -> list[str]:
    return [NONE_LABEL if value is None else str(value) for value in values]


# -- classification -----------------------------------------------------------------------


@metric("classification", "accuracy", "share of examples labelled correctly")
def accuracy(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    require("sklearn", "eval", "scoring answers")  # the extra, named
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(_labels(references), _labels(outputs)))


def _f1(references: Sequence[Any], outputs: Sequence[Any], average: str) -> float:
    require("sklearn", "eval", "scoring answers")  # the extra, named
    from sklearn.metrics import f1_score

    refs = _labels(references)
    # Averaged over the reference classes: a label the model invents adds no class of its own.
    return float(
        f1_score(refs, _labels(outputs), labels=sorted(set(refs)), average=average, zero_division=0)
    )


@metric("classification", "macro_f1", "F1 averaged over classes, each class counting the same")
def macro_f1(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    return _f1(references, outputs, "macro")


@metric("classification", "weighted_f1", "F1 averaged over classes, weighted by their size")
def weighted_f1(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    return _f1(references, outputs, "weighted")


def per_class(references: Sequence[Any], outputs: Sequence[Any]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of each reference class."""
    require("sklearn", "eval", "scoring answers")  # the extra, named
    from sklearn.metrics import precision_recall_fscore_support

    refs, preds = _labels(references), _labels(outputs)
    names = sorted(set(refs))
    precision, recall, f1, support = precision_recall_fscore_support(
        refs, preds, labels=names, zero_division=0
    )
    return {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(names)
    }


def confusion(references: Sequence[Any], outputs: Sequence[Any]) -> dict[str, Any]:
    """Rows: reference labels; columns: predicted labels (answers outside the set included)."""
    require("sklearn", "eval", "scoring answers")  # the extra, named
    from sklearn.metrics import confusion_matrix

    refs, preds = _labels(references), _labels(outputs)
    rows = sorted(set(refs))
    columns = rows + sorted(set(preds) - set(rows))
    matrix = confusion_matrix(refs, preds, labels=columns)[: len(rows)]
    return {"rows": rows, "columns": columns, "matrix": matrix.tolist()}


# -- generation ---------------------------------------------------------------------------


def _texts(values: Sequence[Any]) -> list[str]:
    return ["" if value is None else str(value) for value in values]


@metric("generation", "chrf", "character n-gram F-score (sacrebleu, 0–100)", scale=100)
def chrf(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_chrf(_texts(outputs), [_texts(references)]).score)


@metric("generation", "bleu", "corpus BLEU (sacrebleu, 0–100)", scale=100)
def bleu(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_bleu(_texts(outputs), [_texts(references)]).score)


@metric("generation", "rouge_l", "ROUGE-L F-measure (rouge-score), mean over examples")
def rouge_l(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    from rouge_score import rouge_scorer  # type: ignore[import-untyped]

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    pairs = zip(_texts(references), _texts(outputs), strict=True)
    scores = [scorer.score(ref, out)["rougeL"].fmeasure for ref, out in pairs]
    return sum(scores) / len(scores) if scores else 0.0


def normalise_text(text: str) -> str:
    """Lower case, no surrounding punctuation or repeated spaces: for exact match."""
    return " ".join(text.lower().strip().strip(".!?,;:'\"").split())


@metric("generation", "exact_match", "share of answers equal to the reference (normalised)")
def exact_match(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    require("sklearn", "eval", "scoring answers")  # the extra, named
    from sklearn.metrics import accuracy_score

    refs = [normalise_text(text) for text in _texts(references)]
    outs = [normalise_text(text) for text in _texts(outputs)]
    return float(accuracy_score(refs, outs)) if refs else 0.0


@metric("generation", "judge", "judge model's grade, 1–5 scaled to 0–1", reads="judge")
def judge(references: Sequence[Any], grades: Sequence[Any], k: int) -> float:
    graded = [(float(grade) - 1) / 4 for grade in grades if grade is not None]
    return sum(graded) / len(graded) if graded else 0.0


# -- extraction ---------------------------------------------------------------------------


def field_items(value: Any) -> set[str]:
    """The non-empty ``field=value`` pairs of a JSON object, values normalised."""
    if not isinstance(value, Mapping):
        return set()
    return {
        f"{key}={normalise_text(str(item))}"
        for key, item in value.items()
        if item is not None and str(item).strip() != ""
    }


def _field_scores(references: Sequence[Any], outputs: Sequence[Any]) -> tuple[float, float, float]:
    require("sklearn", "eval", "scoring answers")  # the extra, named
    from sklearn.metrics import precision_recall_fscore_support
    from sklearn.preprocessing import MultiLabelBinarizer

    refs = [field_items(value) for value in references]
    outs = [field_items(value) for value in outputs]
    binarizer = MultiLabelBinarizer().fit([*refs, *outs, {"-"}])
    precision, recall, f1, _ = precision_recall_fscore_support(
        binarizer.transform(refs), binarizer.transform(outs), average="micro", zero_division=0
    )
    return float(precision), float(recall), float(f1)


@metric("extraction", "field_f1", "micro F1 over field=value pairs (scikit-learn)")
def field_f1(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    return _field_scores(references, outputs)[2]


@metric("extraction", "field_precision", "share of extracted field values that are right")
def field_precision(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    return _field_scores(references, outputs)[0]


@metric("extraction", "field_recall", "share of reference field values that were extracted")
def field_recall(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    return _field_scores(references, outputs)[1]


@metric("extraction", "json_valid", "share of answers that are a JSON object")
def json_valid(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    return sum(isinstance(value, Mapping) for value in outputs) / len(outputs) if outputs else 0.0


@metric("extraction", "exact_match", "share of answers with every field right")
def extraction_exact(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    pairs = zip(references, outputs, strict=True)
    hits = [field_items(ref) == field_items(out) and out is not None for ref, out in pairs]
    return sum(hits) / len(hits) if hits else 0.0
