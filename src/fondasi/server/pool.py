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
from typing import Any, cast

from fondasi.backends.base import Capability, Purpose
from fondasi.backends.batching import MicroBatcher
from fondasi.errors import BadInputError
from fondasi.models.contract import ModelHandle
from fondasi.models.handle import Model
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
    """One composed model (routes and guard included) and what serving it needs."""

    ref: str
    handle: ModelHandle
    lane: Lane
    batchers: dict[str, MicroBatcher] = field(default_factory=dict)

    def can(self, capability: Capability) -> bool:
        """Whether the model can do this."""
        return self.handle.can(capability)

    @property
    def local(self) -> bool:
        """Whether every call stays on this machine."""
        return not self.handle.remote

    def batcher(self, purpose: str | None, config: ServeConfig) -> MicroBatcher:
        """The micro-batcher for this model and purpose (E5 embeds queries differently)."""
        key = purpose or ""
        if key not in self.batchers:
            embed = self.handle.embed

            def run(texts: list[str]) -> Any:
                return embed(texts, purpose=cast(Purpose, purpose))

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
        loader: Callable[[str], Model] | None = None,
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

    def _load_handle(self, ref: str) -> ModelHandle:
        from fondasi.api import model

        return model(
            ref, self.settings, guard=self.policy, on_event=_on_event, load_plain=self._loader
        )

    def get(self, ref: str) -> Served:
        """The served model for ``ref``, loading it (in this thread) the first time."""
        if ref in self._served:
            return self._served[ref]
        with self._lock:
            gate = self._loading.setdefault(ref, threading.Lock())
        with gate:
            if ref in self._served:
                return self._served[ref]
            handle = self._load_handle(ref)
            # A local generator uses every core: as many calls at once as it decodes in one
            # batch (one, unless its backend batches decode steps). A local embedder takes a
            # batch's worth of requests at once (its micro-batcher merges them); a hosted
            # model takes as many as its provider will.
            if handle.remote:
                capacity = self.config.remote_concurrency
            elif handle.can(Capability.GENERATE):
                capacity = batch_size(handle)
            else:
                capacity = self.config.embed_batch
            lane = Lane(ref, capacity, self.config.max_queue, self.config.max_wait_s)
            served = Served(ref=ref, handle=handle, lane=lane)
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

    async def aclose(self) -> None:
        """Close what the server's event loop opened for the models (SDK async clients)."""
        for served in list(self._served.values()):
            close = getattr(served.handle, "aclose", None)
            if close is not None:
                await close()


def batch_size(handle: ModelHandle) -> int:
    """How many generations the local model behind ``handle`` decodes together (its
    backend's ``batch_size``; 1 for backends that run one call at a time)."""
    model: Any = handle
    while hasattr(model, "primary"):  # guard, fallback chain, privacy route, served alias
        model = model.primary()
    size = getattr(getattr(model, "backend", None), "batch_size", 1)
    return max(1, int(size)) if isinstance(size, int) else 1


def check_embedder(served: Served) -> None:
    """Embeddings need an embedding model."""
    if not served.can(Capability.EMBED):
        raise BadInputError(f"{served.ref} does not make embeddings; use an embedding model")


__all__ = ["ModelPool", "Served", "as_record", "batch_size", "check_embedder", "guard_events"]
