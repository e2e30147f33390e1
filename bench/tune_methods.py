"""Tuning methods against each other and against not tuning at all, on Indonesian sentiment.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/tune_methods.py [--epochs N]
        [--methods full,lora,ia3,prompt-tuning] [--seeds 42,0,1,2] [--jobs N] [--no-lm]
        [--threads N] [--markdown]

MiniLM (all-MiniLM-L6-v2) is tuned on `sentiment3-id-train` (300 rows, positif / negatif /
netral) and measured on `sentiment3-id-dev` (90 rows) with each method's own defaults
(learning rate, epochs, early stopping on the dev set) unless --epochs is given. Each run
is a separate `fondasi tune --json` process, so its peak RAM is its own. In the same table:
the majority class, TF-IDF + logistic regression fitted on the same training rows (the
anchor: every accuracy is also shown as points above or below it), zero-shot
classification by embedding similarity (MiniLM, multilingual e5) and few-shot
classification (e5 prototypes of 8 training rows per label; Gemma 3 270M with 6 examples
in its prompt, scored by log-probability: the best small LM on Indonesian in the
prompting benchmark).

With several ``--seeds`` each method runs once per seed (the seed sets the new head's
initial weights and the shuffling); its row shows the mean and every seed's accuracy, since
on 90 dev rows one seed can move a method by ten points. ``--jobs`` runs that many tuning
processes at once (with ``--threads 1``, one per core).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from rich.console import Console
from rich.table import Table
from sklearn.metrics import accuracy_score, f1_score

import fondasi
from fondasi.data import bundled, read_jsonl
from fondasi.tune.report import baseline

MINILM = "all-minilm-l6-v2"
E5 = "multilingual-e5-small"
GEMMA = "gemma-3-270m"
ANCHOR = "TF-IDF + logistic regression (anchor)"
DESCRIPTIONS = {
    "positif": "ulasan positif: puas, senang, memuji",
    "negatif": "ulasan negatif: kecewa, kesal, mengeluh",
    "netral": "pernyataan netral: fakta atau pertanyaan tanpa perasaan",
}
console = Console()


@dataclass
class Row:
    """One line of the table."""

    approach: str
    accuracy: float
    macro_f1: float
    trainable: int | None = None
    total: int | None = None
    seconds_per_epoch: float | None = None
    epochs: float | None = None
    peak_ram_mb: float | None = None
    ms_per_text: float | None = None
    per_seed: dict[int, float] | None = None


def scores(truth: list[str], guesses: list[str]) -> tuple[float, float]:
    return (
        float(accuracy_score(truth, guesses)),
        float(f1_score(truth, guesses, average="macro", zero_division=0)),
    )


def tuned(method: str, epochs: float | None, folder: Path, seed: int = 42) -> Row:
    """One `fondasi tune` run in its own process."""
    out = folder / f"{method}-{seed}"
    command = [
        sys.executable, "-m", "fondasi", "tune", MINILM,
        "--data", str(bundled("sentiment3-id-train")),
        "--eval-data", str(bundled("sentiment3-id-dev")),
        "--method", method, "--out", str(out), "--json", "--seed", str(seed),
    ]  # fmt: skip
    if epochs:
        command += ["--epochs", str(epochs)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{method} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    rows = len(read_jsonl(bundled("sentiment3-id-train")))
    steps_per_epoch = -(-rows // int(result["hyperparameters"]["batch_size"]))
    run_epochs = result["steps"] / steps_per_epoch
    return Row(
        approach=f"{method} fine-tuning",
        accuracy=result["metrics"]["accuracy"],
        macro_f1=result["metrics"]["macro_f1"],
        trainable=result["trainable"],
        total=result["total"],
        seconds_per_epoch=result["seconds"] / run_epochs,
        epochs=run_epochs,
        peak_ram_mb=result["peak_ram_mb"],
        per_seed={seed: result["metrics"]["accuracy"]},
    )


def over_seeds(runs: list[Row]) -> Row:
    """One method's runs at several seeds as one row: means, and each seed's accuracy."""

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    per_seed = {seed: acc for run in runs for seed, acc in (run.per_seed or {}).items()}
    return Row(
        approach=runs[0].approach,
        accuracy=mean([r.accuracy for r in runs]),
        macro_f1=mean([r.macro_f1 for r in runs]),
        trainable=runs[0].trainable,
        total=runs[0].total,
        seconds_per_epoch=mean([r.seconds_per_epoch or 0.0 for r in runs]),
        epochs=mean([r.epochs or 0.0 for r in runs]),
        peak_ram_mb=max(r.peak_ram_mb or 0.0 for r in runs),
        per_seed=per_seed,
    )


def untuned(
    name: str, model: str | None, predict: Callable[[Any, list[str]], list[str]], dev: list[Any]
) -> Row:
    """A classifier that is not trained on the rows (or only reads a few of them)."""
    texts, truth = [r["text"] for r in dev], [r["label"] for r in dev]
    loaded = fondasi.model(model) if model else None
    if loaded is not None:
        predict(loaded, texts[:2])  # warm-up, not timed
    start = time.perf_counter()
    guesses = predict(loaded, texts)
    seconds = time.perf_counter() - start
    accuracy, macro = scores(truth, guesses)
    return Row(name, accuracy, macro, ms_per_text=1000 * seconds / len(texts))


def top(rankings: list[Any]) -> list[str]:
    return [ranking[0].label for ranking in rankings]


def baselines(train: list[Any], dev: list[Any], with_lm: bool) -> list[Row]:
    labels = list(DESCRIPTIONS)
    per_label = {name: [r for r in train if r["label"] == name][:8] for name in labels}
    shots = [row for rows in per_label.values() for row in rows]
    most = Counter(r["label"] for r in train).most_common(1)[0][0]
    rows = [
        untuned("majority class", None, lambda m, texts: [most] * len(texts), dev),
        untuned(
            "zero-shot MiniLM (label descriptions)",
            MINILM,
            lambda m, texts: top(m.classify(texts, labels=DESCRIPTIONS)),
            dev,
        ),
        untuned(
            "zero-shot e5 (label descriptions)",
            E5,
            lambda m, texts: top(m.classify(texts, labels=DESCRIPTIONS)),
            dev,
        ),
        untuned(
            "few-shot e5 (8 rows per label, prototypes)",
            E5,
            lambda m, texts: top(m.classify(texts, labels=labels, shots=shots)),
            dev,
        ),
    ]
    if with_lm:
        rows.append(
            untuned(
                "few-shot Gemma 3 270M (6 examples, log-probability)",
                GEMMA,
                lambda m, texts: top(
                    m.classify(texts, labels=labels, shots=shots, k=6, select="balanced")
                ),
                dev,
            )
        )
    return rows


def show(rows: list[Row], anchor: float, markdown: bool) -> None:
    header = [
        "approach", "trainable params", "s / epoch", "epochs", "peak RAM MB",
        "ms / text", "dev accuracy", "vs anchor", "macro-F1", "accuracy per seed",
    ]  # fmt: skip
    lines = []
    for row in rows:
        share = f" ({row.trainable / row.total:.2%})" if row.trainable and row.total else ""
        lines.append(
            [
                row.approach,
                f"{row.trainable:,}{share}" if row.trainable else "-",
                f"{row.seconds_per_epoch:.1f}" if row.seconds_per_epoch else "-",
                f"{row.epochs:.1f}" if row.epochs else "-",
                f"{row.peak_ram_mb:.0f}" if row.peak_ram_mb else "-",
                f"{row.ms_per_text:.1f}" if row.ms_per_text is not None else "-",
                f"{row.accuracy:.3f}",
                f"{100 * (row.accuracy - anchor):+.1f} pt",
                f"{row.macro_f1:.3f}",
                ", ".join(f"{s}: {a:.3f}" for s, a in row.per_seed.items())
                if row.per_seed and len(row.per_seed) > 1
                else "-",
            ]
        )
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
        return
    table = Table(title="MiniLM on sentiment3-id (dev: 90 rows)", title_justify="left")
    for column in header:
        table.add_column(column, justify="left" if column == "approach" else "right")
    for line in lines:
        table.add_row(*line)
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=float, default=None, help="Default: each method's.")
    parser.add_argument("--methods", default="full,lora,ia3,prompt-tuning")
    parser.add_argument("--no-lm", action="store_true", help="Skip the Gemma few-shot row.")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads per model (FONDASI_THREADS)."
    )
    parser.add_argument("--markdown", action="store_true", help="Print a Markdown table.")
    parser.add_argument("--seeds", default="42", help="Seeds, comma-separated: 42,0,1,2.")
    parser.add_argument("--jobs", type=int, default=1, help="Tuning runs at once.")
    args = parser.parse_args()
    if args.threads:  # on a shared machine one thread per model is often faster
        os.environ["FONDASI_THREADS"] = str(args.threads)
    train = read_jsonl(bundled("sentiment3-id-train"))
    dev = read_jsonl(bundled("sentiment3-id-dev"))
    start = time.perf_counter()
    classical = baseline(train, dev)
    rows = [Row(ANCHOR, classical["accuracy"], classical["macro_f1"])]
    seeds = [int(seed) for seed in args.seeds.split(",")]
    methods = args.methods.split(",")
    runs = [(method, seed) for method in methods for seed in seeds]
    console.print(f"[dim]{len(runs)} tuning runs, {args.jobs} at a time …[/]")
    with tempfile.TemporaryDirectory() as folder, ThreadPoolExecutor(args.jobs) as pool:
        done = list(pool.map(lambda run: tuned(run[0], args.epochs, Path(folder), run[1]), runs))
        for method in methods:
            rows.append(
                over_seeds([row for (m, _), row in zip(runs, done, strict=True) if m == method])
            )
    console.print("[dim]baselines …[/]")
    rows += baselines(train, dev, with_lm=not args.no_lm)
    show(rows, classical["accuracy"], args.markdown)
    console.print(f"[dim]{time.perf_counter() - start:.0f} s in all[/]")


if __name__ == "__main__":
    main()
