"""``fondasi logs`` and ``fondasi stats``: what the server answered, and how well.

``fondasi logs [--since 1h] [--model m] [--json]`` lists requests; ``fondasi logs export
--feedback --out data.jsonl`` turns rated answers into a dataset ``fondasi tune`` reads
(chat rows as ``messages``, completions as ``prompt``/``completion``, labelled ones as
``text``/``label``), closing the loop from logs to a better model version.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from fondasi.cli._render import console, esc, print_json
from fondasi.errors import BadInputError
from fondasi.settings import Settings

if TYPE_CHECKING:
    from fondasi.monitor import FeedbackRow, Store

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
FORMATS = ("auto", "chat", "classification")


class ShowByDefault(TyperGroup):
    """``fondasi logs --since 1h`` means ``fondasi logs show --since 1h``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in {"-h", "--help"}):
            args = ["show", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=ShowByDefault, help="Requests the server logged; export rated answers.")
DB = typer.Option(None, "--db", help="Log store URL or SQLite path (default: FONDASI_HOME).")
SINCE = typer.Option(None, "--since", help="How far back: 30m, 2h, 7d, or an ISO time.")
MODEL = typer.Option(None, "--model", help="Only this served name.")


def parse_since(value: str | None, now: float | None = None) -> float | None:
    """``30m`` / ``2h`` / ``7d`` ago, or an ISO date-time (UTC unless it says), as epoch."""
    if value is None:
        return None
    now = time.time() if now is None else now
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", value)
    if match:
        return now - float(match.group(1)) * UNITS[match.group(2)]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadInputError(
            f"--since {value!r}: give a duration like 30m, 2h, 7d or a time like 2026-11-28T09:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _store(ctx: typer.Context, db: str | None) -> Store:
    from fondasi.monitor import Store

    settings: Settings = ctx.obj or Settings.load()
    return Store.open(settings, db)


def _ms(value: float | None) -> str:
    return "-" if value is None else (f"{value / 1000:.2f}s" if value >= 1000 else f"{value:.0f}ms")


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%m-%d %H:%M:%S")


@app.command("show")
def show(
    ctx: typer.Context,
    since: str | None = SINCE,
    model: str | None = MODEL,
    limit: int = typer.Option(20, "--limit", min=1, max=100_000, help="Most rows."),
    errors_only: bool = typer.Option(False, "--errors", help="Only failed requests."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    db: str | None = DB,
) -> None:
    """Recent requests, newest first."""
    store = _store(ctx, db)
    rows = store.requests(
        since=parse_since(since), model=model, errors_only=errors_only, limit=limit
    )
    if as_json:
        for row in rows:
            typer.echo(row.model_dump_json())
        return
    if not rows:
        console.print("no requests logged" + (f" for {esc(model)}" if model else "") + " yet")
        return
    table = Table(pad_edge=False, title=f"{len(rows)} most recent requests (UTC)")
    table.add_column("time", no_wrap=True)
    table.add_column("id", no_wrap=True)
    table.add_column("model", min_width=24)
    for column in ("route", "status"):
        table.add_column(column)
    for column in ("latency", "ttft", "in/out", "cost $"):
        table.add_column(column, justify="right")
    table.add_column("key")
    table.add_column("guard")
    for row in rows:
        guard = ", ".join(f"{e.type}:{e.action}" for e in row.guard_events)
        status = str(row.status) if row.status < 400 else f"[red]{row.status}[/]"
        table.add_row(
            _when(row.ts),
            row.id,
            esc(row.model)
            + (
                f"\n[dim]-> {esc(row.version)}[/]"
                if row.version and row.version != row.model
                else ""
            ),
            row.route,
            status,
            _ms(row.latency_ms),
            _ms(row.ttft_ms),
            f"{row.prompt_tokens}/{row.completion_tokens}",
            f"{row.cost_usd:.6f}" if row.cost_usd is not None else "-",
            row.key_id or "-",
            esc(guard) or "-",
        )
    console.print(table)


def dataset_row(row: FeedbackRow, shape: str) -> tuple[dict[str, Any] | None, str]:
    """One training row from one piece of feedback, or None and why it was skipped."""
    if shape == "classification":
        if not row.label:
            return None, "no label"
        if row.prompt_text is None:
            return None, "text not logged"
        return {"text": _user_text(row), "label": row.label}, ""
    if row.prompt_text is None or (row.response_text is None and row.correction is None):
        return None, "text not logged"
    good = (row.rating or 0) > 0 or (row.score is not None and row.score >= 0.5)
    answer = row.correction or (row.response_text if good else None)
    if answer is None:
        return None, "rated down without a correction"
    if row.route == "chat":
        turns = json.loads(row.prompt_text)
        return {"messages": [*turns, {"role": "assistant", "content": answer}]}, ""
    return {"prompt": row.prompt_text, "completion": answer}, ""


def _user_text(row: FeedbackRow) -> str:
    if row.route == "chat" and row.prompt_text:
        turns = json.loads(row.prompt_text)
        users = [t["content"] for t in turns if t.get("role") == "user"]
        return str(users[-1]) if users else ""
    return row.prompt_text or ""


@app.command("export")
def export(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="The JSONL file to write."),
    feedback: bool = typer.Option(
        False, "--feedback", help="Export rated answers (the one export there is)."
    ),
    shape: str = typer.Option(
        "auto", "--format", help="auto, chat (messages / prompt+completion) or classification."
    ),
    since: str | None = SINCE,
    model: str | None = MODEL,
    db: str | None = DB,
) -> None:
    """Write rated answers as a dataset for `fondasi tune` / `fondasi eval`."""
    if not feedback:
        raise BadInputError("say what to export: --feedback")
    if shape not in FORMATS:
        raise BadInputError(f"--format {shape!r}: choose one of {', '.join(FORMATS)}")
    rows = _store(ctx, db).feedback(since=parse_since(since), model=model, limit=100_000)
    latest: dict[str, FeedbackRow] = {}
    for row in rows:  # newest first: the first seen per response is its latest verdict
        latest.setdefault(row.response_id, row)
    chosen = shape
    if shape == "auto":
        labelled = [r for r in latest.values() if r.label]
        chosen = "classification" if labelled and len(labelled) == len(latest) else "chat"
    written: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    for row in reversed(list(latest.values())):  # oldest first in the file
        data, why = dataset_row(row, chosen)
        if data is None:
            skipped[why] = skipped.get(why, 0) + 1
        else:
            written.append(data)
    if not written:
        reasons = ", ".join(f"{n} {why}" for why, n in skipped.items()) or "no feedback"
        hint = " (start the server with --log-text)" if "text not logged" in skipped else ""
        raise BadInputError(f"nothing to export: {reasons}{hint}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for data in written:
            handle.write(json.dumps(data, ensure_ascii=False) + "\n")
    left = "; skipped " + ", ".join(f"{n} ({why})" for why, n in skipped.items()) if skipped else ""
    console.print(f"wrote {len(written)} {chosen} rows to {esc(str(out))}{esc(left)}")


def stats(
    ctx: typer.Context,
    since: str | None = typer.Option("24h", "--since", help="Window: 30m, 24h, 7d or ISO."),
    model: str | None = MODEL,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    db: str | None = DB,
    drift: bool = typer.Option(True, "--drift/--no-drift", help="Check drift per model."),
    drift_recent: str = typer.Option(
        "200", "--drift-recent", help="Drift's recent window: N requests or a span (1h)."
    ),
    drift_reference: str = typer.Option(
        "1000", "--drift-reference", help="The window before it: N requests or a span (7d)."
    ),
    drift_alpha: float = typer.Option(
        0.01, "--drift-alpha", help="Flag a drift signal when its p-value is under this."
    ),
    drift_threshold: list[str] = typer.Option(
        [], "--drift-threshold", help="One signal's own threshold: refusal_rate=0.001."
    ),
) -> None:
    """Per model: requests, errors, latency percentiles, tokens, cost, feedback, guard, drift."""
    from fondasi.cli import _drift

    store = _store(ctx, db)
    rows = store.summary(since=parse_since(since), model=model)
    settings: Settings = ctx.obj or Settings.load()
    models = [row.model for row in rows]
    found = (
        _drift.checks(
            settings, store, models, drift_recent, drift_reference, drift_alpha, drift_threshold
        )
        if drift
        else []
    )
    if as_json:
        print_json(_drift.with_drift(rows, found) if drift else rows)
        return
    if not rows:
        console.print(f"no requests in the last {esc(since or 'ever')}")
        return
    table = Table(pad_edge=False, title=f"served models, since {esc(since or 'the start')}")
    table.add_column("model")
    for column in (
        "requests",
        "errors",
        "p50",
        "p95",
        "p99",
        "first token p50",
        "tokens in/out",
        "cost $",
        "up/down",
        "score",
        "guard",
    ):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            esc(row.model)
            + (
                f"\n[dim]{esc(', '.join(row.versions))}[/]"
                if row.versions and row.versions != [row.model]
                else ""
            ),
            str(row.requests),
            f"{row.errors} ({row.error_rate:.1%})",
            _ms(row.latency_p50_ms),
            _ms(row.latency_p95_ms),
            _ms(row.latency_p99_ms),
            _ms(row.ttft_p50_ms),
            f"{row.prompt_tokens}/{row.completion_tokens}",
            f"{row.cost_usd:.6f}",
            f"{row.feedback_up}/{row.feedback_down}",
            f"{row.feedback_score:.2f}" if row.feedback_score is not None else "-",
            f"{row.guard_events} ({row.guard_blocked} blocked)",
        )
    console.print(table)
    if found:
        console.print(_drift.table(found))
