"""``report.html``: one self-contained page (no script, no CDN) to pick a model with evidence.

Leaderboard, the verdict in words, bar chart with confidence intervals, quality against
latency and cost with the Pareto front, confusion matrices, the worst examples side by
side, the judge's prompt and the exact config.

The page is ``templates/report.html`` rendered by Jinja2 with autoescaping on, as the
server's dashboard is: everything a user wrote (names, labels, texts, answers, errors) is
escaped by the template. The one exception is the SVG charts, built by ``charts`` with
every text in them escaped there.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from fondasi.evaluate.charts import Bar, Point, bars, scatter
from fondasi.evaluate.curve_chart import curve_chart
from fondasi.evaluate.results import CandidateResult, Results
from fondasi.evaluate.stats import pareto

WORST = 12
TEMPLATES = Path(__file__).parent / "templates"


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:,.0f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _cost(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"${value:.4f}" if value >= 0.0001 or value == 0 else f"${value:.2e}"


def _text(value: Any, limit: int = 300) -> str:
    if value is None:
        return ""
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@functools.cache
def _jinja() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=_num,
        seconds=_seconds,
        cost=_cost,
        text=_text,
        svg=Markup,  # charts are built with every text escaped (evaluate.charts)
    )
    return env


def charts(results: Results) -> list[str]:
    """The headline bar chart and the two trade-off scatters, as SVG."""
    head = results.headline
    scored = [c for c in results.candidates if c.failures < c.examples]
    items = [
        Bar(
            c.name,
            c.metrics[head],
            c.ci.low if c.ci else None,
            c.ci.high if c.ci else None,
            c.kind == "baseline",
        )
        for c in scored
    ]
    drawn = [bars(items, f"{head} (95% bootstrap interval)")]
    timed = [c for c in scored if c.latency.p50]
    if timed:
        points = [
            Point(c.name, c.latency.p50 or 0, c.metrics[head], c.kind == "baseline") for c in timed
        ]
        front = pareto([(p.x, p.y) for p in points])
        drawn.append(
            scatter(points, front, f"{head} vs latency", "seconds per example (p50)", head)
        )
    priced = [c for c in scored if c.cost_usd is not None]
    if priced and any(c.cost_usd for c in priced):
        points = [
            Point(c.name, c.cost_usd or 0.0, c.metrics[head], c.kind == "baseline") for c in priced
        ]
        front = pareto([(p.x, p.y) for p in points])
        drawn.append(scatter(points, front, f"{head} vs cost", "USD for the whole test set", head))
    return drawn


def confusion(c: CandidateResult) -> dict[str, Any] | None:
    """A candidate's confusion matrix, cells shaded by row share, with per-class scores."""
    matrix = c.details.get("confusion")
    if not matrix:
        return None
    rows = []
    for name, counts in zip(matrix["rows"], matrix["matrix"], strict=True):
        total = sum(counts) or 1
        cells = [
            {
                "count": count,
                "colour": "37,99,235" if column == name else "220,38,38",
                "shade": f"{count / total * 0.6:.2f}",
            }
            for column, count in zip(matrix["columns"], counts, strict=True)
        ]
        scores = c.details.get("per_class", {}).get(name, {})
        rows.append(
            {
                "name": name,
                "cells": cells,
                "precision": scores.get("precision"),
                "recall": scores.get("recall"),
            }
        )
    return {"name": c.name, "columns": matrix["columns"], "rows": rows}


def worst(results: Results, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The examples the model candidates found hardest, every candidate's answer in order."""
    names = [c.name for c in results.candidates]
    models = {c.name for c in results.candidates if c.kind == "model"}
    by_example: dict[Any, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        by_example[row["index"]][row["candidate"]] = row

    def hardness(item: tuple[Any, dict[str, dict[str, Any]]]) -> float:
        scores = [r["score"] or 0.0 for n, r in item[1].items() if n in models]
        return sum(scores) / len(scores) if scores else 1.0

    chosen = sorted(by_example.items(), key=lambda item: (hardness(item), item[0]))[:WORST]
    hardest = []
    for index, answers in chosen:
        first = next(iter(answers.values()))
        shown = []
        for name in names:
            row = answers.get(name, {})
            error = row.get("error")
            shown.append(
                {
                    "output": row.get("output"),
                    "error": str(error) if error else None,
                    "good": (row.get("score") or 0) >= 0.5,
                }
            )
        hardest.append(
            {
                "number": index + 1,
                "input": first.get("input"),
                "reference": first.get("reference"),
                "answers": shown,
            }
        )
    return hardest


def render(results: Results, rows: list[dict[str, Any]]) -> str:
    """The whole page."""
    train = results.data.get("train") or {}
    split = train.get("note") or (
        f"train: {train['path']} ({train['rows']} rows)" if train else "no train split"
    )
    matrices = [m for m in (confusion(c) for c in results.candidates) if m is not None]
    return (
        _jinja()
        .get_template("report.html")
        .render(
            results=results,
            data=results.data,
            split=split,
            warn=any(s.startswith("A baseline wins") for s in results.verdict),
            charts=charts(results),
            curve=curve_chart(results.curve) if results.curve else None,
            matrices=matrices,
            names=[c.name for c in results.candidates],
            hardest=worst(results, rows),
            config=yaml.safe_dump(results.config, allow_unicode=True, sort_keys=False),
        )
    )


def write_report(path: Path, results: Results, rows: list[dict[str, Any]]) -> None:
    """Write report.html."""
    path.write_text(render(results, rows), encoding="utf-8")
