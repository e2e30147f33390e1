"""The hybrid router's policy: monthly budgets, a latency SLO, and a record of every call.

``[router]`` in ``config.toml``::

    [router]
    budgets = { openai = 20.0, anthropic = 5.0 }   # USD per calendar month (UTC)
    over_budget_model = "smollm2-135m-instruct"    # answers once a budget is spent
    latency_slo_ms = 3000                           # p95 over the last slo_window calls

A model whose provider has spent its budget, or whose recent p95 latency is over the SLO,
is passed over for the next model in its chain (the last one answers however slow); the
reason goes into ``--explain`` and the ledger. A slow model is tried again now and then
(every ``PROBE_EVERY``-th request it would have been skipped), so it can show it has
recovered.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict, Field

from fondasi.settings import RouterSettings

if TYPE_CHECKING:
    from fondasi.models.handle import Model

PROBE_EVERY = 10
MIN_SAMPLES = 5  # fewer calls than this say nothing about a p95


def usd(amount: float) -> str:
    """Dollars as people read them: cents, or more digits for fractions of a cent."""
    return f"{amount:.2f}" if amount == 0 or amount >= 0.01 else f"{amount:.6f}"


class RoutedCall(BaseModel):
    """One request through the router."""

    model_config = ConfigDict(frozen=True)

    ts: float = Field(default_factory=time.time, description="UTC epoch seconds.")
    model: str = Field(description="The model that answered (or the last one tried).")
    provider: str | None = Field(default=None, description="Its API provider; None if local.")
    cost_usd: float | None = Field(default=None, description="What the answer cost.")
    answered: bool = Field(description="Whether any model answered.")
    decision: str = Field(description="Every model tried and why, in words.")


class Ledger(Protocol):
    """Where routed calls are kept and budgets read (the log store's ledger)."""

    def record(self, call: RoutedCall) -> None:
        """Keep one routed call."""

    def spent(self, provider: str) -> float:
        """USD spent on a provider this calendar month."""


def provider_of(model: Model) -> str | None:
    """The API provider a model's calls go to; None for a local model."""
    return model.spec.extra.get("provider") if model.remote else None


@dataclass
class LatencyWatch:
    """Recent latencies per model, and whether a model keeps its SLO."""

    slo_ms: float
    window: int
    seen: dict[str, deque[float]] = field(default_factory=dict)
    skipped: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, model_id: str, seconds: float) -> None:
        """Note how long a call took."""
        with self.lock:
            self.seen.setdefault(model_id, deque(maxlen=self.window)).append(seconds * 1000)

    def p95(self, model_id: str) -> float | None:
        """The model's p95 latency in ms over its recent calls, once there are enough."""
        with self.lock:
            recent = list(self.seen.get(model_id, ()))
        if len(recent) < MIN_SAMPLES:
            return None
        return statistics.quantiles(recent, n=20, method="inclusive")[-1]

    def breach(self, model_id: str) -> str | None:
        """Why the model should be passed over now, or None (also when it is due a probe)."""
        p95 = self.p95(model_id)
        if p95 is None or p95 <= self.slo_ms:
            return None
        with self.lock:
            self.skipped[model_id] += 1
            if self.skipped[model_id] % PROBE_EVERY == 0:
                return None  # let one through: it may have recovered
        return f"p95 latency {p95:.0f} ms is over the {self.slo_ms:.0f} ms SLO"


@dataclass
class RoutePolicy:
    """Skips models over budget or SLO, and records what each request did."""

    config: RouterSettings
    ledger: Ledger | None
    latency: LatencyWatch | None

    @classmethod
    def of(cls, config: RouterSettings, ledger: Ledger | None) -> RoutePolicy:
        """The policy ``config`` describes, keeping its record in ``ledger``."""
        slo = config.latency_slo_ms
        watch = LatencyWatch(slo, config.slo_window) if slo else None
        return cls(config, ledger, watch)

    def skip(self, model: Model, last_resort: bool = False) -> str | None:
        """Why ``model`` must not take this request, or None.

        A budget is a hard cap; the SLO is not: the chain's last model answers however slow,
        since a late answer beats none.
        """
        provider = provider_of(model)
        cap = self.config.budgets.get(provider or "")
        if provider and cap is not None and self.ledger is not None:
            spent = self.ledger.spent(provider)
            if spent >= cap:
                return f"over budget: {usd(spent)} of {usd(cap)} USD spent on {provider} this month"
        if self.latency is None or last_resort:
            return None
        return self.latency.breach(model.id)

    def observed(self, model: Model, seconds: float) -> None:
        """Note a call's latency for the SLO."""
        if self.latency is not None:
            self.latency.observe(model.id, seconds)

    def record(self, call: RoutedCall) -> None:
        """Keep the call in the ledger, when recording is on."""
        if self.ledger is not None and (self.config.record or call.cost_usd):
            self.ledger.record(call)
