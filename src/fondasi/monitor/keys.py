"""API keys for the server: created once, shown once, stored only as a SHA-256 hash.

Keys are 256 random bits, so a fast hash is safe here (slow password hashes are for
guessable secrets); lookups by hash then cost one indexed read per request.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from fondasi.errors import BadInputError, UnknownChoiceError
from fondasi.monitor import tables
from fondasi.monitor.records import KeyInfo
from fondasi.monitor.store import Store
from fondasi.registry import close_matches

PREFIX = "fsk-"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
K = tables.api_keys


def hash_key(secret: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: object) -> KeyInfo:
    data = dict(row._mapping)  # type: ignore[attr-defined]
    data.pop("hash", None)
    data["models"] = json.loads(data["models"]) if data["models"] else None
    return KeyInfo(**data)


class KeyStore:
    """Create, list, revoke and check API keys in a ``Store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(
        self,
        name: str,
        *,
        rate_per_minute: int | None = None,
        models: list[str] | None = None,
        admin: bool = False,
    ) -> tuple[KeyInfo, str]:
        """A new key: its listing and the secret, which is never stored or shown again."""
        if not NAME.match(name):
            raise BadInputError(
                f"bad key name {name!r}: use letters, digits, '.', '_' or '-' (up to 100)"
            )
        if rate_per_minute is not None and rate_per_minute < 1:
            raise BadInputError("the rate limit must be at least 1 request a minute")
        if models is not None and not [m for m in models if m.strip()]:
            raise BadInputError("give at least one model name for the allow-list")
        secret = PREFIX + secrets.token_urlsafe(32)
        row = {
            "id": "key_" + secrets.token_hex(6),
            "name": name,
            "hash": hash_key(secret),
            "prefix": secret[: len(PREFIX) + 4],
            "created": time.time(),
            "revoked": None,
            "rate_per_minute": rate_per_minute,
            "models": json.dumps(sorted({m.strip() for m in models if m.strip()}))
            if models
            else None,
            "admin": admin,
        }
        try:
            with self.store.engine.begin() as conn:
                conn.execute(K.insert().values(**row))
        except IntegrityError:
            raise BadInputError(f"a key named {name!r} exists; pick another name") from None
        return _info(_Row(row)), secret

    def list(self, include_revoked: bool = True) -> list[KeyInfo]:
        """Every key, oldest first."""
        query = select(K).order_by(K.c.created)
        if not include_revoked:
            query = query.where(K.c.revoked.is_(None))
        with self.store.engine.connect() as conn:
            return [_info(row) for row in conn.execute(query)]

    def count(self, active_only: bool = False) -> int:
        """How many keys exist (or are active). The server requires a key once any was made:
        revoking the last one locks it rather than opening it to everyone."""
        query = select(func.count()).select_from(K)
        if active_only:
            query = query.where(K.c.revoked.is_(None))
        with self.store.engine.connect() as conn:
            return int(conn.scalar(query) or 0)

    def get(self, name_or_id: str) -> KeyInfo:
        """A key by name or id; an unknown one names the close matches."""
        keys = self.list()
        for key in keys:
            if name_or_id in (key.name, key.id):
                return key
        names = [k.name for k in keys] + [k.id for k in keys]
        close = close_matches(name_or_id, names)
        raise UnknownChoiceError("key", name_or_id, [k.name for k in keys] or ["(none)"], close)

    def revoke(self, name_or_id: str) -> KeyInfo:
        """Revoke a key; requests with it get 401 from then on."""
        key = self.get(name_or_id)
        if key.revoked is not None:
            raise BadInputError(f"key {key.name!r} is already revoked")
        with self.store.engine.begin() as conn:
            conn.execute(update(K).where(K.c.id == key.id).values(revoked=time.time()))
        return self.get(key.id)

    def active_by_hash(self) -> dict[str, KeyInfo]:
        """Active keys by the hash of their secret (a server caches this map)."""
        query = select(K).where(K.c.revoked.is_(None))
        with self.store.engine.connect() as conn:
            return {row.hash: _info(row) for row in conn.execute(query)}

    def verify(self, secret: str) -> KeyInfo | None:
        """The active key with this secret, or None."""
        query = select(K).where(K.c.hash == hash_key(secret), K.c.revoked.is_(None))
        with self.store.engine.connect() as conn:
            row = conn.execute(query).first()
        return _info(row) if row is not None else None


class _Row:
    """A dict dressed as a result row, so creation and listing share ``_info``."""

    def __init__(self, data: dict[str, object]) -> None:
        self._mapping = dict(data)
