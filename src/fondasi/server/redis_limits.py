"""Per-key rate limits held in Redis, so they hold in total across workers and replicas.

The same token bucket as the in-process ``RateLimiter`` (``rate`` requests a minute, bursts
up to ``rate``), kept in one Redis hash per key and updated by one Lua script: the read,
refill and take happen atomically on the Redis server, on its clock, so two workers on two
machines cannot both take the last token. A bucket left alone for a minute is full again,
so its hash expires then. If Redis stops answering, each process falls back to its own
bucket (limits still apply, per process) and says so in the log until Redis is back.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fondasi.errors import BadInputError
from fondasi.server.limits import RateLimiter, over_limit

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

PREFIX = "fondasi:rate:"
TIMEOUT_S = 0.5  # a slow Redis must not hold requests up: fall back instead
WARN_EVERY_S = 30.0

# KEYS[1]: the key's bucket; ARGV[1]: requests a minute. Returns {taken (1|0), tokens left}.
TAKE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local rate = tonumber(ARGV[1])
local held = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(held[1]) or rate
local updated = tonumber(held[2]) or now
tokens = math.min(rate, tokens + math.max(now - updated, 0) * rate / 60)
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('EXPIRE', KEYS[1], 61)
return {taken, tostring(tokens)}
"""


def shown(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":****@", 1)
    return parts._replace(netloc=netloc).geturl()


def reachable(url: str) -> None:
    """Raise a clear error, before the server binds, when Redis does not answer at ``url``."""
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        client = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    except ValueError as exc:
        raise BadInputError(f"bad Redis URL {shown(url)!r}: {exc}") from None
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        raise BadInputError(f"cannot reach Redis at {shown(url)} for rate limits: {exc}") from None
    finally:
        client.close()


class RedisRateLimiter:
    """Token buckets in Redis, shared by every process pointed at it."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        try:
            self._redis: Redis = Redis.from_url(
                url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
            )
        except ValueError as exc:
            raise BadInputError(f"bad Redis URL {shown(url)!r}: {exc}") from None
        self.url = url
        self.local = RateLimiter()  # while Redis is away
        self._take: Any = self._redis.register_script(TAKE)
        self._warned = -1e9

    async def start(self) -> None:
        """Refuse to start when Redis cannot be reached: a wrong URL is one clear error."""
        from redis.exceptions import RedisError

        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise BadInputError(
                f"cannot reach Redis at {shown(self.url)} for rate limits: {exc}"
            ) from None

    async def check(self, key_id: str, rate: int) -> None:
        """Take one request from the key's shared allowance, or raise 429."""
        from redis.exceptions import RedisError

        try:
            taken, tokens = await self._take(keys=[PREFIX + key_id], args=[rate])
        except (RedisError, OSError) as exc:
            self._warn(exc)
            self.local.take(key_id, rate)
            return
        if not int(taken):
            raise over_limit(rate, (1 - float(tokens)) * 60 / rate)

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY_S:
            self._warned = now
            log.warning(
                "Redis at %s did not answer (%s): rate limits are counted per process "
                "until it does",
                shown(self.url),
                type(exc).__name__,
            )

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


__all__ = ["RedisRateLimiter", "reachable", "shown"]
