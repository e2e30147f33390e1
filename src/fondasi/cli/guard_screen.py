"""``fondasi guard scan --data FILE``: screen a dataset row by row, one JSON line per row."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fondasi.cli._render import console, errors, esc


def screen_data(
    policy: Any, data: Path, columns: list[str] | None, out: Path | None, stage: str
) -> None:
    """Write each row's scores (``out``, else standard output), then a summary table."""
    from fondasi.data.files import read_file
    from fondasi.guard.screen import Screen, Summary, columns_for

    rows = read_file(data)
    chosen = columns_for(rows.columns, columns)
    screen = Screen(policy, stage)  # type: ignore[arg-type]
    summary = Summary(list(screen.thresholds), screen.thresholds)
    # With no --out the lines are the output: the bar and the table go to standard error.
    shown = console if out is not None else errors
    handle: IO[str] = out.open("w", encoding="utf-8") if out is not None else sys.stdout
    try:
        with Progress(
            TextColumn("screening"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=shown,
            transient=True,
        ) as progress:
            task = progress.add_task("rows", total=len(rows))
            for result in screen.rows(rows, chosen, rows.where):
                handle.write(json.dumps(result.json(), ensure_ascii=False) + "\n")
                summary.add(result)
                progress.advance(task)
    finally:
        if out is not None:
            handle.close()
    shown.print(_table(summary, data, chosen))
    if summary.bad:
        shown.print(
            f"[yellow]{summary.bad} row(s) could not be screened[/]: their lines say why "
            '("error"); the other rows were screened'
        )


def _table(summary: Any, data: Path, columns: list[str]) -> Table:
    title = f"{summary.rows} rows of {esc(data.name)} ({esc(', '.join(columns))})"
    table = Table(title=title, title_justify="left", pad_edge=False)
    for column in ("filter", "threshold", "rows fired", "share", "highest score"):
        table.add_column(column, justify="left" if column == "filter" else "right")
    screened = summary.rows - summary.bad
    for name in summary.filters:
        fired = summary.fired.get(name, 0)
        table.add_row(
            name,
            f"{summary.thresholds[name]:.2f}",
            str(fired),
            f"{fired / screened:.1%}" if screened else "-",
            f"{summary.highest.get(name, 0.0):.2f}",
        )
    return table


__all__ = ["screen_data"]
