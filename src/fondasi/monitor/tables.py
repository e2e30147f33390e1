"""The log store's tables (SQLAlchemy Core) as they are today, for the queries.

The migrations (``fondasi.monitor.migration_steps``) do not read these: a change here needs a
new migration there, and ``tests/test_migrations.py`` checks that the two agree.

Times are UTC epoch seconds (floats): bucketing by ``floor(ts / width)`` then works the same
on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

migrations = Table(
    "_fondasi_migrations",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("applied", Float, nullable=False),
)

requests = Table(
    "requests",
    metadata,
    Column("id", String(64), primary_key=True),  # the response id clients see
    Column("ts", Float, nullable=False),  # when the request arrived
    Column("route", String(32), nullable=False),  # chat, completions, embeddings, images
    Column("key_id", String(32)),  # None when the server runs without keys
    Column("model", String(200), nullable=False),  # the name the client asked for
    Column("version", String(300)),  # the model that answered (an alias resolved)
    Column("decision", Text),  # alias split, fallback and privacy routing, in words
    Column("status", Integer, nullable=False),  # HTTP status sent
    Column("error", Text),  # error type and message for failed requests
    Column("latency_ms", Float, nullable=False),
    Column("ttft_ms", Float),  # time to first token (streams and generations)
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("cost_usd", Float),
    Column("stream", Boolean, nullable=False, default=False),
    Column("prompt_text", Text),  # JSON messages or text; only when text logging is on
    Column("response_text", Text),
    Column("guard_blocked", Boolean, nullable=False, default=False),
    Index("ix_requests_ts", "ts"),
    Index("ix_requests_model_ts", "model", "ts"),
)

guard_events = Table(
    "guard_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("ts", Float, nullable=False),
    Column("model", String(200), nullable=False),
    Column("stage", String(16), nullable=False),  # input or output
    Column("filter", String(64), nullable=False),
    Column("type", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("score", Float),
    Column("start", Integer),
    Column("end", Integer),
    Index("ix_guard_events_ts", "ts"),
    Index("ix_guard_events_request", "request_id"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("response_id", String(64), nullable=False),
    Column("ts", Float, nullable=False),
    Column("key_id", String(32)),
    Column("rating", Integer),  # +1 thumbs up, -1 thumbs down
    Column("score", Float),  # 0..1, when a client rates on a scale
    Column("comment", Text),
    Column("correction", Text),  # a better answer, exported as the completion
    Column("label", String(200)),  # the right class, for classification data
    Index("ix_feedback_response", "response_id"),
    Index("ix_feedback_ts", "ts"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("hash", String(64), nullable=False, unique=True),  # sha256 of the secret
    Column("prefix", String(16), nullable=False),  # first characters, to recognise a key
    Column("created", Float, nullable=False),
    Column("revoked", Float),
    Column("rate_per_minute", Integer),  # None: no limit
    Column("models", Text),  # JSON list of allowed model names; None: all
    Column("admin", Boolean, nullable=False, default=False),
)

aliases = Table(
    "aliases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("targets", Text, nullable=False),  # JSON [{"model": ..., "weight": ...}]
    Column("updated", Float, nullable=False),
)

alias_history = Table(
    "alias_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("ts", Float, nullable=False),
    Column("action", String(16), nullable=False),  # set, canary, promote, rollback, remove
    Column("targets", Text),  # the targets after the change; None after remove
    Index("ix_alias_history_name", "name"),
)

routed_calls = Table(
    "routed_calls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("model", String(300), nullable=False),  # the model that answered, or was skipped
    Column("provider", String(100)),  # None for local models
    Column("cost_usd", Float),
    Column("answered", Boolean, nullable=False),
    Column("decision", Text, nullable=False),  # every model tried and why, in words
    Index("ix_routed_calls_provider_ts", "provider", "ts"),
)
