"""Log store migrations on a real SQLite file and a real PostgreSQL database.

The schema a database ends with is compared, as SQLAlchemy reflects it, with a database
``create_all`` made from ``fondasi.monitor.tables`` on the same engine: columns with their
types, nullability and server defaults, primary keys, indexes and unique constraints.
"""

from __future__ import annotations

import importlib
import pkgutil
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    inspect,
    select,
)
from sqlalchemy.exc import OperationalError, ProgrammingError

import fondasi.monitor
from fondasi.monitor import FeedbackRecord, GuardEventRecord, RequestRecord, Store, tables
from fondasi.monitor.migration_steps import (
    MIGRATIONS,
    Step,
    add_column,
    create_index,
    migration,
)
from fondasi.monitor.migrations import applied, migrate
from fondasi.monitor.store import make_engine

NAMES = [name for name, _ in MIGRATIONS]

# Tables may be defined beside the code that uses them (drift_cache): load every module.
for _module in pkgutil.iter_modules(fondasi.monitor.__path__):
    importlib.import_module(f"fondasi.monitor.{_module.name}")

NewEngine = Callable[[], Engine]


@pytest.fixture(params=["sqlite", "postgresql"])
def new_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NewEngine]:
    """Makes engines on new, empty databases of one kind; disposes of them afterwards."""
    made: list[Engine] = []

    def make() -> Engine:
        if request.param == "sqlite":
            url = str(tmp_path / f"{secrets.token_hex(4)}.db")
        else:
            url = request.getfixturevalue("cluster").create_database("m_" + secrets.token_hex(6))
        made.append(make_engine(url))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


def schema(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every table as the database describes it (column order aside: ADD COLUMN appends)."""
    with engine.connect() as conn:
        db = inspect(conn)
        return {
            name: {
                "columns": {
                    c["name"]: (
                        c["type"].compile(dialect=engine.dialect),
                        c["nullable"],
                        c.get("default"),
                    )
                    for c in db.get_columns(name)
                },
                "primary_key": db.get_pk_constraint(name)["constrained_columns"],
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                    for i in db.get_indexes(name)
                ),
                "unique": sorted(tuple(u["column_names"]) for u in db.get_unique_constraints(name)),
                "foreign_keys": sorted(
                    (tuple(f["constrained_columns"]), f["referred_table"])
                    for f in db.get_foreign_keys(name)
                ),
            }
            for name in sorted(db.get_table_names())
        }


def described(engine: Engine, metadata: MetaData = tables.metadata) -> dict[str, dict[str, Any]]:
    """The schema ``metadata`` describes, made on ``engine``'s (empty) database."""
    metadata.create_all(engine)
    return schema(engine)


def _value(column: Any, n: int) -> Any:
    kind = column.type.python_type
    if kind is str:
        return f"{column.name}-{n}"[: getattr(column.type, "length", None) or None]
    if kind is bytes:
        return bytes([n]) * 4
    if kind is bool:
        return n % 2 == 0
    return kind(n) + (0.5 if kind is float else 0)


def fill(engine: Engine, rows: int = 3) -> dict[str, set[tuple[Any, ...]]]:
    """Insert rows into every log table there is (as reflected now); their rows."""
    found: dict[str, set[tuple[Any, ...]]] = {}
    with engine.begin() as conn:
        for name in inspect(conn).get_table_names():
            if name == tables.migrations.name:
                continue
            table = Table(name, MetaData(), autoload_with=conn)
            generated = [c for c in table.primary_key.columns if c.type.python_type is int]
            given = [c for c in table.c if c not in generated]
            conn.execute(
                table.insert(), [{c.name: _value(c, n) for c in given} for n in range(rows)]
            )
            found[name] = {tuple(row) for row in conn.execute(select(table))}
    return found


def rows(engine: Engine, before: dict[str, set[tuple[Any, ...]]]) -> dict[str, set[Any]]:
    """The rows of the tables in ``before``, reading only the columns they had then."""
    with engine.connect() as conn:
        found: dict[str, set[Any]] = {}
        for name, old in before.items():
            table = Table(name, MetaData(), autoload_with=conn)
            width = len(next(iter(old))) if old else len(table.c)
            found[name] = {tuple(row) for row in conn.execute(select(*list(table.c)[:width]))}
        return found


# the schema ---------------------------------------------------------------------------


def test_the_migrations_make_exactly_the_schema_tables_py_describes(new_engine: NewEngine) -> None:
    migrated = new_engine()
    assert migrate(migrated) == NAMES
    got = schema(migrated)
    assert got == described(new_engine())
    db = inspect(migrated)
    assert set(got) == set(tables.metadata.tables)
    for table in tables.metadata.tables.values():
        columns = {c["name"]: c for c in db.get_columns(table.name)}
        assert set(columns) == set(table.c.keys()), table.name
        for column in table.c:
            reflected = columns[column.name]
            assert reflected["nullable"] == column.nullable, (table.name, column.name)
            assert reflected["type"].python_type is column.type.python_type, column.name
            length = getattr(column.type, "length", None)
            assert getattr(reflected["type"], "length", None) == length, column.name
        assert db.get_pk_constraint(table.name)["constrained_columns"] == [
            c.name for c in table.primary_key.columns
        ]


def _requests_user_and_priority(conn: Connection) -> None:
    add_column(conn, "requests", Column("user", String(200)))
    add_column(conn, "requests", Column("priority", Integer, nullable=False, server_default="0"))
    create_index(conn, "ix_requests_user_ts", "requests", "user", "ts")


def _with_user_and_priority() -> MetaData:
    copy = MetaData()
    for table in tables.metadata.sorted_tables:
        table.to_metadata(copy)
    requests = copy.tables["requests"]
    requests.append_column(Column("user", String(200)))
    requests.append_column(Column("priority", Integer, nullable=False, server_default="0"))
    Index("ix_requests_user_ts", requests.c.user, requests.c.ts)
    return copy


def test_a_column_in_tables_py_without_a_migration_is_caught(new_engine: NewEngine) -> None:
    migrated = new_engine()
    migrate(migrated)
    wanted = described(new_engine(), _with_user_and_priority())
    differences = {name for name in wanted if schema(migrated)[name] != wanted[name]}
    assert differences == {"requests"}
    # ... and its migration, written with the ops, makes the two agree (rows and all).
    before = fill(migrated)
    later = [*MIGRATIONS, ("m999_requests_user_and_priority", _requests_user_and_priority)]
    assert migrate(migrated, later) == ["m999_requests_user_and_priority"]
    assert schema(migrated) == wanted
    assert rows(migrated, before) == before
    with migrated.connect() as conn:
        priorities = conn.execute(select(Table("requests", MetaData(), autoload_with=conn)))
        assert {(row.user, row.priority) for row in priorities} == {(None, 0)}


# upgrades --------------------------------------------------------------------------------


@pytest.mark.parametrize("first", range(1, len(MIGRATIONS)))
def test_a_database_at_an_earlier_migration_upgrades_keeping_its_rows(
    new_engine: NewEngine, first: int
) -> None:
    old = new_engine()
    assert migrate(old, MIGRATIONS[:first]) == NAMES[:first]
    assert applied(old) == NAMES[:first]
    assert set(inspect(old).get_table_names()) != set(tables.metadata.tables)
    before = fill(old)
    assert len(before) == first and all(len(found) == 3 for found in before.values())

    assert migrate(old) == NAMES[first:]
    assert applied(old) == NAMES
    assert rows(old, before) == before
    assert schema(old) == described(new_engine())


def test_the_store_writes_and_reads_an_upgraded_database(new_engine: NewEngine) -> None:
    old = new_engine()
    migrate(old, MIGRATIONS[:1])
    fill(old)
    store = Store(old.url.render_as_string(hide_password=False))
    event = GuardEventRecord(stage="input", filter="pii", type="EMAIL", action="redact")
    request = RequestRecord(
        id="chatcmpl-new",
        ts=2_000_000.0,
        route="chat",
        model="m",
        status=200,
        latency_ms=1.0,
        guard_events=[event],
    )
    store.write([request, FeedbackRecord(response_id="chatcmpl-new", ts=2_000_001.0, rating=1)])
    assert store.count_requests() == 4
    found = store.request("chatcmpl-new")
    assert found is not None and [e.type for e in found.guard_events] == ["EMAIL"]
    store.close()


def test_a_database_the_earlier_runner_made_is_at_m008(new_engine: NewEngine) -> None:
    # Earlier releases recorded these names; renaming one would run it again on their files.
    assert NAMES[:8] == [
        "m001_requests",
        "m002_guard_events",
        "m003_feedback",
        "m004_api_keys",
        "m005_aliases",
        "m006_alias_history",
        "m007_routed_calls",
        "m008_drift_embeddings",
    ]
    # That runner created each table and recorded it in a plain transaction, no lock.
    old = new_engine()
    tables.migrations.create(old)
    for name, step in MIGRATIONS[:8]:
        with old.begin() as conn:
            step(conn)
            conn.execute(tables.migrations.insert().values(name=name, applied=1.0))
    before = fill(old)
    assert migrate(old) == NAMES[8:]
    assert rows(old, before) == before
    assert schema(old) == described(new_engine())


def test_a_table_created_but_not_recorded_is_recorded(new_engine: NewEngine) -> None:
    # The earlier runner on SQLite committed CREATE TABLE before the insert recording it.
    old = new_engine()
    migrate(old, MIGRATIONS[:1])
    with old.begin() as conn:
        dict(MIGRATIONS)["m002_guard_events"](conn)
    assert migrate(old) == NAMES[1:]
    assert schema(old) == described(new_engine())


# running again, together, and failing ------------------------------------------------------


def test_migrating_twice_changes_nothing(new_engine: NewEngine) -> None:
    engine = new_engine()
    assert migrate(engine) == NAMES
    before = fill(engine)
    before[tables.migrations.name] = rows(engine, {tables.migrations.name: set()})[
        tables.migrations.name
    ]
    shape = schema(engine)
    assert migrate(engine) == []
    assert migrate(engine, MIGRATIONS[:3]) == []
    assert rows(engine, before) == before  # the times migrations were recorded included
    assert schema(engine) == shape


def _once_only(conn: Connection) -> None:
    # ADD COLUMN fails the second time: a migration applied twice shows as an error.
    add_column(conn, "requests", Column("once", Integer))


def test_workers_starting_together_apply_each_migration_once(new_engine: NewEngine) -> None:
    first = new_engine()
    migrate(first, MIGRATIONS[:1])
    url = first.url.render_as_string(hide_password=False)
    steps = [*MIGRATIONS, ("m999_once", _once_only)]
    workers = 6
    start = threading.Barrier(workers)
    ran: list[list[str]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        engine = make_engine(url)
        try:
            start.wait()
            ran.append(migrate(engine, steps))
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(name for names in ran for name in names) == sorted([*NAMES[1:], "m999_once"])
    assert applied(first) == [*NAMES, "m999_once"]


def _half_done(conn: Connection) -> None:
    add_column(conn, "requests", Column("half", Integer))
    conn.exec_driver_sql("SELECT no_such_column FROM requests")


def test_a_failing_migration_leaves_the_database_as_it_was(new_engine: NewEngine) -> None:
    engine = new_engine()
    migrate(engine, MIGRATIONS[:2])
    before = fill(engine)
    shape = schema(engine)
    steps: Sequence[tuple[str, Step]] = [*MIGRATIONS, ("m999_half_done", _half_done)]
    with pytest.raises((OperationalError, ProgrammingError)):
        migrate(engine, steps)
    assert applied(engine) == NAMES[:2]
    assert schema(engine) == shape  # neither the later tables nor the half column
    assert rows(engine, before) == before


def test_migrations_are_numbered_in_order() -> None:
    assert [name[:5] for name in NAMES] == [f"m{n:03d}_" for n in range(1, len(NAMES) + 1)]

    def m001_out_of_place(conn: Connection) -> None:
        raise AssertionError("never run")

    with pytest.raises(ValueError, match=f"m{len(NAMES) + 1:03d}_"):
        migration(m001_out_of_place)
    assert [name for name, _ in MIGRATIONS] == NAMES
