"""The log store: every request, its guard events, feedback, keys and aliases, via SQLAlchemy.

A SQLite file in ``FONDASI_HOME`` by default (WAL, so readers never wait for the server's
writer), PostgreSQL by URL (``postgresql://user@host/db``). ``Store`` is the one way in:
the server writes through ``LogWriter``; the CLI and the dashboard read with the query
methods below (see ``fondasi.monitor.queries`` for the aggregations).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from fondasi.errors import BadInputError, MissingExtraError
from fondasi.monitor import queries, tables
from fondasi.monitor.migrations import migrate
from fondasi.monitor.records import (
    Bucket,
    FeedbackRecord,
    FeedbackRow,
    GuardEventRecord,
    GuardEventRow,
    ModelSummary,
    RequestRecord,
    Sample,
)
from fondasi.settings import Settings

MAX_LIMIT = 100_000


def normalise_url(url: str) -> str:
    """A SQLAlchemy URL: a bare path becomes a SQLite file; postgresql uses psycopg 3."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: the dashboard and CLI read while the server writes. synchronous=NORMAL keeps
    # every committed transaction through a process kill (only power loss can cost the
    # last commits), at a fraction of FULL's fsyncs.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the pragmas and pool settings the store relies on."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise BadInputError(f"not a database URL: {url!r} ({exc})") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        try:
            return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
        except ModuleNotFoundError as exc:
            raise MissingExtraError(
                f"PostgreSQL needs psycopg ({exc.name} is missing): pip install 'fondasi[serve]'"
            ) from None
    raise BadInputError(f"unsupported database {backend!r}: use sqlite or postgresql")


class Store:
    """One database of requests, guard events, feedback, API keys and model aliases."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url)
        migrate(self.engine)

    @classmethod
    def open(cls, settings: Settings, url: str | None = None) -> Store:
        """The store at ``url``, else the settings' default SQLite file."""
        return cls(url or settings.database_url)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    # writes -----------------------------------------------------------------------

    def write(self, records: Sequence[RequestRecord | FeedbackRecord]) -> None:
        """Insert requests (with their guard events) and feedback in one transaction."""
        requests = [r for r in records if isinstance(r, RequestRecord)]
        feedback = [r for r in records if isinstance(r, FeedbackRecord)]
        events = [
            {**e.model_dump(), "request_id": r.id, "ts": r.ts, "model": r.model}
            for r in requests
            for e in r.guard_events
        ]
        with self.engine.begin() as conn:
            if requests:
                rows = [r.model_dump(exclude={"guard_events"}) for r in requests]
                conn.execute(insert(tables.requests), rows)
            if events:
                conn.execute(insert(tables.guard_events), events)
            if feedback:
                conn.execute(insert(tables.feedback), [f.model_dump() for f in feedback])

    # reads ------------------------------------------------------------------------

    def count_requests(self, since: float | None = None, model: str | None = None) -> int:
        """How many requests are logged (since a time, for a model)."""
        query = select(func.count()).select_from(tables.requests)
        query = queries.window(query, tables.requests, since, None, model)
        with self.engine.connect() as conn:
            return int(conn.scalar(query) or 0)

    def has_request(self, request_id: str) -> bool:
        """Whether a response id is logged."""
        query = select(tables.requests.c.id).where(tables.requests.c.id == request_id)
        with self.engine.connect() as conn:
            return conn.scalar(query) is not None

    def request(self, request_id: str) -> RequestRecord | None:
        """One logged request with its guard events, or None."""
        found = self.requests(ids=[request_id], limit=1)
        return found[0] if found else None

    def requests(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        model: str | None = None,
        key_id: str | None = None,
        errors_only: bool = False,
        ids: Iterable[str] | None = None,
        limit: int = 100,
        offset: int = 0,
        oldest_first: bool = False,
    ) -> list[RequestRecord]:
        """Logged requests, newest first, with their guard events."""
        t = tables.requests
        query = queries.window(select(t), t, since, until, model)
        if key_id is not None:
            query = query.where(t.c.key_id == key_id)
        if errors_only:
            query = query.where(t.c.status >= 400)
        if ids is not None:
            query = query.where(t.c.id.in_(list(ids)))
        order = t.c.ts.asc() if oldest_first else t.c.ts.desc()
        query = query.order_by(order).limit(min(limit, MAX_LIMIT)).offset(offset)
        with self.engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
            events = queries.events_for(conn, [row["id"] for row in rows])
        return [
            RequestRecord(**row, guard_events=[GuardEventRecord(**e) for e in events[row["id"]]])
            for row in rows
        ]

    def timeseries(
        self,
        *,
        since: float,
        until: float | None = None,
        bucket_seconds: int = 60,
        model: str | None = None,
    ) -> list[Bucket]:
        """Requests, errors, tokens, cost and latency percentiles per model per bucket."""
        if bucket_seconds < 1:
            raise BadInputError("bucket_seconds must be at least 1")
        with self.engine.connect() as conn:
            return queries.timeseries(conn, since, until, bucket_seconds, model)

    def summary(
        self, *, since: float | None = None, until: float | None = None, model: str | None = None
    ) -> list[ModelSummary]:
        """Per model over the window: volume, latency, tokens, cost, errors, feedback, guard."""
        with self.engine.connect() as conn:
            return queries.summary(conn, since, until, model)

    def feedback(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        model: str | None = None,
        limit: int = 100,
    ) -> list[FeedbackRow]:
        """Feedback, newest first, joined with the request it rates."""
        with self.engine.connect() as conn:
            return queries.feedback(conn, since, until, model, min(limit, MAX_LIMIT))

    def guard_events(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        model: str | None = None,
        limit: int = 100,
    ) -> list[GuardEventRow]:
        """Guard findings, newest first."""
        with self.engine.connect() as conn:
            return queries.guard_events(conn, since, until, model, min(limit, MAX_LIMIT))

    def samples(
        self,
        model: str,
        *,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[Sample]:
        """Answered requests of one model with texts, sizes, guard and feedback (for drift)."""
        with self.engine.connect() as conn:
            return queries.samples(conn, model, since, until, min(limit, MAX_LIMIT))

    def models(self, since: float | None = None) -> list[str]:
        """Model names with logged requests (since a time)."""
        t = tables.requests
        query = queries.window(select(t.c.model).distinct(), t, since, None, None)
        with self.engine.connect() as conn:
            return sorted(conn.scalars(query))


__all__ = ["Store", "make_engine", "normalise_url"]
