"""What a running server holds: config, store, writer, keys, aliases, models, limits.

Keys and aliases are re-read from the store at most once a second, so ``fondasi keys
revoke`` or ``fondasi serve alias ...`` in another process take effect without a restart.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from fondasi.monitor.keys import KeyStore, hash_key
from fondasi.monitor.records import Alias, KeyInfo
from fondasi.monitor.store import Store
from fondasi.monitor.versions import Versions, describe, pick
from fondasi.monitor.writer import LogWriter
from fondasi.registry import close_matches
from fondasi.server.config import ServeConfig
from fondasi.server.errors import APIError
from fondasi.server.limits import Limiter, RateLimiter
from fondasi.server.metrics import Metrics
from fondasi.server.pool import ModelPool
from fondasi.server.runner import Runner
from fondasi.settings import Settings

REFRESH_SECONDS = 1.0
MODERATION_MODEL = "fondasi-guard"  # /v1/moderations answers as this model
RECENT_IDS = 100_000


@dataclass
class Route:
    """Which model answers a request, and why."""

    name: str  # what the client asked for
    ref: str  # the model that answers
    decision: str | None  # the alias split, in words


@dataclass
class ServerState:
    """Everything the routes share."""

    config: ServeConfig
    settings: Settings
    store: Store
    writer: LogWriter
    pool: ModelPool
    runner: Runner
    metrics: Metrics
    limiter: Limiter = field(default_factory=RateLimiter)
    rng: random.Random = field(default_factory=random.Random)
    recent: OrderedDict[str, str | None] = field(default_factory=OrderedDict)
    _keys: dict[str, KeyInfo] = field(default_factory=dict)
    _aliases: dict[str, Alias] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    _locked: bool = False
    _refreshed: float = -1e9

    @property
    def policy(self) -> Any:
        """The guard policy, or None."""
        return self.pool.policy

    def refresh(self, force: bool = False) -> None:
        """Re-read keys and aliases if a second has passed."""
        now = time.monotonic()
        if not force and now - self._refreshed < REFRESH_SECONDS:
            return
        keys = KeyStore(self.store)
        self._keys = keys.active_by_hash()
        self._locked = bool(self._keys) or keys.count() > 0
        self._aliases = Versions(self.store).all()
        self._refreshed = now

    def redact(self, text: str) -> str:
        """Text as the log keeps it: the guard policy's redaction, else PII masked."""
        if self.policy is not None:
            return str(self.policy.redact(text))
        return default_redact(text)

    @property
    def keys_required(self) -> bool:
        """Keys are required as soon as one was created (even if all are revoked since)."""
        self.refresh()
        return self._locked

    def key(self, secret: str) -> KeyInfo | None:
        """The active key with this secret."""
        self.refresh()
        return self._keys.get(hash_key(secret))

    def aliases(self) -> dict[str, Alias]:
        """Current aliases."""
        self.refresh()
        return dict(self._aliases)

    def serves(self, name: str) -> bool:
        """Whether ``name`` is a served model or an alias (the guard's moderation model too)."""
        if name in self.config.models or name == MODERATION_MODEL:
            return True
        self.refresh()
        return name in self._aliases

    def names(self) -> list[str]:
        """Every name a client may ask for: served models and aliases."""
        return sorted({*self.config.models, *self.aliases()})

    def route(self, name: str, key: KeyInfo | None) -> Route:
        """Resolve a requested name (alias split included), checking the key's allow-list."""
        aliases = self.aliases()
        if name not in aliases and name not in self.config.models:
            close = close_matches(name, self.names(), cutoff=0.4)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise APIError(
                404,
                f"the model {name!r} is not served here.{hint} Served: {', '.join(self.names())}",
                code="model_not_found",
                param="model",
            )
        if key is not None and key.models is not None and name not in key.models:
            raise APIError(
                403,
                f"this key may not use {name!r}; it may use: {', '.join(key.models)}",
                "permission_error",
                "model_not_allowed",
                "model",
            )
        if name in aliases:
            alias = aliases[name]
            target = pick(alias, self.rng)
            return Route(name, target.model, describe(alias))
        return Route(name, name, None)

    def remember(self, response_id: str, key_id: str | None) -> None:
        """Keep recent response ids, so feedback can arrive before the log row is written."""
        self.recent[response_id] = key_id
        while len(self.recent) > RECENT_IDS:
            self.recent.popitem(last=False)

    def knows(self, response_id: str) -> bool:
        """Whether this response id was answered (recently, or in the store)."""
        return response_id in self.recent or self.store.has_request(response_id)


def default_redact(text: str) -> str:
    """Mask personal data (NIK, phones, emails, cards ...) when no guard policy is set."""
    from fondasi.guard import find_pii

    out, limit = text, len(text)
    for finding in sorted(find_pii(text), key=lambda f: f.start, reverse=True):
        if finding.end > limit:  # overlaps one already masked
            continue
        out = out[: finding.start] + f"[{finding.type}]" + out[finding.end :]
        limit = finding.start
    return out
