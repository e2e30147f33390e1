"""The one place a model is composed: alias split, fallbacks, budgets and SLO, privacy, guard.

``compose`` stacks the wrappers around loaded models in one fixed order, outside in::

    guard  ->  privacy route  ->  fallback chain (budgets, latency SLO)  ->  model
    guard  ->  alias split  ->  each target (itself composed by the loader)

``fondasi.model()``, the CLI and the server all call it (through ``fondasi.api.model``),
so none of them decides routing or guarding on its own. What the handle tier must not
import is passed in: the PII detector (from guard), the ledger (from monitor), the guard
wrapper (a policy's ``wrap``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from fondasi.errors import BadInputError
from fondasi.models.contract import ModelHandle, PiiDetector
from fondasi.models.handle import Model
from fondasi.models.route_policy import Ledger, RoutePolicy
from fondasi.models.router import Fallback, PrivateRoute
from fondasi.models.split import Split
from fondasi.settings import RouterSettings

Guard = Callable[[ModelHandle], ModelHandle]  # wraps a model in a guard policy


@dataclass(frozen=True)
class Plan:
    """What to stack around a model; every field has a do-nothing default."""

    fallbacks: Sequence[str] = ()
    private: str | None = None  # a local model for requests with personal data
    router: RouterSettings = field(default_factory=RouterSettings)
    ledger: Ledger | None = None  # where routed calls are recorded; budgets need one
    pii: PiiDetector | None = None  # needed with ``private``
    guard: Guard | None = None
    alias: Sequence[tuple[str, float]] = ()  # a served alias's (target, share) pairs


def compose(model_id: str, load: Callable[[str], Model], plan: Plan | None = None) -> ModelHandle:
    """``model_id`` loaded by ``load`` and wrapped as ``plan`` says."""
    plan = plan or Plan()
    inner: ModelHandle
    if plan.alias:
        inner = Split(model_id, list(plan.alias), lambda ref: compose(ref, load, _unguarded(plan)))
    else:
        inner = _route(model_id, load, plan)
    return plan.guard(inner) if plan.guard is not None else inner


def _unguarded(plan: Plan) -> Plan:
    """An alias target's plan: the guard wraps the alias once, outside."""
    return Plan(plan.fallbacks, plan.private, plan.router, plan.ledger, plan.pii)


def _route(model_id: str, load: Callable[[str], Model], plan: Plan) -> ModelHandle:
    """The model, chain or private route the routing plan asks for."""
    router, chain, private = plan.router, list(plan.fallbacks), plan.private
    budgets_or_slo = bool(router.budgets or router.latency_slo_ms)
    primary: Model | None = None
    if not chain and budgets_or_slo:
        try:  # budgets and the SLO only route hosted models: look before wrapping
            primary = load(model_id)
        except BadInputError:
            primary = None
        if primary is not None and not primary.remote:
            return primary
    spare = router.over_budget_model or private
    if router.budgets and spare and spare != model_id and spare not in chain:
        chain = [*chain, spare]
    policy = RoutePolicy.of(router, plan.ledger) if chain or private or budgets_or_slo else None
    public: Model | Fallback
    if chain or budgets_or_slo:
        loaded = {model_id: primary} if primary is not None else {}
        public = Fallback([model_id, *chain], load, loaded, policy=policy)
    else:
        public = primary or load(model_id)
    if private and public.remote and private != model_id:
        if plan.pii is None:
            raise BadInputError("a private route needs a PII detector")
        return PrivateRoute(public, private, load, plan.pii, policy=policy)
    return public
