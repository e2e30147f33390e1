"""The models a server holds: loaded once, guarded once, batched for embeddings.

A served name is a model ref from ``--models`` or an alias target. Each loaded model gets
a ``Lane`` (how many calls run at once, how many may wait) and, for embedding models, a
``MicroBatcher`` that turns many small requests into one encoder call.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fondasi.backends.base import Capability
from fondasi.backends.batching import MicroBatcher
from fondasi.errors import BadInputError
from fondasi.monitor.records import GuardEventRecord
from fondasi.server.config import ServeConfig
from fondasi.server.limits import Lane
from fondasi.settings import Settings

# The guard reports findings through one callback per model; each request collects its own
# through this variable (copied into the worker thread with the request's context).
guard_events: contextvars.ContextVar[list[GuardEventRecord] | None] = contextvars.ContextVar(
    "guard_events", default=None
)


def _on_event(event: Any) -> None:
    found = guard_events.get()
    if found is not None:
        found.append(as_record(event))


def as_record(event: Any) -> GuardEventRecord:
    """A guard event (the guard's pydantic model) as the store keeps it."""
    data = event.model_dump() if hasattr(event, "model_dump") else dict(event)
    known = set(GuardEventRecord.model_fields)
    return GuardEventRecord(**{k: v for k, v in data.items() if k in known})


@dataclass
class Served:
    """One loaded model and what serving it needs."""

    ref: str
    handle: Any  # fondasi Model, Fallback or PrivateRoute, maybe guarded
    base: Any  # the unguarded handle: capabilities, backend, route explanations
    lane: Lane
    batchers: dict[str, MicroBatcher] = field(default_factory=dict)

    def can(self, capability: Capability) -> bool:
        """Whether the model can do this; routes (fallbacks) are generators."""
        capabilities = getattr(self.base, "capabilities", None)
        if capabilities is None:
            return capability in {Capability.GENERATE, Capability.CHAT}
        return capability in capabilities

    @property
    def local(self) -> bool:
        """A plain model on this machine (not a hosted API or a route over several)."""
        return getattr(self.base, "remote", True) is False

    def explain(self) -> str | None:
        """The route the latest call took, for fallbacks and privacy routes."""
        explain = getattr(self.base, "explain", None)
        return str(explain()) if callable(explain) else None

    def batcher(self, purpose: str | None, config: ServeConfig) -> MicroBatcher:
        """The micro-batcher for this model and purpose (E5 embeds queries differently)."""
        key = purpose or ""
        if key not in self.batchers:
            embed = self.base.embed

            def run(texts: list[str]) -> Any:
                return embed(texts, purpose=purpose)

            self.batchers[key] = MicroBatcher(run, config.embed_batch, config.embed_wait_ms)
        return self.batchers[key]

    def close(self) -> None:
        """Stop the batch workers after what they hold."""
        for batcher in self.batchers.values():
            batcher.close()


class ModelPool:
    """Load models on first use (once, even under concurrent requests) and keep them."""

    def __init__(
        self,
        settings: Settings,
        config: ServeConfig,
        policy: Any = None,
        loader: Callable[[str], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.policy = policy
        self._loader = loader
        self._served: dict[str, Served] = {}
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    @property
    def loaded(self) -> list[str]:
        """Refs loaded so far."""
        return sorted(self._served)

    def _load_handle(self, ref: str) -> Any:
        if self._loader is not None:
            return self._loader(ref)
        import fondasi

        return fondasi.model(ref, self.settings)

    def get(self, ref: str) -> Served:
        """The served model for ``ref``, loading it (in this thread) the first time."""
        if ref in self._served:
            return self._served[ref]
        with self._lock:
            gate = self._loading.setdefault(ref, threading.Lock())
        with gate:
            if ref in self._served:
                return self._served[ref]
            base = self._load_handle(ref)
            handle = base
            generates = Capability.GENERATE in getattr(base, "capabilities", {Capability.GENERATE})
            if self.policy is not None and generates:
                handle = self.policy.wrap(base, on_event=_on_event)
            # A local generator uses every core: one call at a time. A local embedder takes
            # a batch's worth of requests at once (its micro-batcher merges them); a hosted
            # model takes as many as its provider will.
            if getattr(base, "remote", True) is not False:
                capacity = self.config.remote_concurrency
            else:
                capacity = 1 if generates else self.config.embed_batch
            lane = Lane(ref, capacity, self.config.max_queue, self.config.max_wait_s)
            served = Served(ref=ref, handle=handle, base=base, lane=lane)
            self._served[ref] = served
            return served

    async def aget(self, ref: str, run: Callable[..., Any]) -> Served:
        """``get`` off the event loop (loading takes seconds)."""
        if ref in self._served:
            return self._served[ref]
        served: Served = await run(self.get, ref)
        return served

    def close(self) -> None:
        """Stop every batcher."""
        for served in self._served.values():
            served.close()


def check_embedder(served: Served) -> None:
    """Embeddings need an embedding model."""
    if not served.can(Capability.EMBED):
        raise BadInputError(f"{served.ref} does not make embeddings; use an embedding model")


__all__ = ["ModelPool", "Served", "as_record", "check_embedder", "guard_events"]
