"""What every model route does first: resolve the name, load the model, note guard events."""

from __future__ import annotations

from typing import Any

from fondasi.errors import FondasiError
from fondasi.monitor.records import KeyInfo
from fondasi.server.errors import APIError
from fondasi.server.pool import Served, as_record, guard_events
from fondasi.server.recorder import CallLog
from fondasi.server.state import Route, ServerState


async def serve_model(
    state: ServerState, call: CallLog, name: str, key: KeyInfo | None
) -> tuple[Served, Route]:
    """The loaded model for a requested name, with the call log pointed at it."""
    route = state.route(name, key)
    call.version, call.decision = route.ref, route.decision
    try:
        served = await state.pool.aget(route.ref, state.runner.run)
    except FondasiError as exc:
        # A served name whose model cannot load is the server's problem, not the client's.
        raise APIError(
            503, f"{route.ref} cannot be loaded: {exc}", "server_error", "model_unavailable"
        ) from None
    served.lane.admit()
    # The guard reports findings through a context variable copied into the worker thread.
    guard_events.set(call.guard_events)
    return served, route


def note_guard(call: CallLog, exc: BaseException) -> None:
    """Record a guard block's findings on the call."""
    events: Any = getattr(exc, "events", None)
    if events is None:
        return
    call.guard_blocked = True
    seen = {e.model_dump_json() for e in call.guard_events}
    for event in events:
        record = as_record(event)
        if record.model_dump_json() not in seen:
            call.guard_events.append(record)
