"""A background writer: the server hands records over and never waits for the database.

Records queue in memory; one thread inserts everything waiting in one transaction (so a
burst of 500 answers is one commit, not 500). ``close`` drains the queue before returning,
so a clean shutdown loses nothing. A database failure is retried with back-off; records are
only dropped (and counted) if the queue would grow past ``max_pending``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from fondasi.monitor.records import FeedbackRecord, RequestRecord
from fondasi.monitor.store import Store

log = logging.getLogger(__name__)
Record = RequestRecord | FeedbackRecord


class LogWriter:
    """Write records to a ``Store`` from one background thread, in batches."""

    def __init__(
        self,
        store: Store,
        *,
        max_batch: int = 500,
        flush_interval: float = 0.05,
        max_pending: int = 200_000,
        on_written: Callable[[list[Record]], None] | None = None,
    ) -> None:
        self.store = store
        self.max_batch = max_batch
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.on_written = on_written
        self.written = 0
        self.dropped = 0
        self.failures = 0
        self._queue: queue.Queue[Record | None] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="fondasi-log-writer", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Records waiting to be written."""
        return self._queue.qsize()

    def submit(self, record: Record) -> None:
        """Queue a record; returns at once."""
        if self._closed:
            raise RuntimeError("the log writer is closed")
        if self._queue.qsize() >= self.max_pending:
            self.dropped += 1
            log.error("log queue full (%d records): dropping one", self.max_pending)
            return
        self._queue.put(record)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything submitted so far is written; False on timeout."""
        deadline = time.monotonic() + timeout
        done = self._queue.all_tasks_done
        with done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                done.wait(remaining)
        return True

    def close(self) -> None:
        """Write everything queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()

    def _take(self) -> tuple[list[Record], bool]:
        first = self._queue.get()
        if first is None:
            self._queue.task_done()
            return [], True
        batch: list[Record] = [first]
        deadline = time.monotonic() + self.flush_interval
        stop = False
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                break
            if item is None:
                self._queue.task_done()
                stop = True
                break
            batch.append(item)
        return batch, stop

    def _run(self) -> None:
        while True:
            batch, stop = self._take()
            if batch:
                self._write(batch)
            if stop:
                # close() put the sentinel last: anything still queued came before it.
                rest: list[Record] = []
                while not self._queue.empty():
                    item = self._queue.get()
                    if item is None:
                        self._queue.task_done()
                    else:
                        rest.append(item)
                if rest:
                    self._write(rest)
                return

    def _write(self, batch: list[Record]) -> None:
        try:
            self._insert(batch)
        finally:
            for _ in batch:
                self._queue.task_done()

    def _insert(self, batch: list[Record]) -> None:
        delay = 0.05
        for attempt in range(8):
            try:
                self.store.write(batch)
            except Exception as exc:  # the database is down or locked: retry, then give up
                self.failures += 1
                log.warning("log write failed (attempt %d): %s", attempt + 1, exc)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            self.written += len(batch)
            if self.on_written is not None:
                self.on_written(batch)
            return
        self.dropped += len(batch)
        log.error("gave up writing %d log records", len(batch))
