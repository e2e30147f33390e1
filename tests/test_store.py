"""The log store on a real SQLite file: migrations, writes, the dashboard's queries."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from fondasi.errors import BadInputError, UnknownChoiceError
from fondasi.monitor import (
    AliasTarget,
    FeedbackRecord,
    GuardEventRecord,
    KeyStore,
    LogWriter,
    RequestRecord,
    Store,
    Versions,
)
from fondasi.monitor.migrations import MIGRATIONS, applied
from fondasi.monitor.queries import percentile
from fondasi.settings import Settings

from .serving import Postgres


def _request(n: int, model: str = "smollm2-135m-instruct", **extra: object) -> RequestRecord:
    fields: dict[str, object] = {
        "id": f"chatcmpl-{n}",
        "ts": 1_000_000.0 + n,
        "route": "chat",
        "model": model,
        "version": model,
        "status": 200,
        "latency_ms": float(10 * (n + 1)),
        "ttft_ms": 5.0,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.001,
    }
    fields.update(extra)
    return RequestRecord(**fields)  # type: ignore[arg-type]


def test_migrations_are_named_recorded_and_run_once(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    first = Store(str(path))
    assert applied(first.engine) == [name for name, _ in MIGRATIONS]
    first.close()
    again = Store(str(path))  # a second open applies nothing new
    assert applied(again.engine) == [name for name, _ in MIGRATIONS]
    again.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_default_store_is_a_sqlite_file_in_home(home: Path) -> None:
    store = Store.open(Settings.load())
    assert store.url == f"sqlite:///{home / 'fondasi.db'}"
    assert (home / "fondasi.db").is_file()
    store.close()


def test_bad_urls_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="unsupported database"):
        Store("mysql://nobody@127.0.0.1/x")


def test_requests_guard_events_and_feedback_round_trip(store: Store) -> None:
    event = GuardEventRecord(stage="input", filter="pii", type="EMAIL", action="redact", start=3)
    store.write(
        [
            _request(1, guard_events=[event], prompt_text='[{"role":"user","content":"hai"}]'),
            _request(2, model="e5", route="embeddings", status=429, error="rate_limited"),
            FeedbackRecord(response_id="chatcmpl-1", ts=1_000_010.0, rating=1, score=0.9),
        ]
    )
    assert store.count_requests() == 2
    assert store.has_request("chatcmpl-1")
    got = store.request("chatcmpl-1")
    assert got is not None
    assert got.guard_events == [event]
    assert [r.id for r in store.requests()] == ["chatcmpl-2", "chatcmpl-1"]
    assert [r.id for r in store.requests(errors_only=True)] == ["chatcmpl-2"]
    assert [r.id for r in store.requests(model="e5")] == ["chatcmpl-2"]
    feedback = store.feedback()
    assert feedback[0].model == "smollm2-135m-instruct"
    assert feedback[0].prompt_text is not None
    events = store.guard_events()
    assert [(e.request_id, e.type) for e in events] == [("chatcmpl-1", "EMAIL")]
    assert store.models() == ["e5", "smollm2-135m-instruct"]


def test_summary_and_timeseries(store: Store) -> None:
    store.write([_request(n) for n in range(100)] + [_request(100, status=500, error="boom")])
    store.write([FeedbackRecord(response_id="chatcmpl-3", ts=1.0, rating=-1, score=0.25)])
    (row,) = store.summary()
    assert row.requests == 101
    assert row.errors == 1
    assert row.latency_p50_ms == 500.0  # failures are left out of latency
    assert row.latency_p99_ms == 990.0
    assert (row.feedback_up, row.feedback_down, row.feedback_score) == (0, 1, 0.25)
    assert row.prompt_tokens == 1010
    buckets = store.timeseries(since=0, bucket_seconds=60)
    assert sum(b.requests for b in buckets) == 101
    assert buckets[0].start % 60 == 0
    assert store.summary(since=1_000_050.0)[0].requests == 51
    samples = store.samples("smollm2-135m-instruct", limit=5)
    assert [s.id for s in samples][:1] == ["chatcmpl-99"]  # the 500 is not a sample
    rated = store.samples("smollm2-135m-instruct", since=1_000_003.0, until=1_000_004.0)
    assert rated[0].rating == -1


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0], 100) == 2.0


def test_writer_drains_everything_on_close(store: Store) -> None:
    writer = LogWriter(store, max_batch=7, flush_interval=0.01)
    for n in range(300):
        writer.submit(_request(n))
    writer.close()
    assert store.count_requests() == 300
    assert writer.written == 300
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(_request(301))


def test_writer_flush_waits_for_the_database(store: Store) -> None:
    writer = LogWriter(store)
    writer.submit(_request(1))
    assert writer.flush(timeout=10)
    assert store.count_requests() == 1
    writer.close()


def test_keys_are_stored_hashed_and_revocable(store: Store, tmp_path: Path) -> None:
    keys = KeyStore(store)
    info, secret = keys.create("tim-cs", rate_per_minute=5, models=["smollm2-135m-instruct"])
    assert secret.startswith("fsk-")
    assert info.prefix == secret[:8]
    assert keys.verify(secret) == info
    assert keys.verify(secret + "x") is None
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT * FROM api_keys")).all()
    assert secret not in repr(stored)
    assert keys.count(active_only=True) == 1
    with pytest.raises(BadInputError, match="exists"):
        keys.create("tim-cs")
    with pytest.raises(BadInputError, match="bad key name"):
        keys.create("tim cs!")
    with pytest.raises(UnknownChoiceError, match="Did you mean: tim-cs"):
        keys.revoke("tim-sc")
    revoked = keys.revoke("tim-cs")
    assert revoked.revoked is not None
    assert keys.verify(secret) is None
    assert keys.count(active_only=True) == 0
    assert keys.count() == 1
    with pytest.raises(BadInputError, match="already revoked"):
        keys.revoke(info.id)


def test_aliases_canary_promote_and_rollback(store: Store) -> None:
    versions = Versions(store)
    versions.point("support-bot", "smollm2-135m-instruct")
    canary = versions.canary("support-bot", "tuned:runs/lora-7", 10)
    assert [(t.model, t.weight) for t in canary.targets] == [
        ("smollm2-135m-instruct", 90),
        ("tuned:runs/lora-7", 10),
    ]
    promoted = versions.promote("support-bot")
    assert promoted.targets == [AliasTarget(model="tuned:runs/lora-7", weight=100)]
    back = versions.rollback("support-bot")
    assert back is not None and len(back.targets) == 2  # the canary split again
    back = versions.rollback("support-bot")
    assert back is not None and back.targets[0].model == "smollm2-135m-instruct"
    with pytest.raises(BadInputError, match="no earlier version"):
        versions.rollback("support-bot")
    with pytest.raises(BadInputError, match="add up to 90"):
        versions.set("x", [{"model": "a", "weight": 90}])
    with pytest.raises(UnknownChoiceError, match="Did you mean: support-bot"):
        versions.get("suport-bot")
    versions.remove("support-bot")
    assert versions.all() == {}
    assert [c.action for c in versions.history("support-bot")][-1] == "remove"
    assert time.time() - versions.history("support-bot")[0].ts < 60


def test_a_server_logs_to_postgresql(
    cluster: Postgres, shared_settings: Settings, e5: object
) -> None:
    import httpx

    from .serving import running

    url = cluster.create_database("served")
    model = "multilingual-e5-small"
    with running(shared_settings, {model: e5}, models=[model], db=url) as server:
        statuses = [
            httpx.post(
                server.v1 + "/embeddings", json={"model": model, "input": text or ""}, timeout=30
            ).status_code
            for text in ["satu", "dua", "", "empat"]
        ]
    assert statuses == [200, 200, 400, 200]
    store = Store(url)  # after a clean shutdown everything is in PostgreSQL
    assert store.count_requests() == 4
    (summary,) = store.summary()
    assert (summary.requests, summary.errors) == (4, 1)
    store.close()


def _open_together(url: str, count: int = 4) -> tuple[list[Store], list[BaseException]]:
    import threading

    opened: list[Store] = []
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            opened.append(Store(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return opened, errors


def test_processes_opening_a_new_store_together_migrate_it_once(
    cluster: Postgres, tmp_path: Path
) -> None:
    for url in (str(tmp_path / "race.db"), cluster.create_database("race")):
        opened, errors = _open_together(url)
        assert not errors
        assert applied(opened[0].engine) == [name for name, _ in MIGRATIONS]
        for store in opened:
            store.close()
