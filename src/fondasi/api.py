"""``fondasi.model()``: the settings turned into a composed model, for the Python API, the CLI
and the server alike.

This module gathers what the handle tier may not import — the guard policy and its PII
detector, the log store's ledger and aliases — and hands them to
``fondasi.models.compose.compose``, the one function that stacks them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fondasi.catalog import Catalog, ModelCard
from fondasi.errors import UnknownModelError
from fondasi.extras import is_installed, require
from fondasi.models.compose import Plan, compose
from fondasi.models.contract import ModelHandle
from fondasi.models.handle import Model
from fondasi.models.load import load
from fondasi.recommend import Recommendation, Requirements, rank
from fondasi.settings import Settings
from fondasi.system import Hardware

if TYPE_CHECKING:
    from fondasi.guard.policy import EventSink, Policy
    from fondasi.models.route_policy import Ledger


def model(
    model_id: str,
    settings: Settings | None = None,
    fallbacks: list[str] | None = None,
    private_model: str | None = None,
    guard: str | Policy | None = None,
    on_event: EventSink | None = None,
    load_plain: Callable[[str], Model] | None = None,
) -> ModelHandle:
    """Load a model by catalog id (``smollm2-135m-instruct``), path (``hf:/dir``,
    ``gguf:file``), provider (``openai:gpt-4.1-mini``) or served alias (``support-bot``).

    With fallbacks (given, or ``[fallbacks]`` in config.toml) you get a fallback chain; with
    a ``private_model`` (given, or in config.toml) a hosted model is wrapped in a privacy
    route that keeps requests with personal data on that local model. A ``[router]`` budget
    or latency SLO passes a hosted model over for the next in its chain (or
    ``over_budget_model``); routed calls are recorded in the log store. An alias set with
    ``fondasi serve alias`` splits calls between its targets. With ``guard`` (a policy, or
    its name from ``[guard]`` in config.toml, or ``standard``/``strict``/``audit``) every
    call goes through that policy, ``on_event`` hearing each finding. ``load_plain`` loads
    one plain model by id (default: from the catalog). Whatever is stacked, the result meets
    one contract (``fondasi.models.contract.ModelHandle``).
    """
    settings = settings or Settings.load()
    catalog = Catalog.load(settings.card_dirs())

    def loader(ref: str) -> Model:
        return load(ref, settings, catalog)

    chain = list(fallbacks if fallbacks is not None else settings.fallbacks.get(model_id, []))
    private = private_model or settings.private_model
    policy = _policy(settings, guard)
    plan = Plan(
        fallbacks=chain,
        private=private,
        router=settings.router,
        ledger=_ledger(settings, bool(chain or private)),
        pii=_pii if private else None,
        guard=(lambda inner: policy.wrap(inner, on_event)) if policy is not None else None,
        alias=_alias(model_id, catalog, settings),
    )
    return compose(model_id, load_plain or loader, plan)


def _policy(settings: Settings, guard: str | Policy | None) -> Policy | None:
    if guard is None or not isinstance(guard, str):
        return guard
    from fondasi.guard import load_policy

    return load_policy(settings, guard)


def _pii(text: str) -> Sequence[str]:
    from fondasi.guard import find_pii

    return [finding.type for finding in find_pii(text)]


def _ledger(settings: Settings, routed: bool) -> Ledger | None:
    """The log store's ledger, where routing records or budgets need one."""
    config = settings.router
    if config.budgets:  # budgets cannot be kept without the ledger
        require("sqlalchemy", "serve", "router budgets")
    routing = routed or config.budgets or config.latency_slo_ms
    if not (config.budgets or (routing and config.record and is_installed("serve"))):
        return None
    from fondasi.monitor.ledger import Ledger
    from fondasi.monitor.store import Store

    return Ledger(Store.open(settings))


def _alias(model_id: str, catalog: Catalog, settings: Settings) -> list[tuple[str, float]]:
    """A served alias's targets, for an id that is no model the catalog or a path names."""
    if ":" in model_id or "/" in model_id or not is_installed("serve"):
        return []
    try:
        catalog.get(model_id)
        return []
    except UnknownModelError:
        pass
    url = settings.database_url
    if url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).exists():
        return []  # no log store yet, so no aliases: let loading name the close models
    from fondasi.monitor.store import Store
    from fondasi.monitor.versions import Versions, shares

    store = Store.open(settings)
    try:
        found = Versions(store).all().get(model_id)
    finally:
        store.close()
    return shares(found) if found is not None else []


def load_catalog(settings: Settings | None = None) -> Catalog:
    """The built-in model cards plus the user's own (``FONDASI_HOME/catalog/*.yaml``)."""
    settings = settings or Settings.load()
    return Catalog.load(settings.card_dirs())


def card(model_id: str, settings: Settings | None = None) -> ModelCard:
    """One model's card; an unknown id raises ``UnknownModelError`` naming close matches."""
    return load_catalog(settings).get(model_id)


def recommend(
    requirements: Requirements,
    *,
    catalog: Catalog | None = None,
    hardware: Hardware | None = None,
    settings: Settings | None = None,
) -> list[Recommendation]:
    """The best catalog models for ``requirements``, best first, each with its reasons."""
    from fondasi import system

    ranking = rank(requirements, catalog or load_catalog(settings), hardware or system.detect())
    return ranking.picks


__all__ = ["card", "load_catalog", "model", "recommend"]
