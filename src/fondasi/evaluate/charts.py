"""Inline SVG charts for the report: bars with confidence intervals, and scatters with the
Pareto front. Plain SVG text, so the report needs no script, library or network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

MODEL = "#2563eb"
BASELINE = "#9ca3af"
FRONT = "#dc2626"
FONT = "font-family='system-ui, sans-serif' font-size='12'"


@dataclass(frozen=True)
class Bar:
    """One bar: a candidate's value and its interval."""

    label: str
    value: float
    low: float | None = None
    high: float | None = None
    baseline: bool = False


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bars(items: Sequence[Bar], title: str, top: float | None = None) -> str:
    """Horizontal bars, best first, with the interval drawn as a whisker."""
    row, left, width = 26, 300, 360
    height = 40 + row * len(items)
    top = top or max([1e-9, *(max(i.value, i.high or 0.0) for i in items)])
    scale = width / top
    full = left + width + 70
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' class='chart' role='img' "
        f"viewBox='0 0 {full} {height}' width='{full}' height='{height}'>",
        f"<title>{escape(title)}</title>",
        f"<text x='0' y='16' {FONT} font-weight='600'>{escape(title)}</text>",
    ]
    for n, item in enumerate(items):
        y = 30 + n * row
        colour = BASELINE if item.baseline else MODEL
        parts.append(
            f"<text x='{left - 8}' y='{y + 14}' text-anchor='end' {FONT}>"
            f"{escape(_short(item.label))}</text>"
            f"<rect x='{left}' y='{y + 3}' width='{max(item.value, 0) * scale:.1f}' "
            f"height='{row - 8}' fill='{colour}' rx='2'><title>{escape(item.label)}: "
            f"{item.value:.4g}</title></rect>"
        )
        if item.low is not None and item.high is not None:
            x1, x2, mid = left + item.low * scale, left + item.high * scale, y + row / 2 - 1
            parts.append(
                f"<path d='M{x1:.1f} {mid:.1f}H{x2:.1f}M{x1:.1f} {mid - 5:.1f}V{mid + 5:.1f}"
                f"M{x2:.1f} {mid - 5:.1f}V{mid + 5:.1f}' stroke='#111827' stroke-width='1.5'/>"
            )
        end = left + max(item.value, item.high or 0) * scale + 6
        parts.append(f"<text x='{end:.1f}' y='{y + 14}' {FONT}>{item.value:.3g}</text>")
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Point:
    """One candidate on a quality-vs-cost (or latency) plane."""

    label: str
    x: float
    y: float
    baseline: bool = False


def scatter(
    points: Sequence[Point], front: Sequence[int], title: str, x_label: str, y_label: str
) -> str:
    """Quality (y) against cost or latency (x, log scale when it spans decades)."""
    width, height, pad = 720, 330, 56
    right = 200  # room for the labels of the rightmost points
    xs = [p.x for p in points] or [1.0]
    ys = [p.y for p in points] or [1.0]
    positive = [x for x in xs if x > 0]
    log = bool(positive) and max(positive) / min(positive) > 50 and len(positive) == len(xs)

    def fx(value: float) -> float:
        return math.log10(value) if log else value

    lo_x, hi_x = min(fx(x) for x in xs), max(fx(x) for x in xs)
    lo_y, hi_y = min(ys), max(ys)
    span_x = (hi_x - lo_x) or 1.0
    span_y = (hi_y - lo_y) or max(abs(hi_y), 1.0)
    lo_x, hi_x = lo_x - span_x * 0.08, hi_x + span_x * 0.08
    lo_y, hi_y = lo_y - span_y * 0.1, hi_y + span_y * 0.1

    def px(value: float) -> float:
        return pad + (fx(value) - lo_x) / (hi_x - lo_x) * (width - pad - right)

    def py(value: float) -> float:
        return height - pad + 14 - (value - lo_y) / (hi_y - lo_y) * (height - 2 * pad)

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' class='chart' role='img' "
        f"viewBox='0 0 {width} {height}' width='{width}' height='{height}'>",
        f"<title>{escape(title)}</title>",
        f"<text x='0' y='16' {FONT} font-weight='600'>{escape(title)}</text>",
        f"<line x1='{pad}' y1='{height - pad + 14}' x2='{width - right}' y2='{height - pad + 14}' "
        "stroke='#6b7280'/>",
        f"<line x1='{pad}' y1='{pad - 14}' x2='{pad}' y2='{height - pad + 14}' stroke='#6b7280'/>",
        f"<text x='{width / 2}' y='{height - 8}' text-anchor='middle' {FONT}>"
        f"{escape(x_label)}{' (log scale)' if log else ''}</text>",
        f"<text x='14' y='{height / 2}' text-anchor='middle' {FONT} "
        f"transform='rotate(-90 14 {height / 2})'>{escape(y_label)}</text>",
    ]
    for step in range(4):
        at = lo_x + (hi_x - lo_x) * step / 3
        shown = 10**at if log else at
        parts.append(
            f"<text x='{pad + (at - lo_x) / (hi_x - lo_x) * (width - pad - right):.1f}' "
            f"y='{height - pad + 30}' text-anchor='middle' {FONT} fill='#6b7280'>"
            f"{shown:.2g}</text>"
        )
    for tick in (lo_y + (hi_y - lo_y) * i / 4 for i in range(5)):
        parts.append(
            f"<text x='{pad - 6}' y='{py(tick) + 4:.1f}' text-anchor='end' {FONT} "
            f"fill='#6b7280'>{tick:.3g}</text>"
        )
    if len(front) > 1:
        path = " ".join(f"{px(points[i].x):.1f},{py(points[i].y):.1f}" for i in front)
        parts.append(
            f"<polyline points='{path}' fill='none' stroke='{FRONT}' stroke-dasharray='5 4' "
            "stroke-width='1.5'><title>Pareto front</title></polyline>"
        )
    for n, p in enumerate(points):
        colour = BASELINE if p.baseline else MODEL
        ring = f" stroke='{FRONT}' stroke-width='2.5'" if n in front else ""
        parts.append(
            f"<circle cx='{px(p.x):.1f}' cy='{py(p.y):.1f}' r='6' fill='{colour}'{ring}>"
            f"<title>{escape(p.label)}: {p.y:.4g} at {p.x:.4g}</title></circle>"
            f"<text x='{px(p.x) + 9:.1f}' y='{py(p.y) - 7 + 14 * (n % 2):.1f}' {FONT}>"
            f"{escape(_short(p.label, 30))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
