"""Model calls never block the event loop.

``run`` awaits a blocking call on a worker thread with a timeout (504 when it passes).
Generation streams come from the model handles' async API (``astream``: a hosted API's
async client on the loop, a local model on a worker thread of ``fondasi.models.aio``);
``within`` holds such a stream to the timeout and closes it when the client goes away,
which ends generation in the backends.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fondasi.server.errors import APIError

T = TypeVar("T")


def _timeout(seconds: float) -> APIError:
    return APIError(504, f"the model took longer than {seconds:g} s", "timeout_error", "timeout")


async def within(items: AsyncIterator[T], timeout: float | None) -> AsyncGenerator[T]:
    """The items of an async stream, as long as it ends within ``timeout`` (504 if not);
    closed when the reader leaves, which ends the model's generation."""
    # One deadline on the loop's clock, armed around each wait (no yield inside it): unlike
    # wait_for, it makes no task per item.
    deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
    try:
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    item = await anext(items)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise _timeout(timeout or 0) from None
            yield item
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()


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

    def close(self) -> None:
        """Wait for running calls, then stop the threads."""
        self.pool.shutdown(wait=True)
        self.waiters.shutdown(wait=True)
