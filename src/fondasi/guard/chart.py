"""A bias check's chart as a self-contained SVG: one panel per measure, grouped bars."""

from __future__ import annotations

from html import escape
from typing import Any

PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"]
LABELS = {
    "flipped": "label flip rate",
    "shift": "change in the original label's score",
    "sentiment": "positive sentiment of the answer",
    "toxicity": "toxicity of the answer",
    "distance": "embedding distance to the original answer",
    "length": "answer length (words)",
}


def bias_svg(summary: list[dict[str, Any]], title: str) -> str:
    """Bars of each measure's mean per variant, variants grouped by demographic group."""
    measures = [m for m in LABELS if any(row.get(m) is not None for row in summary)]
    groups = list(dict.fromkeys(row["group"] for row in summary))
    bar, gap, panel_h, left = 16, 22, 190, 60
    # At least 70 px a group, so group names never run into each other.
    width_of_group = {g: max(sum(1 for r in summary if r["group"] == g) * bar, 70) for g in groups}
    width = left + sum(width_of_group.values()) + gap * (len(groups) + 1) + 20
    width = max(width, left + 8 * len(title))  # room for the title
    height = 40 + len(measures) * (panel_h + 70)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    for index, measure in enumerate(measures):
        top = 40 + index * (panel_h + 70)
        values = [float(r[measure]) for r in summary if r.get(measure) is not None]
        # Rates and probabilities share a 0..1 axis; small shifts and lengths get their own.
        bounded = measure in ("flipped", "sentiment", "toxicity")
        peak = 1.0 if bounded else max(max(values), 1e-9) * 1.1
        out.append(
            f'<text x="{left}" y="{top + 12}" font-size="12" font-weight="bold">'
            f"{escape(LABELS[measure])}</text>"
        )
        base = top + panel_h
        out.append(f'<line x1="{left}" y1="{base}" x2="{width - 20}" y2="{base}" stroke="#111"/>')
        for tick in (0.0, 0.5, 1.0):
            y = base - tick * (panel_h - 30)
            out.append(
                f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">'
                f"{tick * peak:.2g}</text>"
            )
            out.append(
                f'<line x1="{left}" y1="{y:.1f}" x2="{width - 20}" y2="{y:.1f}" stroke="#eee"/>'
            )
        x = left + gap
        for group in groups:
            rows = [r for r in summary if r["group"] == group]
            for colour, row in enumerate(rows):
                value = row.get(measure)
                if value is not None:
                    h = float(value) / peak * (panel_h - 30)
                    out.append(
                        f'<rect x="{x}" y="{base - h:.1f}" width="{bar - 2}" height="{h:.1f}" '
                        f'fill="{PALETTE[colour % len(PALETTE)]}"><title>{escape(group)} / '
                        f"{escape(row['variant'])}: {float(value):.3f}</title></rect>"
                    )
                out.append(
                    f'<text x="{x + bar / 2 - 2}" y="{base + 8}" font-size="9" '
                    f'transform="rotate(60 {x + bar / 2 - 2} {base + 8})">'
                    f"{escape(row['variant'])}</text>"
                )
                x += bar
            x += width_of_group[group] - len(rows) * bar
            out.append(
                f'<text x="{x - width_of_group[group] / 2}" y="{base + 62}" '
                f'text-anchor="middle" font-weight="bold">{escape(group)}</text>'
            )
            x += gap
    out.append("</svg>")
    return "\n".join(out)
