"""The router's ledger: every routed call with its cost and why it went where it went.

Monthly budgets are checked against it, so spend from the CLI, the Python API and the
server all count towards the same cap — they share the log store.
"""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime

from sqlalchemy import func, insert, select

from fondasi.models.route_policy import RoutedCall
from fondasi.monitor import tables
from fondasi.monitor.store import Store


def month_start(now: float | None = None) -> float:
    """The first second of the current calendar month, UTC."""
    day = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return calendar.timegm((day.year, day.month, 1, 0, 0, 0))


__all__ = ["Ledger", "RoutedCall", "month_start"]


class Ledger:
    """Reads and writes routed calls in the log store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, call: RoutedCall) -> None:
        """Keep one routed call."""
        with self.store.engine.begin() as conn:
            conn.execute(insert(tables.routed_calls), [call.model_dump()])

    def spent(self, provider: str, since: float | None = None) -> float:
        """USD spent on a provider since a time (default: this calendar month)."""
        table = tables.routed_calls
        query = select(func.coalesce(func.sum(table.c.cost_usd), 0.0)).where(
            table.c.provider == provider, table.c.ts >= (since or month_start())
        )
        with self.store.engine.connect() as conn:
            return float(conn.scalar(query) or 0.0)

    def recent(self, limit: int = 20) -> list[RoutedCall]:
        """The latest routed calls, newest first."""
        table = tables.routed_calls
        query = select(table).order_by(table.c.ts.desc(), table.c.id.desc()).limit(limit)
        with self.store.engine.connect() as conn:
            return [
                RoutedCall(**{k: v for k, v in row._mapping.items() if k != "id"})
                for row in conn.execute(query)
            ]
