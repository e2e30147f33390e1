"""Named, forward-only migrations, each recorded in ``_fondasi_migrations`` once applied.

The migrations themselves, frozen, are in ``fondasi.monitor.migration_steps``; this module
runs the missing ones. Every process that opens the store calls ``migrate``: a quick read
sees nothing to do, else it takes the database's migration lock (``BEGIN IMMEDIATE`` on
SQLite, a transaction-level advisory lock on PostgreSQL), reads again what is applied, and
applies and records the rest in that one transaction. Server workers starting together
therefore apply each migration once, and a failed one leaves the database as it was
(SQLite and PostgreSQL both roll DDL back).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import Column, Connection, Engine, Float, MetaData, String, Table, func, select
from sqlalchemy import inspect as inspect_db

from fondasi.monitor.migration_steps import MIGRATIONS, Step

# The record of applied migrations, frozen like a migration: it is made before any of them.
_records = Table(
    "_fondasi_migrations",
    MetaData(),
    Column("name", String(100), primary_key=True),
    Column("applied", Float, nullable=False),
)

# pg_advisory_xact_lock's key for "fondasi log store migrations" (any fixed bigint will do;
# it only has to differ from the keys other applications sharing the database use).
_POSTGRES_LOCK_KEY = 0x666F6E6461736931


@contextmanager
def _sqlite_locked(engine: Engine) -> Iterator[Connection]:
    # pysqlite would begin a deferred transaction, and only before DML; with the driver in
    # autocommit the transaction is ours: IMMEDIATE takes the write lock now (waiting up to
    # busy_timeout for another process's), and the DDL inside it commits or rolls back with it.
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        conn.exec_driver_sql("COMMIT")


@contextmanager
def _postgresql_locked(engine: Engine) -> Iterator[Connection]:
    with engine.begin() as conn:
        conn.execute(select(func.pg_advisory_xact_lock(_POSTGRES_LOCK_KEY)))
        yield conn  # the lock is released when the transaction ends


LOCKED_TRANSACTION: dict[str, Callable[[Engine], AbstractContextManager[Connection]]] = {
    "sqlite": _sqlite_locked,
    "postgresql": _postgresql_locked,
}


def _recorded(conn: Connection) -> list[str]:
    # Names start with their zero-padded place in the sequence, so they sort in order.
    return list(conn.scalars(select(_records.c.name).order_by(_records.c.name)))


def applied(engine: Engine) -> list[str]:
    """Names of the migrations this database has had, oldest first."""
    with engine.connect() as conn:
        if not inspect_db(conn).has_table(_records.name):
            return []
        return _recorded(conn)


def migrate(engine: Engine, migrations: Sequence[tuple[str, Step]] = MIGRATIONS) -> list[str]:
    """Apply the missing migrations in order, under the migration lock; their names.

    ``migrations`` is every migration by default; tests pass a prefix to make a database as
    an earlier release left it.
    """
    names = [name for name, _ in migrations]
    if not set(names) - set(applied(engine)):
        return []
    with LOCKED_TRANSACTION[engine.dialect.name](engine) as conn:
        _records.create(conn, checkfirst=True)
        done = set(_recorded(conn))  # again: another process may have migrated meanwhile
        ran = []
        for name, step in migrations:
            if name in done:
                continue
            step(conn)
            conn.execute(_records.insert().values(name=name, applied=time.time()))
            ran.append(name)
        return ran


__all__ = ["MIGRATIONS", "applied", "migrate"]
