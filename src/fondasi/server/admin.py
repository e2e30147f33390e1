"""Model versions over HTTP: ``/admin/aliases`` to point, split, promote and roll back.

    GET    /admin/aliases                      every alias and its targets
    GET    /admin/aliases/{name}               one alias, with its history
    PUT    /admin/aliases/{name}               {"model": "x"} or {"targets": [{model, weight}]}
    POST   /admin/aliases/{name}/canary        {"model": "y", "percent": 10}
    POST   /admin/aliases/{name}/promote       {"model": "y"} (default: the canary)
    POST   /admin/aliases/{name}/rollback      back to the state before the latest change
    DELETE /admin/aliases/{name}

Changes land in the store, so every server on it (and the CLI) sees them within a second.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from fondasi.errors import FondasiError
from fondasi.monitor.records import Alias
from fondasi.monitor.versions import Versions, describe
from fondasi.server.auth import AdminCaller, state_of
from fondasi.server.errors import APIError, from_fondasi
from fondasi.server.schemas import AliasBody, CanaryBody, PromoteBody

router = APIRouter(prefix="/admin/aliases", tags=["admin"])


def _view(alias: Alias | None, name: str) -> dict[str, Any]:
    if alias is None:
        return {"name": name, "targets": [], "describe": f"{name}: removed"}
    return {**alias.model_dump(), "describe": describe(alias)}


def _apply(request: Request, change: Any) -> Any:
    state = state_of(request)
    try:
        result = change(Versions(state.store))
    except FondasiError as exc:
        error = from_fondasi(exc)
        if error.code == "invalid_value" and "unknown alias" in error.message:
            error = APIError(404, error.message, code="alias_not_found")
        raise error from None
    state.refresh(force=True)
    return result


async def _check_target(request: Request, model: str) -> None:
    """A target must be loadable: refuse it before traffic reaches it."""
    state = state_of(request)
    if model in state.config.models or model in state.pool.loaded:
        return
    try:
        await state.runner.run(state.pool.get, model)
    except FondasiError as exc:
        raise APIError(400, f"cannot serve {model!r}: {exc}", code="invalid_value") from None


@router.get("")
async def list_aliases(request: Request, _: AdminCaller) -> Any:
    """Every alias."""
    return {"data": [_view(a, a.name) for a in state_of(request).aliases().values()]}


@router.get("/{name}")
async def get_alias(name: str, request: Request, _: AdminCaller) -> Any:
    """One alias and its history."""
    versions = Versions(state_of(request).store)
    alias = _apply(request, lambda v: v.get(name))
    return {**_view(alias, name), "history": [c.model_dump() for c in versions.history(name)]}


@router.put("/{name}")
async def set_alias(name: str, body: AliasBody, request: Request, _: AdminCaller) -> Any:
    """Point an alias at one model or split it between several."""
    if (body.model is None) == (body.targets is None):
        raise APIError(400, "give either model or targets", code="invalid_value")
    targets = body.targets or [{"model": body.model, "weight": 100}]
    for target in targets:
        await _check_target(request, str(target.get("model", "")))
    return _view(_apply(request, lambda v: v.set(name, targets)), name)


@router.post("/{name}/canary")
async def canary(name: str, body: CanaryBody, request: Request, _: AdminCaller) -> Any:
    """Send a share of the alias's traffic to a new version."""
    await _check_target(request, body.model)
    return _view(_apply(request, lambda v: v.canary(name, body.model, body.percent)), name)


@router.post("/{name}/promote")
async def promote(
    name: str, request: Request, _: AdminCaller, body: PromoteBody | None = None
) -> Any:
    """Give all traffic to one target (default: the canary)."""
    chosen = body.model if body else None
    return _view(_apply(request, lambda v: v.promote(name, chosen)), name)


@router.post("/{name}/rollback")
async def rollback(name: str, request: Request, _: AdminCaller) -> Any:
    """Undo the latest change."""
    return _view(_apply(request, lambda v: v.rollback(name)), name)


@router.delete("/{name}")
async def remove(name: str, request: Request, _: AdminCaller) -> Any:
    """Delete the alias."""
    _apply(request, lambda v: v.remove(name))
    return _view(None, name)
