"""Aggregations over the log store, portable between SQLite and PostgreSQL.

Counts and sums run in SQL; latency percentiles are taken in Python from the one column
they need (SQLite has no percentile function), nearest-rank.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Float,
    Integer,
    Table,
    and_,
    case,
    cast,
    func,
    or_,
    select,
)

from fondasi.monitor import tables
from fondasi.monitor.records import (
    Bucket,
    FeedbackRow,
    GuardEventRow,
    ModelSummary,
    Sample,
)

R = tables.requests
F = tables.feedback
G = tables.guard_events
# A failure: an error status, or a stream that broke after its 200 was sent.
FAILED = or_(R.c.status >= 400, R.c.error.is_not(None))


def window(
    query: Any,
    table: Table,
    since: float | None,
    until: float | None,
    model: str | None,
) -> Any:
    """Restrict a query to a time window and a model name."""
    if since is not None:
        query = query.where(table.c.ts >= since)
    if until is not None:
        query = query.where(table.c.ts < until)
    if model is not None:
        query = query.where(table.c.model == model)
    return query


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of ``values`` (q in 0..100); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def events_for(conn: Connection, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Guard events of the given requests, by request id."""
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
        chunk = ids[start : start + 500]
        query = select(G).where(G.c.request_id.in_(chunk)).order_by(G.c.id)
        for row in conn.execute(query):
            data = dict(row._mapping)
            found[data.pop("request_id")].append(
                {k: v for k, v in data.items() if k not in {"id", "ts", "model"}}
            )
    return found


def timeseries(
    conn: Connection, since: float, until: float | None, width: int, model: str | None
) -> list[Bucket]:
    """Per model per bucket of ``width`` seconds."""
    start = cast(func.floor(R.c.ts / width), Integer) * width
    totals = window(
        select(
            start.label("start"),
            R.c.model,
            func.count().label("requests"),
            func.sum(case((FAILED, 1), else_=0)).label("errors"),
            func.sum(case((R.c.status == 429, 1), else_=0)).label("rate_limited"),
            func.coalesce(func.sum(R.c.prompt_tokens), 0).label("prompt_tokens"),
            func.coalesce(func.sum(R.c.completion_tokens), 0).label("completion_tokens"),
            func.coalesce(func.sum(cast(R.c.cost_usd, Float)), 0.0).label("cost_usd"),
        ),
        R,
        since,
        until,
        model,
    ).group_by(start, R.c.model)
    timings = window(
        select(start.label("start"), R.c.model, R.c.latency_ms, R.c.ttft_ms), R, since, until, model
    ).where(R.c.status < 400)
    latency: dict[tuple[int, str], list[float]] = defaultdict(list)
    ttft: dict[tuple[int, str], list[float]] = defaultdict(list)
    for row in conn.execute(timings):
        latency[(int(row.start), row.model)].append(row.latency_ms)
        if row.ttft_ms is not None:
            ttft[(int(row.start), row.model)].append(row.ttft_ms)
    buckets = []
    for row in conn.execute(totals):
        key = (int(row.start), row.model)
        buckets.append(
            Bucket(
                start=float(row.start),
                model=row.model,
                requests=int(row.requests),
                errors=int(row.errors or 0),
                rate_limited=int(row.rate_limited or 0),
                prompt_tokens=int(row.prompt_tokens),
                completion_tokens=int(row.completion_tokens),
                cost_usd=float(row.cost_usd),
                latency_p50_ms=percentile(latency[key], 50),
                latency_p95_ms=percentile(latency[key], 95),
                latency_p99_ms=percentile(latency[key], 99),
                ttft_p50_ms=percentile(ttft[key], 50),
            )
        )
    return sorted(buckets, key=lambda b: (b.start, b.model))


def summary(
    conn: Connection, since: float | None, until: float | None, model: str | None
) -> list[ModelSummary]:
    """Per model over the window."""
    totals = window(
        select(
            R.c.model,
            func.count().label("requests"),
            func.sum(case((FAILED, 1), else_=0)).label("errors"),
            func.coalesce(func.sum(R.c.prompt_tokens), 0).label("prompt_tokens"),
            func.coalesce(func.sum(R.c.completion_tokens), 0).label("completion_tokens"),
            func.coalesce(func.sum(cast(R.c.cost_usd, Float)), 0.0).label("cost_usd"),
            func.sum(case((R.c.guard_blocked, 1), else_=0)).label("blocked"),
        ),
        R,
        since,
        until,
        model,
    ).group_by(R.c.model)
    per_model: dict[str, dict[str, Any]] = {
        row.model: dict(row._mapping) for row in conn.execute(totals)
    }
    latency: dict[str, list[float]] = defaultdict(list)
    ttft: dict[str, list[float]] = defaultdict(list)
    versions: dict[str, set[str]] = defaultdict(set)
    timings = window(
        select(R.c.model, R.c.version, R.c.latency_ms, R.c.ttft_ms, R.c.status),
        R,
        since,
        until,
        model,
    )
    for row in conn.execute(timings):
        if row.version:
            versions[row.model].add(row.version)
        if row.status < 400:
            latency[row.model].append(row.latency_ms)
            if row.ttft_ms is not None:
                ttft[row.model].append(row.ttft_ms)
    rated = window(
        select(
            R.c.model,
            func.sum(case((F.c.rating > 0, 1), else_=0)).label("up"),
            func.sum(case((F.c.rating < 0, 1), else_=0)).label("down"),
            func.avg(F.c.score).label("score"),
        ).select_from(F.join(R, F.c.response_id == R.c.id)),
        R,
        since,
        until,
        model,
    ).group_by(R.c.model)
    feedback = {row.model: row for row in conn.execute(rated)}
    guarded = window(
        select(G.c.model, func.count().label("events")), G, since, until, model
    ).group_by(G.c.model)
    events = {row.model: int(row.events) for row in conn.execute(guarded)}
    out = []
    for name, totals in sorted(per_model.items()):
        votes = feedback.get(name)
        out.append(
            ModelSummary(
                model=name,
                versions=sorted(versions[name]),
                requests=int(totals["requests"]),
                errors=int(totals["errors"] or 0),
                error_rate=int(totals["errors"] or 0) / max(int(totals["requests"]), 1),
                latency_p50_ms=percentile(latency[name], 50),
                latency_p95_ms=percentile(latency[name], 95),
                latency_p99_ms=percentile(latency[name], 99),
                ttft_p50_ms=percentile(ttft[name], 50),
                prompt_tokens=int(totals["prompt_tokens"]),
                completion_tokens=int(totals["completion_tokens"]),
                cost_usd=float(totals["cost_usd"]),
                feedback_up=int(votes.up or 0) if votes else 0,
                feedback_down=int(votes.down or 0) if votes else 0,
                feedback_score=float(votes.score) if votes and votes.score is not None else None,
                guard_events=events.get(name, 0),
                guard_blocked=int(totals["blocked"] or 0),
            )
        )
    return out


def feedback(
    conn: Connection, since: float | None, until: float | None, model: str | None, limit: int
) -> list[FeedbackRow]:
    """Feedback joined with its request, newest first."""
    query = select(
        F.c.response_id,
        F.c.ts,
        F.c.key_id,
        F.c.rating,
        F.c.score,
        F.c.comment,
        F.c.correction,
        F.c.label,
        R.c.model,
        R.c.version,
        R.c.route,
        R.c.prompt_text,
        R.c.response_text,
    ).select_from(F.outerjoin(R, F.c.response_id == R.c.id))
    query = window(query, F, since, until, None)
    if model is not None:
        query = query.where(R.c.model == model)
    query = query.order_by(F.c.ts.desc(), F.c.id.desc()).limit(limit)
    return [FeedbackRow(**row._mapping) for row in conn.execute(query)]


def guard_events(
    conn: Connection, since: float | None, until: float | None, model: str | None, limit: int
) -> list[GuardEventRow]:
    """Guard findings, newest first."""
    query = window(select(G), G, since, until, model).order_by(G.c.ts.desc(), G.c.id.desc())
    rows = conn.execute(query.limit(limit))
    return [GuardEventRow(**{k: v for k, v in row._mapping.items() if k != "id"}) for row in rows]


def samples(
    conn: Connection, model: str, since: float | None, until: float | None, limit: int
) -> list[Sample]:
    """Answered requests of a model, newest first, with the latest feedback on each."""
    latest = (
        select(F.c.response_id, func.max(F.c.id).label("last")).group_by(F.c.response_id).subquery()
    )
    query = (
        select(
            R.c.id,
            R.c.ts,
            R.c.model,
            R.c.version,
            R.c.status,
            R.c.prompt_text,
            R.c.response_text,
            R.c.prompt_tokens,
            R.c.completion_tokens,
            R.c.guard_blocked,
            F.c.rating,
            F.c.score,
        )
        .select_from(
            R.outerjoin(latest, latest.c.response_id == R.c.id).outerjoin(
                F, and_(F.c.id == latest.c.last)
            )
        )
        .where(or_(R.c.status < 400, R.c.guard_blocked))
    )
    query = window(query, R, since, until, model).order_by(R.c.ts.desc()).limit(limit)
    return [Sample(**row._mapping) for row in conn.execute(query)]
