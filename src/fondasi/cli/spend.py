"""``fondasi spend``: what each provider has spent this month against its budget, and why
recent requests went where they went."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.table import Table

from fondasi.cli._render import console, esc, print_json
from fondasi.settings import Settings


def spend(
    ctx: typer.Context,
    recent: int = typer.Option(10, "--recent", min=0, max=1000, help="Routed calls to list."),
    as_json: bool = typer.Option(False, "--json", help="Print spend and calls as JSON."),
) -> None:
    """Spend per provider this month against the [router] budgets, and recent routed calls."""
    from fondasi.extras import require

    require("sqlalchemy", "serve", "the router's ledger")
    from fondasi.models.route_policy import usd
    from fondasi.monitor.ledger import Ledger
    from fondasi.monitor.store import Store

    settings: Settings = ctx.obj
    ledger = Ledger(Store.open(settings))
    calls = ledger.recent(recent)
    providers = sorted({*settings.router.budgets, *(c.provider for c in calls if c.provider)})
    spent = {name: ledger.spent(name) for name in providers}
    if as_json:
        budgets = settings.router.budgets
        rows = [
            {"provider": p, "spent_usd": spent[p], "budget_usd": budgets.get(p)} for p in providers
        ]
        print_json({"month": rows, "recent": [c.model_dump() for c in calls]})
        return
    month = Table(title="This month (UTC)", title_justify="left", pad_edge=False)
    for column in ("provider", "spent USD", "budget USD", "left"):
        month.add_column(column, justify="left" if column == "provider" else "right")
    for name in providers:
        cap = settings.router.budgets.get(name)
        left = "—" if cap is None else usd(max(cap - spent[name], 0))
        month.add_row(esc(name), usd(spent[name]), "—" if cap is None else usd(cap), left)
    console.print(month if providers else "[dim]no provider has spent anything this month[/]")
    log = Table(title="Recent routed calls", title_justify="left", pad_edge=False)
    for column in ("time (UTC)", "model", "cost USD", "why"):
        log.add_column(column, overflow="fold")
    for call in calls:
        when = datetime.fromtimestamp(call.ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
        cost = "—" if call.cost_usd is None else usd(call.cost_usd)
        log.add_row(when, esc(call.model), cost, esc(call.decision))
    console.print(log if calls else "[dim]no routed calls recorded yet[/]")
