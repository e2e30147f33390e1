"""The learning curve as inline SVG: a line per series over the number of labelled examples
(log scale), its interval as a shaded band, flat dashed lines for what needs no labels."""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape

from fondasi.evaluate.charts import FONT
from fondasi.evaluate.results import Curve, CurveSeries

# Colour-blind-safe (Okabe–Ito); the baseline keeps the report's grey.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
BASELINE = "#6b7280"


def colours(curve: Curve) -> list[str]:
    """A colour per series, in order: baselines grey, models from the palette."""
    found, models = [], 0
    for series in curve.series:
        if series.kind == "baseline":
            found.append(BASELINE)
        else:
            found.append(PALETTE[models % len(PALETTE)])
            models += 1
    return found


def curve_chart(curve: Curve) -> str:
    """The chart, with its legend beside it."""
    width, height, pad, right = 840, 340, 56, 320
    sizes = curve.sizes
    low_x, high_x = math.log2(sizes[0]), math.log2(sizes[-1])
    span_x = (high_x - low_x) or 1.0
    values = [
        v for s in curve.series for p in s.points for v in (p.value, p.low, p.high) if v is not None
    ]
    top = max(values, default=1.0)
    low_y = max(0.0, min(values, default=0.0) - 0.05)
    high_y = min(1.0, top + 0.05) if top <= 1 else top * 1.05  # a share stays under 1
    span_y = (high_y - low_y) or 1.0

    def px(size: int) -> float:
        return pad + (math.log2(size) - low_x) / span_x * (width - pad - right)

    def py(value: float) -> float:
        return height - pad - (value - low_y) / span_y * (height - 2 * pad + 14)

    title = (
        f"{curve.metric} by number of labelled examples "
        f"(mean of {curve.draws} samples, 95% interval)"
    )
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' class='chart curve' role='img' "
        f"viewBox='0 0 {width} {height}' width='{width}' height='{height}'>",
        f"<title>{escape(title)}</title>",
        f"<text x='0' y='16' {FONT} font-weight='600'>{escape(title)}</text>",
        f"<line x1='{pad}' y1='{height - pad}' x2='{width - right}' y2='{height - pad}' "
        "stroke='#6b7280'/>",
        f"<line x1='{pad}' y1='{pad - 14}' x2='{pad}' y2='{height - pad}' stroke='#6b7280'/>",
        f"<text x='{(width - right + pad) / 2}' y='{height - 12}' text-anchor='middle' {FONT}>"
        "labelled examples (log scale)</text>",
        f"<text x='14' y='{height / 2}' text-anchor='middle' {FONT} "
        f"transform='rotate(-90 14 {height / 2})'>{escape(curve.metric)}</text>",
    ]
    for size in sizes:
        parts.append(
            f"<text x='{px(size):.1f}' y='{height - pad + 16}' text-anchor='middle' {FONT} "
            f"fill='#6b7280'>{size}</text>"
        )
    for tick in (low_y + span_y * i / 4 for i in range(5)):
        parts.append(
            f"<text x='{pad - 6}' y='{py(tick) + 4:.1f}' text-anchor='end' {FONT} "
            f"fill='#6b7280'>{tick:.2f}</text>"
            f"<line x1='{pad}' y1='{py(tick):.1f}' x2='{width - right}' y2='{py(tick):.1f}' "
            "stroke='#e5e7eb'/>"
        )
    for series, colour in zip(curve.series, colours(curve), strict=True):
        parts.append(_series(series, colour, px, py))
    for n, (series, colour) in enumerate(zip(curve.series, colours(curve), strict=True)):
        y = pad - 10 + n * 20
        dash = " stroke-dasharray='6 4'" if not series.learns else ""
        name = series.name if len(series.name) <= 44 else series.name[:43] + "…"
        parts.append(
            f"<line x1='{width - right + 16}' y1='{y}' x2='{width - right + 40}' y2='{y}' "
            f"stroke='{colour}' stroke-width='2.5'{dash}/>"
            f"<text x='{width - right + 46}' y='{y + 4}' {FONT}>{escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _series(
    series: CurveSeries, colour: str, px: Callable[[int], float], py: Callable[[float], float]
) -> str:
    """A series' band (when it has intervals), line and points."""
    points = series.points
    drawn = []
    drawn_band = series.learns and len(points) > 1
    if drawn_band and all(p.low is not None and p.high is not None for p in points):
        upper = [f"{px(p.size):.1f},{py(p.high or 0.0):.1f}" for p in points]
        lower = [f"{px(p.size):.1f},{py(p.low or 0.0):.1f}" for p in reversed(points)]
        drawn.append(
            f"<polygon points='{' '.join(upper + lower)}' fill='{colour}' fill-opacity='0.12' "
            "stroke='none'/>"
        )
    line = " ".join(f"{px(p.size):.1f},{py(p.value):.1f}" for p in points)
    dash = " stroke-dasharray='6 4'" if not series.learns else ""
    drawn.append(
        f"<polyline points='{line}' fill='none' stroke='{colour}' stroke-width='2.5'{dash}>"
        f"<title>{escape(series.name)}</title></polyline>"
    )
    if series.learns:
        for p in points:
            shown = f"{p.value:.3f}" + (
                f" [{p.low:.3f}–{p.high:.3f}]" if p.low is not None and p.high is not None else ""
            )
            drawn.append(
                f"<circle cx='{px(p.size):.1f}' cy='{py(p.value):.1f}' r='4' fill='{colour}'>"
                f"<title>{escape(series.name)}, {p.size} examples: {shown}</title></circle>"
            )
    return "".join(drawn)


__all__ = ["colours", "curve_chart"]
