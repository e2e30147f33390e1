"""``report.html``: one self-contained page (no script, no CDN) to pick a model with evidence.

Leaderboard, the verdict in words, bar chart with confidence intervals, quality against
latency and cost with the Pareto front, confusion matrices, the worst examples side by
side, the judge's prompt and the exact config.
"""

from __future__ import annotations

import json
from collections import defaultdict
from html import escape
from pathlib import Path
from typing import Any

import yaml

from fondasi.evaluate.charts import Bar, Point, bars, scatter
from fondasi.evaluate.results import CandidateResult, Results
from fondasi.evaluate.stats import pareto

WORST = 12

CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1180px;color:#111827;
padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem;
border-bottom:1px solid #e5e7eb;padding-bottom:.3rem}
.meta{color:#4b5563;font-size:.9rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #e5e7eb;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f9fafb}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.baseline td{color:#4b5563;background:#fafafa}
.verdict{background:#eff6ff;border-left:4px solid #2563eb;padding:.6rem 1rem}
.verdict.warn{background:#fef2f2;border-left-color:#dc2626}
.verdict p{margin:.3rem 0}.charts{display:flex;flex-wrap:wrap;gap:1.5rem}
.chart{max-width:100%;height:auto}.grid{display:flex;flex-wrap:wrap;gap:1.5rem}
.good{background:#ecfdf5}.bad{background:#fef2f2}.err{color:#b91c1c}
pre{background:#f3f4f6;padding:.8rem;overflow:auto;font-size:.8rem}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem;
vertical-align:middle}
"""


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


def leaderboard(results: Results) -> str:
    """The table of every candidate, best first."""
    head = results.headline
    cols = "".join(f"<th>{escape(name)}</th>" for name in results.metrics)
    rows = [
        "<table class='leaderboard'><thead><tr><th>#</th><th>candidate</th><th>approach</th>"
        f"{cols}<th>p50</th><th>p95</th><th>examples/s</th><th>tokens</th><th>cost</th>"
        "<th>failures</th><th>notes</th></tr></thead><tbody>"
    ]
    for rank, c in enumerate(results.candidates, 1):
        cells = []
        for name in results.metrics:
            shown = _num(c.metrics.get(name))
            if name == head and c.ci is not None:
                shown += f"<br><small>{_num(c.ci.low)}–{_num(c.ci.high)}</small>"
            cells.append(f"<td class='num'>{shown}</td>")
        rows.append(
            f"<tr class='{c.kind}'><td>{rank}</td><td>{escape(c.name)}</td>"
            f"<td>{escape(c.approach)}</td>{''.join(cells)}"
            f"<td class='num'>{_seconds(c.latency.p50)}</td>"
            f"<td class='num'>{_seconds(c.latency.p95)}</td>"
            f"<td class='num'>{_num(c.throughput, 1)}</td>"
            f"<td class='num'>{c.tokens if c.tokens is not None else '–'}</td>"
            f"<td class='num'>{_cost(c.cost_usd)}</td><td class='num'>{c.failures}</td>"
            f"<td>{'<br>'.join(escape(n) for n in c.notes)}</td></tr>"
        )
    rows.append("</tbody></table>")
    return "".join(rows)


def charts(results: Results) -> str:
    """The headline bar chart and the two trade-off scatters."""
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
    parts = [bars(items, f"{head} (95% bootstrap interval)")]
    timed = [c for c in scored if c.latency.p50]
    if timed:
        points = [
            Point(c.name, c.latency.p50 or 0, c.metrics[head], c.kind == "baseline") for c in timed
        ]
        front = pareto([(p.x, p.y) for p in points])
        parts.append(
            scatter(points, front, f"{head} vs latency", "seconds per example (p50)", head)
        )
    priced = [c for c in scored if c.cost_usd is not None]
    if priced and any(c.cost_usd for c in priced):
        points = [
            Point(c.name, c.cost_usd or 0.0, c.metrics[head], c.kind == "baseline") for c in priced
        ]
        front = pareto([(p.x, p.y) for p in points])
        parts.append(scatter(points, front, f"{head} vs cost", "USD for the whole test set", head))
    legend = (
        "<p class='legend'><span style='background:#2563eb'></span>model"
        "<span style='background:#9ca3af'></span>baseline"
        "<span style='border:2px solid #dc2626;border-radius:50%'></span>Pareto front "
        "(no other candidate is both better and cheaper/faster)</p>"
    )
    return legend + "<div class='charts'>" + "".join(parts) + "</div>"


def confusion(c: CandidateResult) -> str:
    """A candidate's confusion matrix, shaded by row share, with per-class scores."""
    matrix = c.details.get("confusion")
    if not matrix:
        return ""
    head = "".join(f"<th>{escape(col)}</th>" for col in matrix["columns"])
    body = []
    for name, counts in zip(matrix["rows"], matrix["matrix"], strict=True):
        total = sum(counts) or 1
        cells = []
        for col, count in zip(matrix["columns"], counts, strict=True):
            alpha = count / total
            colour = "37,99,235" if col == name else "220,38,38"
            cells.append(
                f"<td class='num' style='background:rgba({colour},{alpha * 0.6:.2f})'>{count}</td>"
            )
        scores = c.details.get("per_class", {}).get(name, {})
        body.append(
            f"<tr><th>{escape(name)}</th>{''.join(cells)}"
            f"<td class='num'>{_num(scores.get('precision'), 2)}</td>"
            f"<td class='num'>{_num(scores.get('recall'), 2)}</td></tr>"
        )
    return (
        f"<div><h3>{escape(c.name)}</h3><table><tr><th>reference ↓ / predicted →</th>{head}"
        f"<th>precision</th><th>recall</th></tr>{''.join(body)}</table></div>"
    )


def worst(results: Results, rows: list[dict[str, Any]]) -> str:
    """The examples the model candidates found hardest, every candidate's answer side by side."""
    names = [c.name for c in results.candidates]
    models = {c.name for c in results.candidates if c.kind == "model"}
    by_example: dict[Any, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        by_example[row["index"]][row["candidate"]] = row

    def hardness(item: tuple[Any, dict[str, dict[str, Any]]]) -> float:
        scores = [r["score"] or 0.0 for n, r in item[1].items() if n in models]
        return sum(scores) / len(scores) if scores else 1.0

    chosen = sorted(by_example.items(), key=lambda item: (hardness(item), item[0]))[:WORST]
    head = "".join(f"<th>{escape(name)}</th>" for name in names)
    body = []
    for index, answers in chosen:
        first = next(iter(answers.values()))
        cells = []
        for name in names:
            row = answers.get(name, {})
            text = escape(_text(row.get("output")))
            if row.get("error"):
                cells.append(f"<td class='err'>{escape(str(row['error'])[:160])}</td>")
                continue
            good = (row.get("score") or 0) >= 0.5
            cells.append(f"<td class='{'good' if good else 'bad'}'>{text}</td>")
        body.append(
            f"<tr><td>{index + 1}</td><td>{escape(_text(first.get('input')))}</td>"
            f"<td>{escape(_text(first.get('reference')))}</td>{''.join(cells)}</tr>"
        )
    return (
        "<table><thead><tr><th>row</th><th>input</th><th>reference</th>"
        f"{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _text(value: Any, limit: int = 300) -> str:
    if value is None:
        return ""
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(results: Results, rows: list[dict[str, Any]]) -> str:
    """The whole page."""
    warn = any(s.startswith("A baseline wins") for s in results.verdict)
    verdict = "".join(f"<p>{escape(s)}</p>" for s in results.verdict)
    data = results.data
    train = data.get("train") or {}
    split = escape(
        train.get("note")
        or (f"train: {train['path']} ({train['rows']} rows)" if train else "no train split")
    )
    sections = [
        f"<h1>{escape(results.name)}</h1>",
        f"<p class='meta'>task <b>{escape(results.task)}</b> · test data "
        f"{escape(str(data.get('path')))} ({data.get('test_rows')} examples) · {split} · "
        f"seed {results.seed} · {escape(results.created)} · fondasi "
        f"{escape(results.fondasi_version)}</p>",
        f"<div class='verdict{' warn' if warn else ''}'>{verdict}</div>",
        "<h2>Leaderboard</h2>",
        leaderboard(results),
        "<h2>Charts</h2>",
        charts(results),
    ]
    matrices = "".join(confusion(c) for c in results.candidates)
    if matrices:
        sections += ["<h2>Confusion matrices</h2>", f"<div class='grid'>{matrices}</div>"]
    sections += ["<h2>Hardest examples, side by side</h2>", worst(results, rows)]
    if results.judge_prompt:
        sections += ["<h2>Judge prompt</h2>", f"<pre>{escape(results.judge_prompt)}</pre>"]
    config = yaml.safe_dump(results.config, allow_unicode=True, sort_keys=False)
    sections += ["<h2>Exact config</h2>", f"<pre>{escape(config)}</pre>"]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(results.name)} · fondasi eval</title><style>{CSS}</style>"
        "<link rel='icon' href='data:,'>"
        f"</head><body>{''.join(sections)}</body></html>"
    )


def write_report(path: Path, results: Results, rows: list[dict[str, Any]]) -> None:
    """Write report.html."""
    path.write_text(render(results, rows), encoding="utf-8")
