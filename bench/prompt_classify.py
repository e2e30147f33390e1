"""Zero-shot and few-shot classification on the bundled sentiment sets, in one run.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/prompt_classify.py [--quick] [--only SUBSTRING]
        [--threads N]

Runs every approach on `sentiment-id` (80 rows, positif/negatif) and `sentiment-en`
(40 rows, positive/negative), each with its own template, and prints accuracy, its
distance from the majority-class anchor measured on the same rows, macro-F1 and
milliseconds per text (model loading and one warm-up call excluded). Few-shot approaches
that draw examples from the data set use 2-fold cross-validation: the first half is the
pool for the second half and the other way round, so no text is its own example.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sklearn.metrics import f1_score

import fondasi
from fondasi.data import bundled, read_jsonl

Row = dict[str, str]
E5 = "multilingual-e5-small"
SMOL = "smollm2-135m-instruct"
GEMMA = "gemma-3-270m"
MAJORITY = "majority class (anchor)"


@dataclass
class Dataset:
    """A bundled set with the template and label descriptions that go with it."""

    name: str
    rows: list[Row]
    labels: list[str]
    template: str
    descriptions: dict[str, str]
    template_shots: list[Row]  # the template's own examples, labels of this set only

    @property
    def texts(self) -> list[str]:
        return [row["text"] for row in self.rows]


def load_dataset(name: str, descriptions: dict[str, str], quick: bool) -> Dataset:
    """A bundled set, its template (same name) and the template's examples as rows."""
    rows = read_jsonl(bundled(name))
    rows = rows[:20] if quick else rows
    labels = sorted({row["label"] for row in rows}, key=list(descriptions).index)
    examples = fondasi.Prompt.load(name).examples
    shots = [
        {"text": example["input"], "label": example["output"]}
        for example in examples
        if example["output"] in labels
    ]
    return Dataset(name, rows, labels, name, descriptions, shots)


Predict = Callable[[Any, Dataset, list[str], list[Row] | None], list[str]]


@dataclass
class Approach:
    """One way of classifying: a model and what to call on it."""

    name: str
    model: str | None
    predict: Predict
    two_fold: bool = False  # examples come from the data set: cross-validate


def top(results: Sequence[Sequence[Any]]) -> list[str]:
    return [ranking[0].label for ranking in results]


def lm(k: int, calibrate: bool, select: str | None = None, own: bool = False) -> Predict:
    """Prompt classification by label log-probability; shots from the pool or template."""

    def predict(m: Any, data: Dataset, texts: list[str], pool: list[Row] | None) -> list[str]:
        shots = data.template_shots if own else pool
        return top(
            m.classify(
                texts,
                data.labels,
                template=data.template,
                k=k,
                select=select,
                shots=shots if k else None,
                calibrate=calibrate,
            )
        )

    return predict


def e5_descriptions(m: Any, data: Dataset, texts: list[str], pool: list[Row] | None) -> list[str]:
    return top(m.classify(texts, data.descriptions))


def e5_prototypes(m: Any, data: Dataset, texts: list[str], pool: list[Row] | None) -> list[str]:
    return top(m.classify(texts, data.labels, shots=pool))


def majority(m: Any, data: Dataset, texts: list[str], pool: list[Row] | None) -> list[str]:
    label = Counter(row["label"] for row in data.rows).most_common(1)[0][0]
    return [label] * len(texts)


APPROACHES = [
    Approach(MAJORITY, None, majority),
    Approach("e5 zero-shot, label descriptions", E5, e5_descriptions),
    Approach("e5 prototypes (2-fold)", E5, e5_prototypes, two_fold=True),
    Approach("zero-shot, calibrated", SMOL, lm(0, calibrate=True)),
    Approach("zero-shot, uncalibrated", SMOL, lm(0, calibrate=False)),
    Approach("knn k=4 (2-fold)", SMOL, lm(4, calibrate=False, select="knn"), two_fold=True),
    Approach("knn k=4 (2-fold), calibrated", SMOL, lm(4, True, select="knn"), two_fold=True),
    Approach("zero-shot, calibrated", GEMMA, lm(0, calibrate=True)),
    Approach("zero-shot, uncalibrated", GEMMA, lm(0, calibrate=False)),
    Approach("template examples k=6", GEMMA, lm(6, False, select="balanced", own=True)),
]


def run(approach: Approach, m: Any, data: Dataset) -> tuple[list[str], float]:
    """Predicted labels in row order and the seconds the classify calls took."""
    texts = data.texts
    if not approach.two_fold:
        start = time.perf_counter()
        predicted = approach.predict(m, data, texts, None)
        return predicted, time.perf_counter() - start
    half = len(data.rows) // 2
    folds = [(slice(half, None), slice(None, half)), (slice(None, half), slice(half, None))]
    predicted = [""] * len(texts)
    elapsed = 0.0
    for pool_part, test_part in folds:
        start = time.perf_counter()
        out = approach.predict(m, data, texts[test_part], data.rows[pool_part])
        elapsed += time.perf_counter() - start
        predicted[test_part] = out
    return predicted, elapsed


def main() -> None:
    """Run every selected approach on both sets and print one table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="First 20 rows of each set.")
    parser.add_argument("--only", help="Run only approaches whose name or model contains this.")
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads for every model (FONDASI_THREADS); default: fondasi's, all cores.",
    )
    args = parser.parse_args()
    if args.threads:
        os.environ["FONDASI_THREADS"] = str(args.threads)
    datasets = [
        load_dataset(
            "sentiment-id",
            {"positif": "ulasan positif, puas", "negatif": "ulasan negatif, kecewa"},
            args.quick,
        ),
        load_dataset(
            "sentiment-en",
            {"positive": "positive review, satisfied", "negative": "negative review, disappointed"},
            args.quick,
        ),
    ]
    wanted = args.only.lower() if args.only else None
    chosen = [
        a
        for a in APPROACHES
        if a.name == MAJORITY or not wanted or wanted in f"{a.name} {a.model}".lower()
    ]
    console = Console()
    if not console.is_terminal:  # a log file or pipe: wide enough for one line a row
        console = Console(width=150)
    results: list[tuple[Approach, Dataset, float, float, float, float]] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} texts"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        total = sum(len(d.rows) for d in datasets) * len(chosen)
        bar = progress.add_task("loading", total=total)
        for approach in chosen:
            # A fresh model per approach: the embedding cache would otherwise serve texts
            # an earlier approach already embedded.
            m = None
            if approach.model:
                progress.update(bar, description=f"loading {approach.model}")
                m = fondasi.model(approach.model)
            for data in datasets:
                progress.update(
                    bar, description=f"{approach.model or '-'}: {approach.name}, {data.name}"
                )
                if m is not None:  # warm-up on a text outside the set
                    approach.predict(m, data, [data.template_shots[0]["text"]], data.template_shots)
                predicted, seconds = run(approach, m, data)
                gold = [row["label"] for row in data.rows]
                accuracy = sum(p == g for p, g in zip(predicted, gold, strict=True)) / len(gold)
                chance = Counter(gold).most_common(1)[0][1] / len(gold)
                macro = f1_score(
                    gold, predicted, labels=data.labels, average="macro", zero_division=0
                )
                results.append(
                    (approach, data, accuracy, chance, float(macro), seconds * 1000 / len(gold))
                )
                progress.advance(bar, len(gold))
                progress.console.log(
                    f"{approach.model or '-'}, {approach.name}, {data.name}: "
                    f"accuracy {accuracy:.3f}, {seconds * 1000 / len(gold):.0f} ms/text"
                )
    rows = ", ".join(f"{d.name} {len(d.rows)} rows" for d in datasets)
    threads = args.threads or os.cpu_count()
    table = Table(
        title=f"Sentiment classification ({rows}), {threads} thread{'s' * (threads != 1)}, "
        f"load avg {os.getloadavg()[0]:.2f}"
    )
    for column in ("approach", "model", "dataset"):
        table.add_column(column)
    for column in ("accuracy", "vs chance (points)", "macro-F1", "ms/text"):
        table.add_column(column, justify="right")
    for approach, data, accuracy, chance, macro, ms in sorted(
        results, key=lambda r: datasets.index(r[1])
    ):
        table.add_row(
            approach.name,
            approach.model or "-",
            data.name,
            f"{accuracy:.3f}",
            f"{(accuracy - chance) * 100:+.1f}",
            f"{macro:.3f}",
            f"{ms:.0f}" if approach.model else "-",
        )
    console.print(table)


if __name__ == "__main__":
    main()
