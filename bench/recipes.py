"""Classification recipes for a few hundred labels against TF-IDF + logistic regression.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/recipes.py [--names nama.csv] [--setfit]
        [--embedders multilingual-e5-small,all-minilm-l6-v2] [--rounds 1000] [--tasks names]

Each recipe is fitted on a task's train rows and scored on its test rows, beside the
anchor measured in the same run: TF-IDF word + character n-grams with logistic regression
(the `fondasi eval` baseline). Recipes: the heads of `fondasi tune --method linear-head |
knn | hybrid` (and `fondasi eval` candidates with `head:`) over each embedder, and with
--setfit `fondasi tune --method setfit` on all-MiniLM-L6-v2. Every accuracy and macro-F1
has a 95% percentile-bootstrap interval; the ratio columns divide by the anchor's score.

Tasks: the bundled Indonesian sets (sentiment3-id train/dev; sentiment-id and
eval-topic-id split half/half, stratified, seed 0) and, with --names, Indonesian full names
labelled by gender from the MIT-licensed `frasa` package (frasa 0.1.58,
frasa/deteksi/gender/data/nama.csv; 800 train and 400 test rows drawn with seed 0).
Nothing here is tuned to the test rows: every recipe runs with its defaults.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fondasi.backends import heads
from fondasi.evaluate.metrics import accuracy, macro_f1
from fondasi.evaluate.stats import bootstrap

DATA = Path(__file__).resolve().parents[1] / "src" / "fondasi" / "data"
Rows = list[dict[str, str]]


def _read(path: Path) -> Rows:
    with path.open(encoding="utf-8") as lines:
        return [{"text": r["text"], "label": r["label"]} for r in map(json.loads, lines)]


def _halves(rows: Rows, seed: int = 0) -> tuple[Rows, Rows]:
    """A stratified half/half split."""
    rng = random.Random(seed)
    train: Rows = []
    test: Rows = []
    for label in sorted({r["label"] for r in rows}):
        group = [r for r in rows if r["label"] == label]
        rng.shuffle(group)
        train += group[: len(group) // 2]
        test += group[len(group) // 2 :]
    return train, test


def _names(path: Path, seed: int = 0) -> tuple[Rows, Rows]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = {r["nama"].strip(): r["gender"].strip() for r in csv.DictReader(handle)}
    pool = sorted((name, label) for name, label in rows.items() if name and label in {"m", "f"})
    picked = random.Random(seed).sample(pool, 1200)
    labelled = [
        {"text": name, "label": {"m": "laki-laki", "f": "perempuan"}[g]} for name, g in picked
    ]
    return labelled[:800], labelled[800:]


def tasks(names: Path | None) -> dict[str, tuple[Rows, Rows]]:
    """Task name -> (train rows, test rows)."""
    found = {
        "sentiment3-id": (
            _read(DATA / "sentiment3-id-train.jsonl"),
            _read(DATA / "sentiment3-id-dev.jsonl"),
        ),
        "sentiment-id": _halves(_read(DATA / "sentiment-id.jsonl")),
        "eval-topic-id": _halves(_read(DATA / "eval-topic-id.jsonl")),
    }
    if names is not None:
        found["frasa names→gender"] = _names(names)
    return {f"{name} ({len(a)}/{len(b)})": (a, b) for name, (a, b) in found.items()}


def tfidf(train: Rows, test: Rows) -> list[str]:
    """The anchor: the same pipeline as `fondasi eval`'s TF-IDF + LR baseline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    model = make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        ),
        LogisticRegression(max_iter=2000, random_state=0),
    )
    model.fit([r["text"] for r in train], [r["label"] for r in train])
    return [str(label) for label in model.predict([r["text"] for r in test])]


def head_recipe(embedder: Any, head: str) -> Callable[[Rows, Rows], list[str]]:
    """A head over ``embedder`` fitted on the train rows, as `fondasi eval`'s ``head:``."""

    def run(train: Rows, test: Rows) -> list[str]:
        texts = [r["text"] for r in train]
        vectors = heads.as_matrix(embedder.embed(texts, purpose="query"))
        fitted = heads.fit(head, vectors, texts, [r["label"] for r in train], seed=0)
        tested = [r["text"] for r in test]
        probabilities = heads.predict(
            fitted, heads.as_matrix(embedder.embed(tested, purpose="query")), tested
        )
        return [fitted.labels[i] for i in probabilities.argmax(axis=1)]

    return run


def setfit(train: Rows, test: Rows) -> list[str]:
    """`fondasi tune all-minilm-l6-v2 --method setfit`, loaded back as a tuned model."""
    import fondasi
    from fondasi.settings import Settings
    from fondasi.tune.local import tune
    from fondasi.tune.options import TuneOptions

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for name, rows in (("train", train), ("test", test)):
            with (folder / f"{name}.jsonl").open("w", encoding="utf-8") as out:
                out.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        options = TuneOptions(
            base="all-minilm-l6-v2",
            data=folder / "train.jsonl",
            eval_data=folder / "test.jsonl",
            out=folder / "model",
            method="setfit",
        )
        tune(options, Settings.load(), progress=False)
        model = fondasi.model(f"tuned:{folder / 'model'}")
        return [ranking[0].label for ranking in model.classify([r["text"] for r in test])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=Path, help="frasa's nama.csv (names labelled by gender)")
    parser.add_argument("--embedders", default="multilingual-e5-small,all-minilm-l6-v2")
    parser.add_argument("--heads", default="linear,knn,hybrid")
    parser.add_argument("--setfit", action="store_true", help="also tune MiniLM with SetFit")
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--tasks", default="", help="only tasks whose name holds one of these")
    args = parser.parse_args()

    import fondasi

    recipes: dict[str, Callable[[Rows, Rows], list[str]]] = {"TF-IDF + LR (anchor)": tfidf}
    for embedder_id in args.embedders.split(","):
        embedder = fondasi.model(embedder_id)
        short = embedder_id.replace("multilingual-", "").replace("all-", "")
        for head in args.heads.split(","):
            recipes[f"{short} · {head} head"] = head_recipe(embedder, head)
    if args.setfit:
        recipes["minilm-l6-v2 · setfit"] = setfit

    print(
        "| task | recipe | accuracy [95% CI] | macro-F1 [95% CI] | acc ÷ anchor | F1 ÷ anchor | s |"
    )
    print("|---|---|---|---|---|---|---|")
    wanted = [part for part in args.tasks.split(",") if part]
    for task, (train, test) in tasks(args.names).items():
        if wanted and not any(part in task for part in wanted):
            continue
        truth = [r["label"] for r in test]
        anchor: tuple[float, float] | None = None
        for name, recipe in recipes.items():
            start = time.perf_counter()
            guesses = recipe(train, test)
            seconds = time.perf_counter() - start
            cells = []
            scores = []
            for score in (accuracy, macro_f1):
                value = score(truth, guesses, 1)
                ci = bootstrap(lambda r, o, s=score: s(r, o, 1), truth, guesses, args.rounds, 0)
                scores.append(value)
                cells.append(f"{value:.3f} [{ci.low:.3f}–{ci.high:.3f}]" if ci else f"{value:.3f}")
            if anchor is None:
                anchor = (scores[0], scores[1])
            ratios = [f"{v / a:.2f}" if a else "-" for v, a in zip(scores, anchor, strict=True)]
            print(
                f"| {task} | {name} | {' | '.join(cells)} | {' | '.join(ratios)} | {seconds:.1f} |"
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
