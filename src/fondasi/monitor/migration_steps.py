"""The log store's migrations, in order, each frozen as it was written.

A migration's DDL is spelled out inside it (a ``Table`` in its own ``MetaData``, or an op
below) and never read from ``fondasi.monitor.tables``: that module says what the schema is
today, and a migration that followed it would change meaning whenever it changed. To change
the schema, edit ``tables.py`` and append a migration here, for example::

    @migration
    def m009_requests_user(conn: Connection) -> None:
        add_column(conn, "requests", Column("user", String(200)))
        create_index(conn, "ix_requests_user_ts", "requests", "user", "ts")

``tests/test_migrations.py`` fails until the two agree. A migration is named ``m`` and its
three-digit place, then what it does. SQLite adds a NOT NULL column only with a
``server_default``. Python-side defaults (``default=``) live in ``tables.py``: they
are no part of the DDL.

m001–m008 create the tables as the first log store (and the drift and router commits)
defined them; their names are the ones earlier releases recorded, so a database those made
is already at m008. They keep ``checkfirst``: the earlier runner could leave a table
created but unrecorded on SQLite, and re-running one of them must heal that, not fail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.schema import CreateColumn
from sqlalchemy.types import NullType

Step = Callable[[Connection], None]

MIGRATIONS: list[tuple[str, Step]] = []


def migration(step: Step) -> Step:
    """Append a migration, named after its function (``m`` and its number first), to MIGRATIONS."""
    name = step.__name__
    expected = f"m{len(MIGRATIONS) + 1:03d}_"
    if not name.startswith(expected):  # the runner sorts applied names to list them in order
        raise ValueError(f"migration {name!r} should be named {expected}...")
    MIGRATIONS.append((name, step))
    return step


# ops ------------------------------------------------------------------------------


def create_table(conn: Connection, name: str, *parts: Any) -> None:
    """CREATE TABLE (with its indexes) from columns, constraints and indexes, unless it exists."""
    Table(name, MetaData(), *parts).create(conn, checkfirst=True)


def add_column(conn: Connection, table: str, column: Column[Any]) -> None:
    """ALTER TABLE ... ADD COLUMN, the column written as SQLAlchemy writes it for this database."""
    Table(table, MetaData(), column)  # gives the column the table its DDL is compiled for
    ddl = CreateColumn(column).compile(dialect=conn.dialect)
    quoted = conn.dialect.identifier_preparer.quote(table)
    conn.exec_driver_sql(f"ALTER TABLE {quoted} ADD COLUMN {ddl}")


def create_index(
    conn: Connection, name: str, table: str, *columns: str, unique: bool = False
) -> None:
    """CREATE INDEX on existing columns of an existing table."""
    bare = Table(table, MetaData(), *(Column(c, NullType()) for c in columns))
    Index(name, *(bare.c[c] for c in columns), unique=unique).create(conn)


# migrations -------------------------------------------------------------------------


@migration
def m001_requests(conn: Connection) -> None:
    create_table(
        conn,
        "requests",
        Column("id", String(64), primary_key=True),
        Column("ts", Float, nullable=False),
        Column("route", String(32), nullable=False),
        Column("key_id", String(32)),
        Column("model", String(200), nullable=False),
        Column("version", String(300)),
        Column("decision", Text),
        Column("status", Integer, nullable=False),
        Column("error", Text),
        Column("latency_ms", Float, nullable=False),
        Column("ttft_ms", Float),
        Column("prompt_tokens", Integer, nullable=False),
        Column("completion_tokens", Integer, nullable=False),
        Column("cost_usd", Float),
        Column("stream", Boolean, nullable=False),
        Column("prompt_text", Text),
        Column("response_text", Text),
        Column("guard_blocked", Boolean, nullable=False),
        Index("ix_requests_ts", "ts"),
        Index("ix_requests_model_ts", "model", "ts"),
    )


@migration
def m002_guard_events(conn: Connection) -> None:
    create_table(
        conn,
        "guard_events",
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("request_id", String(64), nullable=False),
        Column("ts", Float, nullable=False),
        Column("model", String(200), nullable=False),
        Column("stage", String(16), nullable=False),
        Column("filter", String(64), nullable=False),
        Column("type", String(64), nullable=False),
        Column("action", String(16), nullable=False),
        Column("score", Float),
        Column("start", Integer),
        Column("end", Integer),
        Index("ix_guard_events_ts", "ts"),
        Index("ix_guard_events_request", "request_id"),
    )


@migration
def m003_feedback(conn: Connection) -> None:
    create_table(
        conn,
        "feedback",
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("response_id", String(64), nullable=False),
        Column("ts", Float, nullable=False),
        Column("key_id", String(32)),
        Column("rating", Integer),
        Column("score", Float),
        Column("comment", Text),
        Column("correction", Text),
        Column("label", String(200)),
        Index("ix_feedback_response", "response_id"),
        Index("ix_feedback_ts", "ts"),
    )


@migration
def m004_api_keys(conn: Connection) -> None:
    create_table(
        conn,
        "api_keys",
        Column("id", String(32), primary_key=True),
        Column("name", String(100), nullable=False, unique=True),
        Column("hash", String(64), nullable=False, unique=True),
        Column("prefix", String(16), nullable=False),
        Column("created", Float, nullable=False),
        Column("revoked", Float),
        Column("rate_per_minute", Integer),
        Column("models", Text),
        Column("admin", Boolean, nullable=False),
    )


@migration
def m005_aliases(conn: Connection) -> None:
    create_table(
        conn,
        "aliases",
        Column("name", String(200), primary_key=True),
        Column("targets", Text, nullable=False),
        Column("updated", Float, nullable=False),
    )


@migration
def m006_alias_history(conn: Connection) -> None:
    create_table(
        conn,
        "alias_history",
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(200), nullable=False),
        Column("ts", Float, nullable=False),
        Column("action", String(16), nullable=False),
        Column("targets", Text),
        Index("ix_alias_history_name", "name"),
    )


@migration
def m007_routed_calls(conn: Connection) -> None:
    create_table(
        conn,
        "routed_calls",
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("ts", Float, nullable=False),
        Column("model", String(300), nullable=False),
        Column("provider", String(100)),
        Column("cost_usd", Float),
        Column("answered", Boolean, nullable=False),
        Column("decision", Text, nullable=False),
        Index("ix_routed_calls_provider_ts", "provider", "ts"),
    )


@migration
def m008_drift_embeddings(conn: Connection) -> None:
    create_table(
        conn,
        "drift_embeddings",
        Column("request_id", String(64), primary_key=True),
        Column("embedder", String(200), primary_key=True),
        Column("ts", Float, nullable=False),
        Column("vector", LargeBinary, nullable=False),
    )
