"""A background writer: the server hands records over and never waits for the database.

Records queue in memory; one thread wakes every ``flush_interval`` and inserts everything
waiting in one transaction (so a burst of 500 answers is one commit, not 500). Handing a
record over is an append to a deque: no lock, and no waking the writer thread for each
request, which under load cost the server's event loop more than the insert itself.
``close`` drains the queue before returning, so a clean shutdown loses nothing. A database
failure is retried with back-off; records are only dropped (and counted) if the queue
would grow past ``max_pending``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
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
        self._queue: deque[Record] = deque()
        self._in_flight = 0  # records taken from the queue and not yet written
        self._drained = threading.Condition()  # flush() waits on it
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="fondasi-log-writer", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Records waiting to be written."""
        return len(self._queue) + self._in_flight

    def submit(self, record: Record) -> None:
        """Queue a record; returns at once."""
        if self._closed:
            raise RuntimeError("the log writer is closed")
        if len(self._queue) >= self.max_pending:
            self.dropped += 1
            log.error("log queue full (%d records): dropping one", self.max_pending)
            return
        self._queue.append(record)  # deque.append is atomic: callers on any thread

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything submitted so far is written; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._drained:
            while self.pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._drained.wait(min(remaining, self.flush_interval))
        return True

    def close(self) -> None:
        """Write everything queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self.flush_interval)
            while self._queue:
                # Counted in flight before leaving the queue: flush() never sees neither.
                self._in_flight = count = min(len(self._queue), self.max_batch)
                batch = [self._queue.popleft() for _ in range(count)]
                try:
                    self._insert(batch)
                finally:
                    self._in_flight = 0
            with self._drained:
                self._drained.notify_all()
            if stopping:
                return

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
