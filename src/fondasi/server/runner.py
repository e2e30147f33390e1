"""Model calls run on worker threads, never on the event loop; streams cross over a queue.

``run`` awaits a blocking call with a timeout (504 when it passes). ``stream`` iterates a
blocking iterator on a worker thread and hands its items to the event loop as they come; if
the client goes away, the worker stops at the next item and closes the iterator (which ends
generation in the backends).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fondasi.server.errors import APIError

T = TypeVar("T")


def _timeout(seconds: float) -> APIError:
    return APIError(504, f"the model took longer than {seconds:g} s", "timeout_error", "timeout")


class Runner:
    """Worker threads for model calls (and more, cheaper ones for batch waits)."""

    def __init__(self, workers: int, waiters: int) -> None:
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="fondasi-model")
        # Embedding requests mostly wait on a micro-batch; they get their own threads so
        # a burst of them can fill one batch instead of queueing behind generations.
        self.waiters = ThreadPoolExecutor(waiters, thread_name_prefix="fondasi-batch-wait")

    async def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        timeout: float | None = None,
        waiting: bool = False,
    ) -> T:
        """``fn(*args)`` on a worker thread, with the caller's context variables."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        call = functools.partial(context.run, fn, *args)
        future = loop.run_in_executor(self.waiters if waiting else self.pool, call)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise _timeout(timeout or 0) from None

    async def stream(
        self, make: Callable[[], Iterator[T]], timeout: float | None = None
    ) -> AsyncGenerator[T]:
        """Items of ``make()`` as a worker thread produces them."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()
        context = contextvars.copy_context()

        def put(kind: str, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
            except RuntimeError:  # the loop closed: nobody is listening any more
                stop.set()

        def work() -> None:
            iterator: Iterator[T] | None = None
            try:
                iterator = make()
                for item in iterator:
                    if stop.is_set():
                        break
                    put("item", item)
                put("end", None)
            except BaseException as exc:  # handed to the event loop, raised there
                put("error", exc)
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()

        loop.run_in_executor(self.pool, context.run, work)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                left = None if deadline is None else max(deadline - time.monotonic(), 0)
                try:
                    kind, value = await asyncio.wait_for(queue.get(), left)
                except TimeoutError:
                    raise _timeout(timeout or 0) from None
                if kind == "end":
                    return
                if kind == "error":
                    raise value
                yield value
        finally:
            stop.set()

    def close(self) -> None:
        """Wait for running calls, then stop the threads."""
        self.pool.shutdown(wait=True)
        self.waiters.shutdown(wait=True)
