"""API keys on every route: required as soon as one exists, checked against a cached map.

``Authorization: Bearer fsk-...`` (what the OpenAI SDKs send) or ``x-api-key``. A key may be
limited to some models and to a number of requests a minute; admin routes need an admin key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from fondasi.monitor.records import KeyInfo
from fondasi.server.errors import APIError

if TYPE_CHECKING:
    from fondasi.server.state import ServerState


def state_of(request: Request) -> ServerState:
    """The server state the app was built with."""
    state: ServerState = request.app.state.fondasi
    return state


def _secret(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or request.cookies.get("fondasi_key") or None


async def check_key(request: Request) -> KeyInfo | None:
    """The caller's key (None when the server has no keys); 401 otherwise, 429 over its rate."""
    state = state_of(request)
    if not state.keys_required:
        return None
    secret = _secret(request)
    if secret is None:
        raise APIError(
            401,
            "this server needs an API key: send 'Authorization: Bearer <key>' "
            "(create one with `fondasi keys create NAME`)",
            code="missing_api_key",
        )
    key = state.key(secret)
    if key is None:
        shown = secret[:6] + "****" if len(secret) > 10 else "****"
        raise APIError(401, f"invalid or revoked API key {shown}", code="invalid_api_key")
    call = getattr(request.state, "call", None)
    if call is not None:
        call.key_id = key.id
    if key.rate_per_minute is not None:
        await state.limiter.check(key.id, key.rate_per_minute)
    return key


async def authenticate(request: Request) -> KeyInfo | None:
    """``check_key``, noting the model a refused request asked for in its log row."""
    try:
        return await check_key(request)
    except APIError:
        call = getattr(request.state, "call", None)
        if call is not None:
            try:  # the body is already read (and cached) by the time dependencies run
                body = await request.json()
                call.model = str(body.get("model") or "?")[:200]
            except (ValueError, AttributeError, RuntimeError):
                pass  # not JSON, or not an object: the row keeps "?"
        raise


async def authenticate_admin(request: Request) -> KeyInfo | None:
    """Like ``authenticate``, and the key must be an admin key."""
    key = await check_key(request)
    if key is not None and not key.admin:
        raise APIError(
            403,
            "admin routes need an admin key (`fondasi keys create NAME --admin`)",
            "permission_error",
            "admin_required",
        )
    return key


Caller = Annotated[KeyInfo | None, Depends(authenticate)]
AdminCaller = Annotated[KeyInfo | None, Depends(authenticate_admin)]
