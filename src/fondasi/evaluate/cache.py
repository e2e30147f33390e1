"""Per-example predictions on disk (SQLite), so an interrupted run resumes where it stopped.

The key is a hash of what decides a prediction: the model, the approach (shots, selection,
options, seed), the template's full content, the few-shot pool and the example itself. A
re-run computes only the examples whose key is new. Rows are committed batch by batch, so
a run killed mid-way keeps every finished batch. Failures are not cached: a re-run tries
them again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    key TEXT PRIMARY KEY,
    candidate TEXT NOT NULL,
    record TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(*parts: Any) -> str:
    """A stable hash of JSON-able parts."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class PredictionCache:
    """A SQLite file of predictions by key; safe to share between threads."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(SCHEMA)
            self._db.commit()

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The cached records among ``keys``."""
        if self._db is None:
            return {}
        wanted = list(keys)
        found: dict[str, dict[str, Any]] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, record FROM predictions WHERE key IN ({marks})", chunk
                )
                found.update((key, json.loads(record)) for key, record in rows)
        return found

    def put_many(self, candidate: str, records: Mapping[str, dict[str, Any]]) -> None:
        """Store successful records and commit at once."""
        if self._db is None or not records:
            return
        now = time.time()
        rows = [
            (key, candidate, json.dumps(record, ensure_ascii=False, default=str), now)
            for key, record in records.items()
            if record.get("error") is None
        ]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?)", rows)
            self._db.commit()

    def count(self) -> int:
        """How many predictions the file holds."""
        if self._db is None:
            return 0
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])

    def close(self) -> None:
        """Close the database file."""
        if self._db is not None:
            self._db.close()
            self._db = None
