"""``GET /v1/models`` and ``GET /v1/models/{id}``: the served names and aliases."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from fondasi.monitor.records import KeyInfo
from fondasi.monitor.versions import describe
from fondasi.server.auth import Caller, state_of
from fondasi.server.state import ServerState

router = APIRouter()


def _entry(state: ServerState, name: str) -> dict[str, Any]:
    aliases = state.aliases()
    entry: dict[str, Any] = {
        "id": name,
        "object": "model",
        "created": int(aliases[name].updated if name in aliases else state.started),
        "owned_by": "fondasi",
    }
    if name in aliases:
        entry["fondasi_alias"] = describe(aliases[name])
    return entry


def _visible(state: ServerState, key: KeyInfo | None) -> list[str]:
    names = state.names()
    return [n for n in names if key is None or key.models is None or n in key.models]


@router.get("/v1/models")
async def list_models(request: Request, key: Caller) -> Any:
    """Every name this key may ask for."""
    state = state_of(request)
    return {"object": "list", "data": [_entry(state, n) for n in _visible(state, key)]}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request, key: Caller) -> Any:
    """One served name; unknown ones get 404 with close matches."""
    state = state_of(request)
    state.route(model_id, key)  # 404 with suggestions, 403 outside the key's allow-list
    return _entry(state, model_id)
