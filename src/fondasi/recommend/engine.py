"""Rank catalog models against requirements and explain each pick."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from fondasi import system
from fondasi.catalog.loader import Catalog
from fondasi.catalog.schema import ModelCard, Task
from fondasi.recommend import estimates
from fondasi.recommend.advice import adaptation_for, approach_for
from fondasi.recommend.criteria import (
    CONSTRAINTS,
    CRITERIA,
    Candidate,
    Route,
    Score,
    route_exists,
)
from fondasi.recommend.requirements import Deploy, Requirements
from fondasi.system import Hardware


class Recommendation(BaseModel):
    """One ranked pick with the reasons for it."""

    model_config = ConfigDict(frozen=True)

    rank: int = Field(description="1 is the best fit.")
    model_id: str = Field(description="Catalog id.")
    name: str = Field(description="Display name.")
    score: float = Field(description="Weighted fit, 0-100.")
    route: Route = Field(description="Run locally or call a hosted API.")
    approach: str = Field(description="API Cloud, Model Lokal or Hybrid.")
    precision: str | None = Field(description="16-bit or 4-bit weights, for local picks.")
    memory_gb: float | None = Field(description="Memory it needs locally, GB.")
    monthly_cost_usd: float | None = Field(description="Estimated API cost a month.")
    one_off_cost_usd: float | None = Field(description="Estimated cost to embed the corpus once.")
    latency_ms: float | None = Field(description="Rule-of-thumb latency estimate, local picks.")
    license: str = Field(description="Licence name.")
    why: list[str] = Field(description="Why it fits.")
    tradeoffs: list[str] = Field(description="What to watch out for.")
    adaptation: list[str] = Field(description="Zero-shot, few-shot, PEFT or fine-tuning advice.")


class Exclusion(BaseModel):
    """A model fit for the task that a hard constraint ruled out."""

    model_id: str
    reasons: list[str]


class Ranking(BaseModel):
    """The full answer: picks, exclusions and what they were judged against."""

    requirements: Requirements
    ram_gb: float = Field(description="RAM the ranking assumed.")
    vram_gb: float = Field(description="VRAM the ranking assumed.")
    considered: int = Field(description="Catalog models fit for the task.")
    picks: list[Recommendation]
    excluded: list[Exclusion]


def _candidate(
    card: ModelCard, route: Route, req: Requirements, ram: float, vram: float, day: date
) -> Candidate:
    tokens = estimates.tokens_for(req.task, req.input_tokens, req.output_tokens)
    if route == Route.LOCAL:
        fit = estimates.memory_fit(card, ram, vram)
        latency = estimates.local_latency_ms(card, fit, tokens)
        return Candidate(card, route, req, fit, None, None, latency, day)
    monthly = estimates.monthly_api_cost(card, req.task, req.requests_per_day, tokens)
    one_off = None
    if req.task == Task.EMBEDDINGS and req.documents:
        one_off = estimates.indexing_cost(card, req.documents)
    return Candidate(card, route, req, None, monthly, one_off, None, day)


def _score(candidate: Candidate) -> tuple[float, list[Score]]:
    verdicts = [(rule.weight, rule(candidate)) for rule in CRITERIA.values()]
    applied = [(weight, score) for weight, score in verdicts if score is not None]
    total = sum(weight for weight, _ in applied)
    value = sum(weight * score.value for weight, score in applied) / total if total else 0.0
    return round(100 * value, 1), [score for _, score in applied]


def _explain(candidate: Candidate, score: float, scores: list[Score], rank: int) -> Recommendation:
    card, route, req = candidate.card, candidate.route, candidate.req
    hybrid = req.deploy == Deploy.HYBRID and card.runs_locally and candidate.hosted
    approach = approach_for(route, hybrid)
    why = [s.why for s in scores if s.why]
    tradeoffs = [s.tradeoff for s in scores if s.tradeoff]
    tradeoffs.append(f"{approach.name}: {approach.cons}")
    if route == Route.API:
        tradeoffs.append("your text is sent to the provider")
    if card.license.notes and route == Route.LOCAL:
        tradeoffs.append(f"licence {card.license.name}: {card.license.notes}")
    if req.task == Task.EMBEDDINGS and req.documents:
        size = estimates.index_size_gb(card, req.documents)
        if size is not None:
            tradeoffs.append(
                f"a {card.embedding_dim}-d index of {req.documents:,} documents takes "
                f"~{size:.1f} GB as float32"
            )
    fit = candidate.fit
    if req.task == Task.EMBEDDINGS and req.documents and fit is not None and fit.fits:
        hours = estimates.local_indexing_hours(card, req.documents, fit.on_gpu)
        if hours is not None:
            device = "your GPU" if fit.on_gpu else "this CPU"
            tradeoffs.append(
                f"embedding {req.documents:,} documents once takes ~{_duration(hours)} on "
                f"{device} (rule-of-thumb estimate)"
            )
    return Recommendation(
        rank=rank,
        model_id=card.id,
        name=card.name,
        score=score,
        route=route,
        approach=approach.name,
        precision=None if fit is None or fit.bits is None else f"{fit.bits}-bit",
        memory_gb=None if fit is None else fit.need_gb,
        monthly_cost_usd=None
        if candidate.monthly_cost is None
        else round(candidate.monthly_cost, 2),
        one_off_cost_usd=None
        if candidate.one_off_cost is None
        else round(candidate.one_off_cost, 2),
        latency_ms=None if candidate.latency_ms is None else round(candidate.latency_ms),
        license=card.license.name,
        why=why,
        tradeoffs=tradeoffs,
        adaptation=adaptation_for(card, route, req.task),
    )


def _duration(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} minutes"
    return f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.0f} days"


def rank(
    req: Requirements, catalog: Catalog, hardware: Hardware, today: date | None = None
) -> Ranking:
    """Every model fit for the task, ranked; the ruled-out ones with their reasons.

    ``today`` decides which hosted APIs are still served (default: the real today).
    """
    day = today or date.today()
    ram = hardware.ram_gb if req.ram_gb is None else req.ram_gb
    vram = hardware.vram_gb if req.vram_gb is None else req.vram_gb
    scored: list[tuple[float, Candidate, list[Score]]] = []
    excluded: list[Exclusion] = []
    fit_for_task = catalog.filter(task=req.task)
    for card in fit_for_task:
        best: tuple[float, Candidate, list[Score]] | None = None
        missing: list[str] = []  # routes the model does not have at all
        reasons: list[str] = []  # why the routes it has are ruled out
        for route in Route:
            candidate = _candidate(card, route, req, ram, vram, day)
            if absent := route_exists(candidate):
                missing.append(absent)
                continue
            # The first failed constraint says enough about a route.
            failed = next((reason for rule in CONSTRAINTS if (reason := rule(candidate))), None)
            if failed:
                reasons.append(failed)
                continue
            value, scores = _score(candidate)
            if best is None or value > best[0]:
                best = (value, candidate, scores)
        if best is None:
            excluded.append(Exclusion(model_id=card.id, reasons=reasons or missing))
        else:
            scored.append(best)
    # Ties go to the more capable model, then the smaller one (cheaper to run).
    scored.sort(key=lambda item: (-item[0], -item[1].card.capability, item[1].card.parameters or 0))
    # The strongest ruled-out models first: those are the ones people ask "why not?" about.
    # Retired APIs go last: nobody wonders long about a model that no longer exists.
    excluded.sort(
        key=lambda e: (
            any("retired" in reason for reason in e.reasons),
            -catalog.get(e.model_id).capability,
        )
    )
    picks = [
        _explain(candidate, value, scores, index + 1)
        for index, (value, candidate, scores) in enumerate(scored[: req.top])
    ]
    return Ranking(
        requirements=req,
        ram_gb=ram,
        vram_gb=vram,
        considered=len(fit_for_task),
        picks=picks,
        excluded=excluded,
    )


def recommend(
    req: Requirements, catalog: Catalog | None = None, hardware: Hardware | None = None
) -> list[Recommendation]:
    """The best models for the requirements, best first, each with its reasons."""
    return rank(req, catalog or Catalog.load(), hardware or system.detect()).picks
