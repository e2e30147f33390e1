"""Drift in ``fondasi stats``: one check per listed model, shown as a Rich table or JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.table import Table

from fondasi.cli._render import esc
from fondasi.errors import BadInputError
from fondasi.settings import Settings

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from fondasi.monitor import ModelSummary, Store
    from fondasi.monitor.drift import ModelDrift


def checks(
    settings: Settings,
    store: Store,
    models: Sequence[str],
    recent: str,
    reference: str,
    alpha: float,
    thresholds: Sequence[str] = (),
) -> list[ModelDrift]:
    """Drift checks of ``models``; the embedding model loads only if a window needs it."""
    from fondasi.monitor.drift import DriftConfig, check_all, load_embedder

    config = DriftConfig.of(
        recent=recent, reference=reference, alpha=alpha, thresholds=parse_thresholds(thresholds)
    )
    loaded: list[Any] = []

    def embed(texts: list[str]) -> npt.NDArray[np.float32]:
        if not loaded:
            loaded.append(load_embedder(settings.embedding_model, settings))
        return loaded[0](texts)  # type: ignore[no-any-return]

    return check_all(store, config, embed, settings.embedding_model, models)


def parse_thresholds(items: Sequence[str]) -> dict[str, float]:
    """``["refusal_rate=0.001"]`` -> ``{"refusal_rate": 0.001}``."""
    found: dict[str, float] = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            found[name.strip()] = float(value)
        except ValueError:
            raise BadInputError(
                f"--drift-threshold {item!r}: give SIGNAL=P-VALUE, e.g. refusal_rate=0.001"
            ) from None
    return found


def with_drift(rows: Sequence[ModelSummary], found: Sequence[ModelDrift]) -> list[dict[str, Any]]:
    """Summaries as JSON objects, each with its model's drift check under ``drift``."""
    by_model = {d.model: d for d in found}
    return [
        {
            **row.model_dump(mode="json"),
            "drift": by_model[row.model].model_dump(mode="json") if row.model in by_model else None,
        }
        for row in rows
    ]


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 0.001 and value else f"{value:.4g}"


def table(found: Sequence[ModelDrift]) -> Table:
    """Every signal of every model: test, windows, values, statistic, p-value, flag."""
    first = found[0]
    title = (
        f"drift: recent ({esc(first.recent.spec)}) vs the reference before it "
        f"({esc(first.reference.spec)})"
    )
    out = Table(pad_edge=False, title=title)
    out.add_column("model")
    out.add_column("signal")
    for column in ("n ref/recent", "ref", "recent", "statistic", "p", "threshold"):
        out.add_column(column, justify="right")
    out.add_column("flag")
    out.add_column("note")
    for check in found:
        for n, signal in enumerate(check.signals):
            flag = {"drift": "[red]DRIFT[/]", "ok": "[green]ok[/]"}.get(signal.status, "n/a")
            out.add_row(
                esc(check.model) if n == 0 else "",
                signal.name,
                f"{signal.reference_n}/{signal.recent_n}",
                _num(signal.reference_value),
                _num(signal.recent_value),
                _num(signal.statistic),
                _num(signal.p_value),
                _num(signal.threshold),
                flag,
                esc(signal.note or ""),
            )
    return out
