"""Resilience for hosted APIs, in one place: retries, backoff, Retry-After, circuit breakers.

Provider adapters only translate their SDK's failures into ``ProviderError`` (with the
HTTP status, whether a retry can help, and the server's Retry-After). ``Resilient`` wraps
any remote backend: it retries retryable failures with exponential backoff and jitter,
honours Retry-After, and opens a circuit per endpoint after repeated failures so a dead
provider fails fast. A stream is retried only before its first chunk; a failure after
that ends the stream with a clear error, never a hang.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from fondasi.backends.base import AsyncEmbedder, AsyncTextGenerator, Purpose
from fondasi.errors import FondasiError
from fondasi.types import Chunk, GenerateOptions, Label

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


class ProviderError(FondasiError):
    """A hosted API failed; says which provider, why, and whether retrying can help."""

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.provider = provider
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        code = f" (HTTP {status})" if status else ""
        super().__init__(f"{provider}{code}: {message}")


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """The wait a server asks for: retry-after-ms, else retry-after in seconds or as a date."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return float(headers.get(name, "")) / scale
        except ValueError:
            continue
    try:
        when = email.utils.parsedate_to_datetime(headers.get("retry-after", ""))
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait between attempts."""

    max_retries: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    jitter: float = 0.25  # +-25% so that many clients do not retry in lockstep

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay_s)
        backoff = min(self.base_delay_s * 2.0**attempt, self.max_delay_s)
        return float(backoff * random.uniform(1 - self.jitter, 1 + self.jitter))


@dataclass
class CircuitBreaker:
    """Stops calling an endpoint after ``threshold`` failures in a row, for ``reset_s``."""

    threshold: int = 5
    reset_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def state(self) -> str:
        """closed (calls flow), open (calls refused) or half-open (one trial allowed)."""
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.clock() - self.opened_at >= self.reset_s else "open"

    def check(self, endpoint: str) -> None:
        """Refuse the call while the circuit is open."""
        with self._lock:
            if self.state == "open" and self.opened_at is not None:
                wait = self.reset_s - (self.clock() - self.opened_at)
                raise ProviderError(
                    endpoint,
                    f"circuit open after {self.failures} failures in a row; "
                    f"trying again in {wait:.0f} s",
                    retryable=False,
                )

    def record(self, ok: bool) -> None:
        """Count a success (closes the circuit) or a failure (may open it)."""
        with self._lock:
            if ok:
                self.failures, self.opened_at = 0, None
                return
            self.failures += 1
            if self.failures >= self.threshold or self.state == "half-open":
                self.opened_at = self.clock()


class Resilient:
    """Wraps a remote backend; same capabilities, with retries and a circuit breaker."""

    def __init__(
        self,
        backend: Any,
        endpoint: str,
        policy: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.backend = backend
        self.endpoint = endpoint
        self.policy = policy or RetryPolicy()
        self.breaker = breaker or CircuitBreaker()
        self.sleep = sleep
        self.capabilities = backend.capabilities
        self.attempts = 0  # calls that reached the provider, for tests and monitoring

    @classmethod
    def around(cls, backend: Any, endpoint: str, policy: RetryPolicy | None = None) -> Resilient:
        """The wrapper for ``backend``: with the async stream when the backend has one."""
        kind = cls
        if isinstance(backend, AsyncTextGenerator):
            both = isinstance(backend, AsyncEmbedder)
            kind = ResilientAsyncEmbeds if both else ResilientAsync
        return kind(backend, endpoint, policy)

    def __getattr__(self, name: str) -> Any:
        if name in ("astream", "aembed"):  # only through ResilientAsync's retrying ones
            raise AttributeError(name)
        return getattr(self.backend, name)

    def _call(self, action: Callable[[], T]) -> T:
        for attempt in range(self.policy.max_retries + 1):
            self.breaker.check(self.endpoint)
            self.attempts += 1
            try:
                result = action()
            except ProviderError as exc:
                self.breaker.record(ok=False)
                if not exc.retryable or attempt == self.policy.max_retries:
                    raise
                self.sleep(self.policy.delay(attempt, exc.retry_after))
                continue
            self.breaker.record(ok=True)
            return result
        raise AssertionError("unreachable: the loop returns or raises")

    def stream(self, prompt: Any, options: GenerateOptions) -> Iterator[Chunk]:
        """Retry until the first chunk arrives; after that, failures end the stream."""
        return self._retrying_stream(lambda: self.backend.stream(prompt, options))

    def _retrying_stream(self, start: Callable[[], Iterator[Chunk]]) -> Iterator[Chunk]:
        first: list[Chunk] = []

        def open_stream() -> Iterator[Chunk]:
            iterator: Iterator[Chunk] = iter(start())
            chunk = next(iterator, None)  # the request is made, and fails, here
            if chunk is not None:
                first.append(chunk)
            return iterator

        iterator = self._call(open_stream)
        yield from first
        try:
            yield from iterator
        except ProviderError:
            self.breaker.record(ok=False)
            raise

    def stream_vision(self, prompt: Any, images: Any, options: GenerateOptions) -> Iterator[Chunk]:
        """Like ``stream``, for requests that carry images."""
        return self._retrying_stream(lambda: self.backend.stream_vision(prompt, images, options))

    def transcribe(self, audio: Any, options: Any) -> Any:
        """Speech to text with retries."""
        return self._call(lambda: self.backend.transcribe(audio, options))

    def generate_images(self, prompt: str, options: Any, on_step: Any = None) -> list[Any]:
        """Image generation with retries."""
        images: list[Any] = self._call(
            lambda: self.backend.generate_images(prompt, options, on_step)
        )
        return images

    def count_tokens(self, text: str) -> int:
        """Delegated: counting needs no network."""
        return int(self.backend.count_tokens(text))

    def embed(self, texts: Sequence[str], purpose: Purpose = None) -> npt.NDArray[np.float32]:
        """Embeddings with retries."""
        vectors: npt.NDArray[np.float32] = self._call(lambda: self.backend.embed(texts, purpose))
        return vectors

    def classify(self, texts: Sequence[str], labels: Any) -> list[list[Label]]:
        """Classification with retries."""
        ranked: list[list[Label]] = self._call(lambda: self.backend.classify(texts, labels))
        return ranked


class ResilientAsync(Resilient):
    """A remote backend with an async stream: the same retries and breaker, on the loop."""

    async def astream(self, prompt: Any, options: GenerateOptions) -> AsyncIterator[Chunk]:
        """Retry until the first chunk arrives; after that, failures end the stream."""

        async def open_stream() -> tuple[AsyncIterator[Chunk], Chunk | None]:
            chunks = self.backend.astream(prompt, options)
            return chunks, await anext(chunks, None)  # the request is made, and fails, here

        chunks, first = await self._acall(open_stream)
        try:
            if first is not None:
                yield first
            async for chunk in chunks:
                yield chunk
        except ProviderError:
            self.breaker.record(ok=False)
            raise
        finally:
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()

    async def _acall(self, action: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(self.policy.max_retries + 1):
            self.breaker.check(self.endpoint)
            self.attempts += 1
            try:
                result = await action()
            except ProviderError as exc:
                self.breaker.record(ok=False)
                if not exc.retryable or attempt == self.policy.max_retries:
                    raise
                await asyncio.sleep(self.policy.delay(attempt, exc.retry_after))
                continue
            self.breaker.record(ok=True)
            return result
        raise AssertionError("unreachable: the loop returns or raises")


class ResilientAsyncEmbeds(ResilientAsync):
    """A remote backend that also embeds on its async client, with retries and breaker."""

    async def aembed(self, texts: Sequence[str], purpose: Purpose = None) -> Any:
        """Embeddings with retries, on the event loop."""
        return await self._acall(lambda: self.backend.aembed(texts, purpose))
