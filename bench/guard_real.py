"""Guard quality on real text labelled by others: per filter, language and category.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/guard_real.py \
        --id-hate PATH/re_dataset.csv [--per-category 60] [--neutral 300] [--filter NAME ...]

Sources (none of them in the classifiers' training sets; neither trains nor tunes anything):

- Indonesian: Ibrohim & Budi (2019), "Multi-label Hate Speech and Abusive Language Detection
  in Indonesian Twitter" (ALW3), ``re_dataset.csv``: tweets labelled HS, Abusive and the hate
  target (HS_Religion, HS_Race, HS_Group = SARA; HS_Gender, HS_Physical; HS_Individual).
  CC BY-NC-SA 4.0, so it is not shipped: clone github.com/okkyibrohim/
  id-multi-label-hate-speech-and-abusive-language-detection and pass ``--id-hate``.
  Tweets with neither label are the Indonesian ordinary text.
- English: ToxiGen's human-written demonstrations (Hartvigsen et al., 2022; MIT), implicit
  hate and neutral statements about 14 groups (``bench/data/toxigen_demonstrations.jsonl``).
- Injection, English: PromptInject's attack templates and the 35 application prompts they
  were aimed at (Perez & Ribeiro, 2022; MIT; ``bench/data/promptinject.jsonl``).

Each row's score is the highest any finding of the filter reached (thresholds at zero, as
``guard scan --data`` reports). Tables: at the default threshold 0.5 per language and
category, and a threshold sweep. The anchor is the majority guess (everything positive).
``--filter`` adds filters (``classifier:hf:~/models/prompt-guard-86m``) to the comparison.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import re
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from rich.console import Console
from rich.progress import track
from rich.table import Table

from fondasi.guard import Policy, PolicyConfig
from fondasi.guard.screen import Screen
from fondasi.settings import Settings

console = Console(width=150)
DATA = Path(__file__).parent / "data"
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
GRID = tuple(round(0.3 + 0.05 * i, 2) for i in range(14))  # 0.30 .. 0.95
# Ibrohim & Budi's hate targets, grouped as Indonesian moderation groups them.
TARGETS = {
    "HS_Religion": "hate: religion (SARA)",
    "HS_Race": "hate: race/ethnicity (SARA)",
    "HS_Group": "hate: group (SARA)",
    "HS_Gender": "hate: gender/orientation",
    "HS_Physical": "hate: physical/disability",
    "HS_Individual": "hate: an individual",
}
ESCAPED = re.compile(r"(?:\\x[0-9a-fA-F]{2})+")


@dataclass(frozen=True)
class Row:
    """One labelled text: which filter it tests, its truth, language and category."""

    text: str
    task: str  # toxicity or injection
    label: int
    lang: str
    category: str
    source: str


def _unescape(text: str) -> str:
    """The dataset writes emoji as literal ``\\xf0\\x9f..``: turn them back into characters."""

    def decode(match: re.Match[str]) -> str:
        raw = bytes(int(h, 16) for h in match.group(0).split("\\x")[1:])
        return raw.decode("utf-8", errors="ignore")

    return ESCAPED.sub(decode, text).strip()


def indonesian(path: Path, per_category: int, neutral: int, rng: random.Random) -> list[Row]:
    """A stratified sample: each hate target, abusive-only tweets, and ordinary tweets."""
    with path.open(encoding="latin-1", newline="") as handle:
        rows = list(csv.DictReader(handle))
    pools: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        text = _unescape(row["Tweet"])
        if len(text) < 10:
            continue
        if row["HS"] == "1":
            target = next((k for k in TARGETS if row[k] == "1"), None)
            pools[TARGETS[target] if target else "hate: other"].append(text)
        elif row["Abusive"] == "1":
            pools["abusive, not hate"].append(text)
        else:
            pools["ordinary"].append(text)
    out: list[Row] = []
    for category, texts in sorted(pools.items()):
        size = neutral if category == "ordinary" else per_category
        for text in rng.sample(texts, min(size, len(texts))):
            label = 0 if category == "ordinary" else 1
            out.append(Row(text, "toxicity", label, "id", category, "Ibrohim & Budi 2019"))
    return out


def toxigen() -> list[Row]:
    """ToxiGen's demonstrations: implicit hate and neutral statements, by group."""
    out = []
    for line in (DATA / "toxigen_demonstrations.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        category = f"hate: {row['group']}" if row["label"] else "ordinary"
        out.append(Row(row["text"], "toxicity", row["label"], "en", category, "ToxiGen"))
    return out


def promptinject() -> list[Row]:
    """PromptInject's attacks and the application prompts they target."""
    out = []
    for line in (DATA / "promptinject.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        category = row["kind"] if row["label"] else "ordinary"
        out.append(Row(row["text"], "injection", row["label"], "en", category, "PromptInject"))
    return out


def half(row: Row) -> str:
    """A fixed split by the text's hash: thresholds are chosen on one half, reported on the
    other."""
    return "validation" if hashlib.sha256(row.text.encode()).digest()[0] % 2 == 0 else "test"


def screen(rows: list[Row], policy: Policy) -> list[dict[str, float]]:
    """Each row's highest score per filter (thresholds at zero), with a progress bar."""
    screened = Screen(policy)
    return [
        screened.row(i, str(i), {"text": row.text}, ["text"]).scores
        for i, row in enumerate(track(rows, description=f"scores ({policy.name})"))
    ]


def shipped(rows: list[Row], policy: Policy) -> list[dict[str, float]]:
    """1.0 where the policy as configured finds something, per filter: its real decision."""
    out = []
    for row in track(rows, description=f"decisions ({policy.name})"):
        found = {f.filter for f in policy.scan(row.text, "input")}
        out.append({name: float(name in found) for name in policy.config.input})
    return out


def prf(pairs: Iterable[tuple[int, float]], threshold: float) -> dict[str, float]:
    """n, precision, recall, F1 and false-positive rate at ``threshold``."""
    pairs = list(pairs)
    tp = sum(1 for label, s in pairs if label and s >= threshold)
    fp = sum(1 for label, s in pairs if not label and s >= threshold)
    fn = sum(1 for label, s in pairs if label and s < threshold)
    negatives = sum(1 for label, _ in pairs if not label)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": len(pairs),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "fpr": fp / negatives if negatives else 0.0,
    }


def judged(rows: list[Row], task: str, lang: str, part: str | None) -> list[int]:
    """The rows a filter is judged on: its task's rows and every ordinary row."""
    return [
        i
        for i, row in enumerate(rows)
        if (row.task == task or row.category == "ordinary")
        and lang in ("all", row.lang)
        and (part is None or half(row) == part)
    ]


def pairs_of(
    rows: list[Row], index: list[int], task: str, got: list[dict[str, float]], name: str
) -> list[tuple[int, float]]:
    return [(int(rows[i].task == task and rows[i].label == 1), got[i][name]) for i in index]


def choose(pairs: list[tuple[int, float]], goal: str) -> float:
    """The threshold the goal picks on validation rows: best F1, or the lowest with FPR <= 5%."""
    if goal == "fpr":
        return next((t for t in GRID if prf(pairs, t)["fpr"] <= 0.05), GRID[-1])
    return max(GRID, key=lambda t: (round(prf(pairs, t)["f1"], 4), -t))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--id-hate", type=Path, help="Ibrohim & Budi's re_dataset.csv")
    parser.add_argument("--per-category", type=int, default=120)
    parser.add_argument("--neutral", type=int, default=600)
    parser.add_argument("--filter", action="append", default=[], help="Another filter to compare")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="Write the figures here too")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    rows = toxigen() + promptinject()
    if args.id_hate:
        rows = indonesian(args.id_hate, args.per_category, args.neutral, rng) + rows
    else:
        console.print("[yellow]no --id-hate: Indonesian rows left out (see the docstring)[/]")
    settings = Settings.load()
    extra = dict.fromkeys(args.filter, "flag")
    both = {"toxicity": "flag", "injection": "flag", **extra}
    started = time.perf_counter()
    rules = screen(rows, Policy("rules", PolicyConfig(input=both, classifier=False), settings))
    scored = screen(rows, Policy("rules + classifier", PolicyConfig(input=both), settings))
    decided = shipped(rows, Policy("as shipped", PolicyConfig(input=both), settings))
    seconds = time.perf_counter() - started
    filters = [("toxicity", "toxicity", "f1"), ("injection", "injection", "fpr")] + [
        (name, "injection" if "inject" in name.lower() else "toxicity", "f1")
        for name in args.filter
    ]
    figures: list[dict[str, object]] = []
    numeric = {"n", "precision", "recall", "F1", "FPR"}
    table = Table(
        title="test half: threshold 0.5, chosen on the validation half, and as shipped",
        title_justify="left",
    )
    for column in ("filter", "setup", "lang", "threshold", "n", "precision", "recall", "F1", "FPR"):
        table.add_column(column, justify="right" if column in numeric else "left")
    for name, task, goal in filters:
        for lang in ("all", "id", "en"):
            test = judged(rows, task, lang, "test")
            # A false-positive goal needs only ordinary rows; an F1 goal needs attacks too.
            if goal != "fpr" and not any(rows[i].task == task and rows[i].label for i in test):
                continue
            chosen = choose(
                pairs_of(rows, judged(rows, task, lang, "validation"), task, scored, name), goal
            )
            setups = [
                ("rules", rules, 0.5),
                ("rules + classifier", scored, 0.5),
                ("rules + classifier, chosen", scored, chosen),
                ("as shipped", decided, 0.5),
                ("majority anchor", [dict.fromkeys([name], 1.0)] * len(rows), 0.5),
            ]
            for setup, got, threshold in setups:
                if name not in got[0]:
                    continue
                m = prf(pairs_of(rows, test, task, got, name), threshold)
                shown = "" if setup in ("as shipped", "majority anchor") else f"{threshold:.2f}"
                cells = (f"{m[k]:.2f}" for k in ("precision", "recall", "f1", "fpr"))
                table.add_row(name, setup, lang, shown, str(m["n"]), *cells)
                figures.append(
                    {"filter": name, "setup": setup, "lang": lang, "threshold": threshold, **m}
                )
    console.print(table)

    recall = Table(title="recall by category, test half (as shipped)", title_justify="left")
    for column in ("filter", "lang", "category", "n", "recall"):
        recall.add_column(column, justify="right" if column in {"n", "recall"} else "left")
    for name, task, _ in filters[:2]:
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, row in enumerate(rows):
            if row.task == task and row.label and half(row) == "test":
                groups[(row.lang, row.category)].append(i)
        for (lang, category), index in sorted(groups.items()):
            share = sum(decided[i][name] for i in index) / len(index)
            recall.add_row(name, lang, category, str(len(index)), f"{share:.2f}")
            figures.append(
                {
                    "filter": name,
                    "lang": lang,
                    "category": category,
                    "n": len(index),
                    "recall": share,
                }
            )
    console.print(recall)

    sweep = Table(
        title="threshold sweep, test half (rules + classifier): F1 / FPR", title_justify="left"
    )
    sweep.add_column("filter")
    sweep.add_column("lang")
    for threshold in THRESHOLDS:
        sweep.add_column(f"{threshold:.1f}", justify="right")
    for name, task, _ in filters:
        for lang in ("id", "en"):
            test = judged(rows, task, lang, "test")
            if not any(rows[i].task == task and rows[i].label for i in test):
                continue
            pairs = pairs_of(rows, test, task, scored, name)
            sweep.add_row(
                name,
                lang,
                *(f"{prf(pairs, t)['f1']:.2f} / {prf(pairs, t)['fpr']:.2f}" for t in THRESHOLDS),
            )
    console.print(sweep)

    ordinary = Table(title="ordinary text flagged as shipped (both halves)", title_justify="left")
    for column in ("source", "lang", "rows", *(n for n, _, _ in filters)):
        ordinary.add_column(column, justify="left" if column in {"source", "lang"} else "right")
    by_source: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        if row.category == "ordinary":
            by_source[(row.source, row.lang)].append(i)
    for (source, lang), index in sorted(by_source.items()):
        shares = [sum(decided[i][n] for i in index) / len(index) for n, _, _ in filters]
        ordinary.add_row(source, lang, str(len(index)), *(f"{v:.1%}" for v in shares))
    console.print(ordinary)
    console.print(
        f"{len(rows)} rows ({sum(half(r) == 'test' for r in rows)} in the test half), "
        f"screened three ways in {seconds:.1f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
