"""Named, forward-only migrations, each recorded in ``_fondasi_migrations`` once applied.

A new table or column is a new function appended to ``MIGRATIONS``; applied migrations are
never edited. Every process that opens the store runs the ones still missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, Table, select
from sqlalchemy.exc import DBAPIError

from fondasi.monitor import tables
from fondasi.monitor.drift_cache import drift_embeddings

Migration = Callable[[Connection], None]


def _create(table: Table) -> Migration:
    def create(conn: Connection) -> None:
        table.create(conn, checkfirst=True)

    return create


MIGRATIONS: list[tuple[str, Migration]] = [
    ("m001_requests", _create(tables.requests)),
    ("m002_guard_events", _create(tables.guard_events)),
    ("m003_feedback", _create(tables.feedback)),
    ("m004_api_keys", _create(tables.api_keys)),
    ("m005_aliases", _create(tables.aliases)),
    ("m006_alias_history", _create(tables.alias_history)),
    ("m007_routed_calls", _create(tables.routed_calls)),
    ("m008_drift_embeddings", _create(drift_embeddings)),
]


def applied(engine: Engine) -> list[str]:
    """Names of the migrations this database has had."""
    with engine.connect() as conn:
        return list(conn.scalars(select(tables.migrations.c.name)))


def migrate(engine: Engine, attempts: int = 6) -> list[str]:
    """Apply the missing migrations in order, each in its own transaction; their names.

    Processes opening a new store together (a server and a CLI) race to create the same
    tables; the loser's transaction fails, and a retry finds the work done.
    """
    for attempt in range(attempts):
        try:
            return _migrate(engine)
        except DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


def _migrate(engine: Engine) -> list[str]:
    tables.migrations.create(engine, checkfirst=True)
    done = set(applied(engine))
    ran = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        with engine.begin() as conn:
            step(conn)
            conn.execute(tables.migrations.insert().values(name=name, applied=time.time()))
        ran.append(name)
    return ran
