"""Time-series line charts for the dashboard, drawn server-side as inline SVG.

No script, library or network: the page works offline and prints as it looks. Each point
carries a ``<title>`` so hovering shows its time and value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape

from fondasi.monitor.records import Bucket

PALETTE = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#4b5563")
FONT = "font-family='system-ui, sans-serif' font-size='11'"
WIDTH, HEIGHT = 560, 210
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 26, 40

Point = tuple[float, float | None]


def nice_top(value: float) -> float:
    """A round number at or above ``value`` for the top of an axis."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)


def _time_label(ts: float, span: float) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%H:%M" if span <= 2 * 86400 else "%m-%d")


def line_chart(
    title: str,
    series: Mapping[str, Sequence[Point]],
    start: float,
    end: float,
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
) -> str:
    """Lines over time, one per series, with axes, grid, legend and per-point tooltips."""
    rows = max(1, math.ceil(len(series) / 3))
    height = HEIGHT + 16 * (rows - 1)  # one legend row per three series
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = [v for points in series.values() for _, v in points if v is not None]
    top = nice_top(max(values, default=0.0))
    span = max(end - start, 1.0)

    def x(ts: float) -> float:
        return LEFT + (ts - start) / span * plot_w

    def y(value: float) -> float:
        return TOP + plot_h - value / top * plot_h

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' class='chart' role='img' "
        f"viewBox='0 0 {WIDTH} {height}' width='{WIDTH}' height='{height}'>",
        f"<title>{escape(title)}</title>",
        f"<text x='0' y='14' {FONT} font-size='13' font-weight='600'>{escape(title)}</text>",
    ]
    for step in range(5):
        value = top * step / 4
        py = y(value)
        parts.append(
            f"<line x1='{LEFT}' x2='{WIDTH - RIGHT}' y1='{py:.1f}' y2='{py:.1f}' "
            f"stroke='#e5e7eb'/><text x='{LEFT - 6}' y='{py + 4:.1f}' text-anchor='end' "
            f"{FONT} fill='#6b7280'>{escape(fmt(value))}</text>"
        )
    for step in range(5):
        ts = start + span * step / 4
        anchor = "start" if step == 0 else "end" if step == 4 else "middle"
        parts.append(
            f"<text x='{x(ts):.1f}' y='{HEIGHT - BOTTOM + 15}' text-anchor='{anchor}' "
            f"{FONT} fill='#6b7280'>{_time_label(ts, span)}</text>"
        )
    if not values:
        parts.append(
            f"<text x='{LEFT + plot_w / 2}' y='{TOP + plot_h / 2}' text-anchor='middle' "
            f"{FONT} fill='#9ca3af'>no data in this window</text>"
        )
    for n, (name, points) in enumerate(series.items()):
        colour = PALETTE[n % len(PALETTE)]
        path, pen_down = [], False
        for ts, point in sorted(points, key=lambda p: p[0]):
            if point is None:
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{x(ts):.1f} {y(point):.1f}")
            pen_down = True
            when = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")
            parts.append(
                f"<circle cx='{x(ts):.1f}' cy='{y(point):.1f}' r='2.5' fill='{colour}'>"
                f"<title>{escape(name)} {when} UTC: {escape(fmt(point))}</title></circle>"
            )
        if path:
            parts.append(
                f"<path d='{' '.join(path)}' fill='none' stroke='{colour}' stroke-width='1.8'/>"
            )
        lx = LEFT + (n % 3) * 170
        ly = HEIGHT - 10 + (n // 3) * 16
        parts.append(
            f"<rect x='{lx}' y='{ly - 8}' width='10' height='10' fill='{colour}' rx='2'/>"
            f"<text x='{lx + 14}' y='{ly + 1}' {FONT}>{escape(name[:26])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def bucket_series(
    buckets: Sequence[Bucket],
    value: Callable[[Bucket], float | None],
    start: float,
    end: float,
    width: int,
    fill: float | None = 0.0,
) -> dict[str, list[Point]]:
    """Per model, one point per bucket; buckets without traffic get ``fill``."""
    first = math.floor(start / width) * width
    slots = [first + i * width for i in range(int((end - first) // width) + 1)]
    by_model: dict[str, dict[float, float | None]] = {}
    for bucket in buckets:
        by_model.setdefault(bucket.model, {})[bucket.start] = value(bucket)
    return {
        model: [(slot + width / 2, found.get(slot, fill)) for slot in slots]
        for model, found in sorted(by_model.items())
    }


def dashboard_charts(buckets: Sequence[Bucket], start: float, end: float, width: int) -> list[str]:
    """The overview's charts: volume, latency, tokens, cost and error rate per model."""

    def series(
        value: Callable[[Bucket], float | None], fill: float | None = 0.0
    ) -> dict[str, list[Point]]:
        return bucket_series(buckets, value, start, end, width, fill)

    minutes = width / 60
    per = f"{minutes:g} min" if minutes < 60 else f"{minutes / 60:g} h"
    return [
        line_chart(f"Requests per {per}", series(lambda b: b.requests), start, end),
        line_chart(
            "Latency p95 (ms)",
            series(lambda b: b.latency_p95_ms, None),
            start,
            end,
            lambda v: f"{v:.0f}",
        ),
        line_chart(
            "Latency p50 (ms)",
            series(lambda b: b.latency_p50_ms, None),
            start,
            end,
            lambda v: f"{v:.0f}",
        ),
        line_chart(
            f"Tokens per {per} (in + out)",
            series(lambda b: b.prompt_tokens + b.completion_tokens),
            start,
            end,
        ),
        line_chart(
            f"Cost per {per} (USD)", series(lambda b: b.cost_usd), start, end, lambda v: f"{v:.4g}"
        ),
        line_chart(
            "Error rate",
            series(lambda b: b.errors / b.requests if b.requests else None, None),
            start,
            end,
            lambda v: f"{v:.0%}",
        ),
    ]
