"""Dynamic micro-batching: many small embedding requests become one batch.

A server answering many clients at once calls ``embed`` with one or two texts per
request; run one by one, the encoder works on tiny batches. ``MicroBatcher`` holds each
request for at most ``max_wait_ms`` (or until ``max_batch`` texts are waiting), embeds
everything waiting in one call, and hands each caller its own rows. The call runs in the
context (context variables) of the batch's first caller, so its trace span belongs to that
request's trace rather than starting one of its own.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fondasi.errors import BadInputError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

EmbedFn = Callable[[list[str]], "npt.NDArray[np.float32]"]


@dataclass
class _Request:
    texts: list[str]
    future: Future[npt.NDArray[np.float32]] = field(default_factory=Future)
    context: contextvars.Context = field(default_factory=contextvars.copy_context)


class MicroBatcher:
    """Collect concurrent ``embed`` calls into batches run by one worker thread."""

    def __init__(self, embed: EmbedFn, max_batch: int = 64, max_wait_ms: float = 5.0) -> None:
        if max_batch < 1 or max_wait_ms < 0:
            raise BadInputError("max_batch must be >= 1 and max_wait_ms >= 0")
        self._embed = embed
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self._queue: list[_Request] = []
        self._ready = threading.Condition()
        self._closed = False
        self.batches = 0  # how many calls reached the model, for monitoring
        self._worker = threading.Thread(target=self._run, name="micro-batcher", daemon=True)
        self._worker.start()

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Rows for ``texts``, computed together with whatever else is waiting."""
        if not texts:
            raise BadInputError("nothing to embed: the list of texts is empty")
        request = _Request(list(texts))
        with self._ready:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._queue.append(request)
            self._ready.notify()
        return request.future.result()

    def close(self) -> None:
        """Finish what is queued, then stop the worker."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._worker.join()

    def _take(self) -> list[_Request]:
        """Wait for work, then up to ``max_wait`` more for the batch to fill."""
        with self._ready:
            while not self._queue and not self._closed:
                self._ready.wait()
            if not self._queue:
                return []
            waiting = sum(len(r.texts) for r in self._queue)
            if waiting < self.max_batch and not self._closed:
                self._ready.wait_for(
                    lambda: sum(len(r.texts) for r in self._queue) >= self.max_batch,
                    timeout=self.max_wait,
                )
            taken: list[_Request] = []
            size = 0
            # Whole requests only; one oversized request still goes alone.
            while self._queue and (not taken or size + len(self._queue[0].texts) <= self.max_batch):
                request = self._queue.pop(0)
                taken.append(request)
                size += len(request.texts)
            return taken

    def _run(self) -> None:
        while True:
            taken = self._take()
            if not taken:
                return
            texts = [text for request in taken for text in request.texts]
            try:
                rows = taken[0].context.run(self._embed, texts)
            except BaseException as exc:  # every waiting caller gets the error
                for request in taken:
                    request.future.set_exception(exc)
                continue
            self.batches += 1
            start = 0
            for request in taken:
                request.future.set_result(rows[start : start + len(request.texts)])
                start += len(request.texts)
