"""``fondasi serve``: the OpenAI-compatible server, and ``fondasi serve alias ...`` for versions.

``fondasi serve [--port 8000] [--models a,b]`` runs the server; ``fondasi serve alias set
support-bot tuned:runs/lora-7``, ``... canary support-bot tuned:runs/lora-8 --percent 10``,
``... promote``, ``... rollback`` change which version answers, without a restart.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from fondasi.cli._render import console, errors, esc, print_json
from fondasi.settings import Settings


class RunByDefault(TyperGroup):
    """``fondasi serve --port 9000`` means ``fondasi serve run --port 9000``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in {"-h", "--help"}):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=RunByDefault,
    help="Serve models over the OpenAI wire format (`fondasi serve --models a,b`).",
)
alias_app = typer.Typer(help="Model versions behind served names: set, canary, promote, rollback.")
app.add_typer(alias_app, name="alias")

DB = typer.Option(None, "--db", help="Log store URL or SQLite path (default: FONDASI_HOME).")


def _settings(ctx: typer.Context) -> Settings:
    settings: Settings = ctx.obj or Settings.load()
    return settings


@app.command("run")
def run(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", help="A serve.toml file."),
    host: str | None = typer.Option(None, "--host", help="Address to bind (127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="TCP port (8000; 0 picks one)."),
    models: str | None = typer.Option(
        None, "--models", help="Comma-separated model ids or refs to serve."
    ),
    db: str | None = DB,
    log_text: bool | None = typer.Option(
        None, "--log-text/--no-log-text", help="Log prompts and answers (redacted)."
    ),
    guard: str | None = typer.Option(None, "--guard", help="Guard policy around every model."),
    trace_text: bool | None = typer.Option(
        None,
        "--trace-text/--no-trace-text",
        help="Put the logged prompts and answers on trace spans (needs --log-text).",
    ),
    log_format: str | None = typer.Option(
        None, "--log-format", help="text, or json: one object a line with request and trace ids."
    ),
    workers: int | None = typer.Option(
        None, "--workers", help="Server processes on the one port (1); each loads the models."
    ),
    redis: str | None = typer.Option(
        None, "--redis", help="Redis URL holding per-key rate limits for every worker and replica."
    ),
) -> None:
    """Run the server until Ctrl-C; in-flight requests finish and the log is flushed."""
    from fondasi.monitor import KeyStore, Store
    from fondasi.server import ServeConfig
    from fondasi.server import run as serve

    chosen = [m.strip() for m in models.split(",") if m.strip()] if models is not None else None
    settings = _settings(ctx)
    cfg = ServeConfig.load(
        config,
        host=host,
        port=port,
        models=chosen,
        db=db,
        log_text=log_text,
        guard=guard,
        trace_text=trace_text,
        log_format=log_format,
        workers=workers,
        redis_url=redis,
    )
    say, warn = _voice(cfg.log_format)
    store = Store.open(settings, cfg.db)
    active = KeyStore(store).count(active_only=True)
    locked = KeyStore(store).count() > 0
    url = store.url
    store.close()
    if not _loopback(cfg.host) and not locked:
        warn(
            f"binding {cfg.host} with no API keys: anyone who can reach it may use it "
            "(`fondasi keys create NAME`)"
        )
    if cfg.redis_url is not None:
        from fondasi.server.redis_limits import reachable

        reachable(cfg.redis_url)
    elif cfg.workers > 1:
        warn(
            f"{cfg.workers} workers without --redis: each keeps its own per-key rate limits, "
            f"so a key may make up to {cfg.workers}× its rate"
        )
    processes = f" in {cfg.workers} workers" if cfg.workers > 1 else ""
    say(f"loading {', '.join(cfg.models)}{processes} ...")

    def ready(address: str) -> None:
        keys = f"required ({active} active)" if locked else "off (no keys yet)"
        say(f"fondasi serving {', '.join(cfg.models)} at {address}/v1")
        say(f"  keys: {keys} · log: {_safe(url)} · text logging: {cfg.log_text}")
        if cfg.redis_url is not None:
            say(f"  rate limits: shared in {_safe(cfg.redis_url)}")
        say("  Ctrl-C stops after the requests in flight finish.")

    serve(cfg, settings, on_ready=ready)
    say("stopped; every request is in the log")


def _voice(log_format: str) -> tuple[Callable[[str], None], Callable[[str], None]]:
    """How the command speaks: to the terminal, or as JSON log lines like the server's."""
    if log_format == "json":
        import logging.config

        from fondasi.server.tracing import log_config

        logging.config.dictConfig(log_config())  # before the first line, not at bind time
        log = logging.getLogger("fondasi.server")
        return lambda text: log.info(text.strip()), lambda text: log.warning(text.strip())

    def say(text: str) -> None:
        console.print(esc(text), soft_wrap=True)

    def warn(text: str) -> None:
        errors.print(f"[yellow]warning:[/] {esc(text)}")

    return say, warn


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _safe(url: str) -> str:
    """A database URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _versions(ctx: typer.Context, db: str | None) -> Any:
    from fondasi.monitor import Store, Versions

    return Versions(Store.open(_settings(ctx), db))


def _show(alias: Any) -> None:
    from fondasi.monitor.versions import describe

    console.print(esc(describe(alias)))


@alias_app.command("list")
def alias_list(
    ctx: typer.Context,
    db: str | None = DB,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every alias and the versions behind it."""
    aliases = _versions(ctx, db).all()
    if as_json:
        print_json([a.model_dump() for a in aliases.values()])
        return
    if not aliases:
        console.print("no aliases yet: `fondasi serve alias set NAME MODEL`")
        return
    table = Table(pad_edge=False)
    for column in ("alias", "version", "share", "changed (UTC)"):
        table.add_column(column)
    for alias in aliases.values():
        when = datetime.fromtimestamp(alias.updated, UTC).strftime("%Y-%m-%d %H:%M:%S")
        for index, target in enumerate(alias.targets):
            name = alias.name if index == 0 else ""
            table.add_row(esc(name), esc(target.model), f"{target.weight:g}%", when)
    console.print(table)


@alias_app.command("set")
def alias_set(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The served name, e.g. support-bot."),
    model: str = typer.Argument(..., help="The version, e.g. tuned:runs/lora-7."),
    db: str | None = DB,
) -> None:
    """Point an alias at one model (all traffic)."""
    _show(_versions(ctx, db).point(name, model))


@alias_app.command("canary")
def alias_canary(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The alias."),
    model: str = typer.Argument(..., help="The new version."),
    percent: float = typer.Option(10.0, "--percent", help="Share of traffic for it."),
    db: str | None = DB,
) -> None:
    """Send a share of an alias's traffic to a new version."""
    _show(_versions(ctx, db).canary(name, model, percent))


@alias_app.command("promote")
def alias_promote(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The alias."),
    model: str | None = typer.Argument(None, help="The version to promote (default: canary)."),
    db: str | None = DB,
) -> None:
    """Give all traffic to one version."""
    _show(_versions(ctx, db).promote(name, model))


@alias_app.command("rollback")
def alias_rollback(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The alias."),
    db: str | None = DB,
) -> None:
    """Undo the alias's latest change."""
    restored = _versions(ctx, db).rollback(name)
    if restored is None:
        console.print(f"{esc(name)}: removed again (it did not exist before)")
    else:
        _show(restored)


@alias_app.command("remove")
def alias_remove(
    ctx: typer.Context, name: str = typer.Argument(..., help="The alias."), db: str | None = DB
) -> None:
    """Delete an alias (its history stays, so rollback brings it back)."""
    _versions(ctx, db).remove(name)
    console.print(f"removed {esc(name)}")


@alias_app.command("history")
def alias_history(
    ctx: typer.Context, name: str = typer.Argument(..., help="The alias."), db: str | None = DB
) -> None:
    """Every change to an alias, oldest first."""
    from fondasi.monitor.records import Alias
    from fondasi.monitor.versions import describe

    versions = _versions(ctx, db)
    changes = versions.history(name)
    if not changes:
        versions.get(name)
    for change in changes:
        when = datetime.fromtimestamp(change.ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
        shown = (
            describe(Alias(name=name, targets=change.targets, updated=change.ts))
            if change.targets
            else "(removed)"
        )
        console.print(f"{when}  {change.action:<8} {esc(shown)}")
