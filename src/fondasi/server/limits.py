"""Back-pressure: per-model lanes (bounded queues), per-key rate limits, request size limits.

A full lane or an empty token bucket answers 429 with Retry-After at once, so a client backs
off instead of piling up sockets; an oversized body answers 413 before it is read in full.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from fondasi.server.errors import APIError


class Lane:
    """At most ``capacity`` calls to one model at once; at most ``max_queue`` waiting, and
    none when the expected wait is over ``max_wait`` seconds."""

    def __init__(self, name: str, capacity: int, max_queue: int, max_wait: float = 30.0) -> None:
        self.name = name
        self.capacity = capacity
        self.max_queue = max_queue
        self.max_wait = max_wait
        self.running = 0
        self.waiting = 0
        self._slots = asyncio.Semaphore(capacity)
        self._seconds = 1.0  # moving average of a call's duration, for Retry-After

    def retry_after(self) -> int:
        """Seconds until a queued request would likely start."""
        backlog = (self.waiting + self.running) / self.capacity
        return max(1, math.ceil(backlog * self._seconds))

    def admit(self) -> None:
        """Raise 429 now if the queue is full (before a stream commits to a 200)."""
        # Full when too many wait, or when the expected wait (from recent call times) is
        # longer than a client should hang on: better a 429 now than an answer in a minute.
        busy = self._slots.locked()
        if busy and (self.waiting >= self.max_queue or self.retry_after() > self.max_wait):
            raise APIError(
                429,
                f"{self.name} is busy: {self.running} running, {self.waiting} waiting; retry",
                "rate_limit_error",
                "model_overloaded",
                headers={"Retry-After": str(self.retry_after())},
            )

    async def acquire(self) -> Ticket:
        """Wait for a slot (429 if too many wait already); release the ticket when done."""
        self.admit()
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        return Ticket(self, time.monotonic())

    def _release(self, started: float) -> None:
        self.running -= 1
        self._slots.release()
        self._seconds = 0.8 * self._seconds + 0.2 * (time.monotonic() - started)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for one call."""
        ticket = await self.acquire()
        try:
            yield
        finally:
            ticket.release()


class Ticket:
    """A held lane slot; releasing twice is harmless (streams release from two places)."""

    def __init__(self, lane: Lane, started: float) -> None:
        self.lane = lane
        self.started = started
        self.released = False

    def release(self) -> None:
        """Give the slot back."""
        if not self.released:
            self.released = True
            self.lane._release(self.started)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class Limiter(Protocol):
    """Per-key rate limits: in this process, or shared by every worker and replica."""

    async def start(self) -> None:
        """Connect (a shared limiter checks its server is there)."""

    async def check(self, key_id: str, rate: int) -> None:
        """Take one request from the key's allowance or raise 429."""

    async def close(self) -> None:
        """Let go of connections."""


def over_limit(rate: int, wait: float) -> APIError:
    """The 429 for a key over its rate, with seconds until it may try again."""
    return APIError(
        429,
        f"rate limit of {rate} requests a minute reached for this key",
        "rate_limit_error",
        "rate_limit_exceeded",
        headers={"Retry-After": str(max(1, math.ceil(wait)))},
    )


@dataclass
class RateLimiter:
    """A token bucket per API key in this process: ``rate`` requests a minute, bursts up to
    ``rate``. With several workers each counts alone; ``RedisRateLimiter`` counts for all."""

    buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, key_id: str, rate: int) -> None:
        """Take one token or raise 429 with how long until the next one."""
        now = time.monotonic()
        bucket = self.buckets.setdefault(key_id, _Bucket(float(rate), now))
        bucket.tokens = min(float(rate), bucket.tokens + (now - bucket.updated) * rate / 60)
        bucket.updated = now
        if bucket.tokens < 1:
            raise over_limit(rate, (1 - bucket.tokens) * 60 / rate)
        bucket.tokens -= 1

    async def start(self) -> None:
        """Nothing to connect to."""

    async def check(self, key_id: str, rate: int) -> None:
        """``take``, for the async routes."""
        self.take(key_id, rate)

    async def close(self) -> None:
        """Nothing to let go of."""


def too_large(limit: int) -> tuple[int, list[tuple[bytes, bytes]], bytes, str]:
    """The 413 answer to a request body over ``limit`` bytes: status, headers, body, and the
    error line its log row gets."""
    error = APIError(413, f"the request body is over {limit} bytes", code="request_too_large")
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return 413, headers, body, f"request_too_large: {error.message}"


__all__ = ["Lane", "Limiter", "RateLimiter", "Ticket", "over_limit", "too_large"]
