"""Guard quality and speed on the shipped labelled ID+EN evaluation set, in one run.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/guard_quality.py [--kb 64] [--json]

Quality: precision and recall of each filter on ``fondasi/guard/data/guard_eval.jsonl``
(written for fondasi, none of it in the classifiers' training sets): PII and names per
span (a gold span counts as found when a finding of that type overlaps it; a finding over
no gold span is a false positive), toxicity and injection per text (positive when the
filter finds anything), for the rules alone, the embedding classifier alone and both.
Anchor: the majority-class guess for text labels (precision = share of positives, recall 1).

Speed: a full scan of mixed ID/EN text (the eval rows, numbered so none repeats, to ``--kb`` KB)
with each filter, in milliseconds per KB, against lokal-id's bare ``detect_pii`` on the
same kind of text (the anchor, ratio 1.00). Each timed scan gets its own tagged copy.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from importlib import resources
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from rich.console import Console
from rich.table import Table

from fondasi.guard import Policy, PolicyConfig, ScanContext
from fondasi.guard.classifier import head
from fondasi.guard.injection import rule_hits
from fondasi.guard.toxicity import lexicon_hits
from fondasi.settings import Settings

console = Console()
COMPATIBLE = {"PERSON": {"PERSON", "NAME"}, "ADDRESS": {"ADDRESS"}}


def rows() -> list[dict[str, Any]]:
    """The evaluation rows."""
    source = resources.files("fondasi.guard") / "data" / "guard_eval.jsonl"
    return [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line]


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall, F1."""
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def span_scores(
    task: str, policy: Policy, data: list[dict[str, Any]], ignore: set[str]
) -> dict[str, Any]:
    """Span-level counts for a PII-like filter, overall and per language."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in (r for r in data if r["task"] == task):
        found = [f for f in policy.scan(row["text"], "input") if f.type not in ignore]
        gold = row["spans"]
        matched: set[int] = set()
        for kind, start, end in gold:
            hit = [
                i
                for i, f in enumerate(found)
                if f.start < end and f.end > start and f.type in COMPATIBLE.get(kind, {kind})
            ]
            key = [0, 0, 0]
            if hit:
                matched.update(hit)
                key[0] = 1
            else:
                key[2] = 1
            for lang in ("all", row["lang"]):
                counts[lang][0] += key[0]
                counts[lang][2] += key[2]
        extra = sum(
            1
            for i, f in enumerate(found)
            if i not in matched and not any(f.start < e and f.end > s for _, s, e in gold)
        )
        for lang in ("all", row["lang"]):
            counts[lang][1] += extra
    return {lang: (*prf(*c), c[0] + c[2]) for lang, c in counts.items()}


def label_scores(
    task: str,
    data: list[dict[str, Any]],
    rules: Callable[[str], bool],
    probs: list[float],
    cut: float,
) -> dict[str, Any]:
    """Text-level scores for rules, classifier and both, per language."""
    chosen = [r for r in data if r["task"] == task]
    out: dict[str, Any] = {}
    for variant in ("majority anchor", "rules", "classifier", "rules + classifier"):
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for row, prob in zip(chosen, probs, strict=True):
            by_rule = rules(row["text"])
            by_model = prob >= cut
            guess = {
                "majority anchor": True,
                "rules": by_rule,
                "classifier": by_model,
                "rules + classifier": by_rule or by_model,
            }[variant]
            gold = bool(row["label"])
            for lang in ("all", row["lang"]):
                counts[lang][0] += guess and gold
                counts[lang][1] += guess and not gold
                counts[lang][2] += (not guess) and gold
        out[variant] = {
            lang: (*prf(*c), sum(1 for r in chosen if lang in ("all", r["lang"])))
            for lang, c in counts.items()
        }
    return out


def speed(settings: Settings, kb: int, data: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """Milliseconds per KB for each filter's full scan of the same kind of text."""
    import lokal

    def corpus(tag: str) -> str:
        # Numbered, tagged copies: no sentence repeats within or across timed runs, so the
        # embedding cache never answers for the model.
        lines: list[str] = []
        while sum(len(line) + 1 for line in lines) < kb * 1024:
            row = data[len(lines) % len(data)]
            lines.append(f"{tag}{len(lines)}. {row['text']}")
        return "\n".join(lines)[: kb * 1024]

    timings: list[tuple[str, float]] = []

    def clock(label: str, run: Callable[[str], Any]) -> None:
        text = corpus(f"R{len(timings)}-")
        run_start = time.perf_counter()
        run(text)
        timings.append(
            (label, (time.perf_counter() - run_start) * 1000 / (len(text.encode()) / 1024))
        )

    clock("anchor: lokal.detect_pii", lokal.detect_pii)
    for name, classifier in (
        ("pii", False),
        ("toxicity", False),
        ("injection", False),
        ("names", False),
        ("toxicity", True),
        ("injection", True),
    ):
        policy = Policy(name, PolicyConfig(input={name: "flag"}, classifier=classifier), settings)
        policy.scan(data[0]["text"])  # load models outside the clock
        label = f"{name}{' + classifier' if classifier else ''}"
        clock(label, lambda text, p=policy: p.scan(text, "input", ScanContext()))
    everything = Policy(
        "all",
        PolicyConfig(input=dict.fromkeys(("pii", "names", "toxicity", "injection"), "flag")),
        settings,
    )
    clock("full scan (all four, classifiers on)", lambda text: everything.scan(text, "input"))
    return timings


def main() -> None:
    """Run the evaluation and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=int, default=64, help="KB of text for the speed test")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    args = parser.parse_args()
    settings = Settings.load()
    data = rows()
    model = settings.embedding_model
    results: dict[str, Any] = {"embedding_model": model}
    plain = PolicyConfig(input={"pii": "flag"}, classifier=False)
    results["pii"] = span_scores("pii", Policy("pii", plain, settings), data, set())
    names = PolicyConfig(input={"names": "flag"}, classifier=False)
    results["names"] = span_scores("names", Policy("names", names, settings), data, {"LOCATION"})
    for task, rule in (
        ("toxicity", lambda t: any(f.score >= 0.5 for f in lexicon_hits(t))),
        ("injection", lambda t: any(f.score >= 0.5 for f in rule_hits(t))),
    ):
        texts = [r["text"] for r in data if r["task"] == task]
        probs = head(task, model, settings).predict(texts)
        results[task] = label_scores(task, data, rule, probs, 0.5)
    results["speed_ms_per_kb"] = speed(settings, args.kb, data)
    if args.json:
        console.print_json(json.dumps(results))
        return
    table = Table(
        title=f"guard quality (guard_eval.jsonl, classifier on {model})", title_justify="left"
    )
    for column in ("filter", "variant", "lang", "n", "precision", "recall", "F1"):
        table.add_column(
            column, justify="left" if column in ("filter", "variant", "lang") else "right"
        )
    for name in ("pii", "names"):
        for lang, (p, r, f1, n) in sorted(results[name].items()):
            table.add_row(name, "spans", lang, str(n), f"{p:.2f}", f"{r:.2f}", f"{f1:.2f}")
    for name in ("toxicity", "injection"):
        for variant, per_lang in results[name].items():
            for lang, (p, r, f1, n) in sorted(per_lang.items()):
                table.add_row(name, variant, lang, str(n), f"{p:.2f}", f"{r:.2f}", f"{f1:.2f}")
    console.print(table)
    speed_table = Table(
        title=f"full scan speed, {args.kb} KB of mixed ID/EN text", title_justify="left"
    )
    for column in ("scan", "ms per KB", "KB/s", "vs anchor"):
        speed_table.add_column(column, justify="left" if column == "scan" else "right")
    anchor = results["speed_ms_per_kb"][0][1]
    for label, ms in results["speed_ms_per_kb"]:
        speed_table.add_row(label, f"{ms:.2f}", f"{1000 / ms:.1f}", f"{ms / anchor:.2f}x")
    console.print(speed_table)


if __name__ == "__main__":
    main()
