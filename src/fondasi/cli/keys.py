"""``fondasi keys``: API keys for ``fondasi serve`` (create, list, revoke).

A key is shown once, when created, alone on the last line of the output; the store keeps
only its hash. The server requires a key as soon as one exists.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from fondasi.cli._render import console, esc, print_json
from fondasi.settings import Settings

if TYPE_CHECKING:
    from fondasi.monitor import KeyStore

app = typer.Typer(help="API keys for `fondasi serve`: create, list, revoke.", no_args_is_help=True)
DB = typer.Option(None, "--db", help="Log store URL or SQLite path (default: FONDASI_HOME).")


def _keys(ctx: typer.Context, db: str | None) -> KeyStore:
    from fondasi.monitor import KeyStore, Store

    settings: Settings = ctx.obj or Settings.load()
    return KeyStore(Store.open(settings, db))


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else "-"


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Who or what the key is for, e.g. tim-cs."),
    rate: int | None = typer.Option(None, "--rate", help="Requests a minute (default: no cap)."),
    models: str | None = typer.Option(
        None, "--models", help="Comma-separated names this key may use (default: all)."
    ),
    admin: bool = typer.Option(False, "--admin", help="May change aliases (/admin)."),
    db: str | None = DB,
) -> None:
    """Create a key; it is printed once, alone on the last line."""
    keys = _keys(ctx, db)
    allowed = [m.strip() for m in models.split(",")] if models is not None else None
    info, secret = keys.create(name, rate_per_minute=rate, models=allowed, admin=admin)
    limits = f"{rate}/min" if rate else "no rate limit"
    scope = ", ".join(info.models) if info.models else "all models"
    console.print(f"created key {esc(info.name)} ({info.id}): {limits}, {esc(scope)}")
    console.print("Copy it now: it is not stored and cannot be shown again.")
    # The secret alone on the last line, without Rich, so scripts can take `tail -1`.
    typer.echo(secret)


@app.command("list")
def list_keys(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    db: str | None = DB,
) -> None:
    """Every key: name, id, first characters, limits, status. Never the key itself."""
    keys = _keys(ctx, db)
    found = keys.list()
    if as_json:
        print_json(found)
        return
    if not found:
        console.print("no keys: the server is open to anyone on this machine")
        return
    table = Table(pad_edge=False)
    for column in ("name", "id", "starts", "rate", "models", "admin", "created", "status"):
        table.add_column(column)
    for key in found:
        table.add_row(
            esc(key.name),
            key.id,
            key.prefix + "…",
            f"{key.rate_per_minute}/min" if key.rate_per_minute else "-",
            esc(", ".join(key.models)) if key.models else "all",
            "yes" if key.admin else "",
            _when(key.created),
            "active" if key.active else f"revoked {_when(key.revoked)}",
        )
    console.print(table)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The key's name or id."),
    db: str | None = DB,
) -> None:
    """Revoke a key: a running server refuses it within a second."""
    keys = _keys(ctx, db)
    key = keys.revoke(name)
    console.print(f"revoked {esc(key.name)} ({key.id})")
