"""The rules that rank models: hard constraints exclude, soft criteria score.

Each rule registers itself with a decorator; the weights of the built-in soft criteria sit
in ``WEIGHTS``, in one place. A plug-in adds a soft criterion through the
``fondasi.recommend_criteria`` entry-point group, naming a ``Weighted`` rule. A rule looks
at one ``Candidate`` — a card on one route (run locally, or call a hosted API) — with the
estimates made for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from fondasi.catalog.schema import IndonesianSupport, Kind, ModelCard, Task
from fondasi.recommend.estimates import AMORTISE_MONTHS, Fit, local_indexing_hours
from fondasi.recommend.requirements import Deploy, LicenseNeed, Privacy, Requirements
from fondasi.registry import Registry


class Route(StrEnum):
    """How a model would be used."""

    LOCAL = "local"  # weights on the user's own hardware
    API = "api"  # a hosted API


@dataclass(frozen=True)
class Candidate:
    """A card on one route, with the estimates the rules need."""

    card: ModelCard
    route: Route
    req: Requirements
    fit: Fit | None  # local route only
    monthly_cost: float | None  # API route only
    one_off_cost: float | None  # API route, embedding a corpus once
    latency_ms: float | None  # local route only
    day: date  # API life cycles are judged on this day

    @property
    def hosted(self) -> bool:
        """Some API still serves the model on the candidate's day."""
        return self.card.availability.hosted_on(self.day)


@dataclass(frozen=True)
class Score:
    """A soft criterion's verdict: a value in [0, 1] and what to tell the user."""

    value: float
    why: str | None = None
    tradeoff: str | None = None


Constraint = Callable[[Candidate], str | None]
Criterion = Callable[[Candidate], Score | None]


@dataclass(frozen=True)
class Weighted:
    """A soft criterion and how much it counts; called like the rule itself."""

    rule: Criterion
    weight: float

    def __call__(self, candidate: Candidate) -> Score | None:
        return self.rule(candidate)


def _adopt(name: str, member: object) -> Weighted:
    if not isinstance(member, Weighted):
        raise TypeError(f"{member!r} is not a fondasi.recommend.criteria.Weighted rule")
    if not member.weight > 0:
        raise ValueError(f"criterion {name!r} needs a positive weight, not {member.weight}")
    return member


CONSTRAINTS: list[Constraint] = []
CRITERIA: Registry[Weighted] = Registry(
    "recommend criterion", group="fondasi.recommend_criteria", adopt=_adopt
)

# How much each soft criterion counts. Quality and language dominate: a cheap model
# that cannot do the job is no bargain.
WEIGHTS: dict[str, float] = {
    "quality": 3.0,
    "language": 2.5,
    "specialist": 2.0,
    "cost": 1.5,
    "latency": 1.5,
    "throughput": 1.5,
    "deployment": 1.0,
    "lifecycle": 1.0,
    "headroom": 0.5,
    "ready": 0.5,
}

INDEXING_HOURS_OK = 24.0  # embedding a corpus overnight is fine; a week is not
DOMAIN_TASKS = {Task.BIOMEDICAL, Task.LEGAL, Task.FINANCE, Task.CODE}
LANGUAGE_VALUE = {
    IndonesianSupport.STRONG: 1.0,
    IndonesianSupport.USABLE: 0.7,
    IndonesianSupport.WEAK: 0.15,
    IndonesianSupport.NONE: 0.0,
}


def constraint(rule: Constraint) -> Constraint:
    """Register a hard constraint: it returns why a candidate is out, or None."""
    CONSTRAINTS.append(rule)
    return rule


def criterion(name: str, weight: float | None = None) -> Callable[[Criterion], Criterion]:
    """Register a soft criterion; its weight is ``weight`` or the one in ``WEIGHTS``."""
    if weight is None and name not in WEIGHTS:
        raise KeyError(f"criterion {name!r} has no weight in WEIGHTS")
    counts = WEIGHTS[name] if weight is None else weight

    def register(rule: Criterion) -> Criterion:
        CRITERIA.register(name, Weighted(rule, counts))
        return rule

    return register


def money(usd: float) -> str:
    """Dollars, rounded for reading."""
    return f"${usd:,.0f}" if usd >= 10 else f"${usd:,.2f}"


# --- hard constraints -------------------------------------------------------------------


@constraint
def route_exists(c: Candidate) -> str | None:
    """The model can be had this way at all."""
    avail = c.card.availability
    if c.route == Route.LOCAL and not c.card.runs_locally:
        return avail.other or "no downloadable weights"
    if c.route == Route.API and not c.hosted:
        if avail.api:
            return "its API has been retired by the provider"
        return avail.other or "no hosted API in the catalog"
    return None


@constraint
def data_may_leave(c: Candidate) -> str | None:
    """Cloud APIs are out when data must stay local."""
    if c.route != Route.API:
        return None
    if c.req.privacy == Privacy.HIGH:
        return "cloud API only, and privacy is high: data may not leave your machines"
    if c.req.offline:
        return "cloud API only, and it must run offline"
    if c.req.deploy == Deploy.LOCAL:
        return "cloud API only, and you asked for local deployment"
    return None


@constraint
def cloud_requested(c: Candidate) -> str | None:
    """Self-hosting is out when the user asked for a cloud API."""
    if c.route == Route.LOCAL and c.req.deploy == Deploy.CLOUD:
        return "no hosted API, and you asked for cloud deployment"
    return None


@constraint
def fits_memory(c: Candidate) -> str | None:
    """Local models must fit in RAM or VRAM."""
    if c.route != Route.LOCAL or c.fit is None or c.fit.fits:
        return None
    if c.fit.need_gb is None:
        return "its memory need is unknown (parameter count not published)"
    where = "VRAM or usable RAM" if c.fit.on_gpu else "usable RAM"
    return (
        f"needs ~{c.fit.need_gb:g} GB even quantised; you have {c.fit.capacity_gb:.1f} GB {where}"
    )


@constraint
def licence_allows(c: Candidate) -> str | None:
    """Commercial use must be allowed by the weights' licence (API terms allow it)."""
    if c.req.license != LicenseNeed.COMMERCIAL or c.route != Route.LOCAL:
        return None
    lic = c.card.license
    if lic.commercial_use is False:
        return f"licence {lic.name} does not allow commercial use"
    if lic.commercial_use is None:
        return f"licence {lic.name} does not clearly allow commercial use"
    return None


@constraint
def speaks_language(c: Candidate) -> str | None:
    """An English-only model cannot serve Indonesian text."""
    if c.req.lang == "id" and c.card.indonesian == IndonesianSupport.NONE:
        return "trained for English only; you need Indonesian"
    return None


@constraint
def within_budget(c: Candidate) -> str | None:
    """API costs must fit the monthly budget."""
    budget = c.req.budget_usd_per_month
    if c.route != Route.API or budget is None or c.monthly_cost is None:
        return None
    if c.monthly_cost > budget:
        return (
            f"~{money(c.monthly_cost)}/month at {c.req.requests_per_day:,} requests/day "
            f"exceeds your {money(budget)} budget"
        )
    spread = (c.one_off_cost or 0) / AMORTISE_MONTHS
    if c.monthly_cost + spread > budget:
        return (
            f"~{money(c.monthly_cost)}/month plus ~{money(c.one_off_cost or 0)} to embed the "
            f"corpus (over {AMORTISE_MONTHS} months) exceeds your {money(budget)} budget"
        )
    return None


# --- soft criteria ----------------------------------------------------------------------


@criterion("quality")
def quality(c: Candidate) -> Score:
    """Stronger models answer better."""
    tier = c.card.capability
    why = {5: "frontier quality for its kind", 4: "strong quality for its kind"}.get(tier)
    tradeoff = "small model: expect weaker answers on hard inputs" if tier <= 2 else None
    return Score((tier - 1) / 4, why, tradeoff)


@criterion("language")
def language(c: Candidate) -> Score | None:
    """The model must handle the user's language."""
    if c.req.lang == "id":
        support = c.card.indonesian
        if support is None:
            return Score(0.3, tradeoff="Indonesian support is not documented: test it first")
        why = {
            IndonesianSupport.STRONG: "trained and evaluated on Indonesian",
            IndonesianSupport.USABLE: "multilingual training includes Indonesian",
        }.get(support)
        tradeoff = (
            "English-first: Indonesian output is weaker; check with `fondasi eval`, add "
            "Indonesian few-shot examples or fine-tune with LoRA on Indonesian data"
            if support == IndonesianSupport.WEAK
            else None
        )
        return Score(LANGUAGE_VALUE[support], why, tradeoff)
    if c.req.lang == "en":
        english = not c.card.languages or {"en", "multi"} & set(c.card.languages)
        return Score(1.0 if english else 0.4)
    return None


@criterion("specialist")
def specialist(c: Candidate) -> Score | None:
    """Domain tasks favour models trained on that domain."""
    if c.req.task not in DOMAIN_TASKS:
        return None
    if c.card.kind == Kind.DOMAIN:
        return Score(1.0, why=f"specialist trained for {c.req.task.value}")
    return Score(
        0.3, tradeoff=f"generalist: verify its {c.req.task.value} answers against your own data"
    )


@criterion("cost")
def cost(c: Candidate) -> Score:
    """Cheaper is better; local models have no per-call cost."""
    if c.route == Route.LOCAL:
        return Score(1.0, why="no per-call cost: runs on your own hardware")
    if c.monthly_cost is None:
        return Score(0.3, tradeoff="price not known for this volume")
    budget = c.req.budget_usd_per_month
    monthly = c.monthly_cost + (c.one_off_cost or 0) / AMORTISE_MONTHS
    value = 1 - monthly / budget if budget else 1 / (1 + monthly / 100)
    why = f"~{money(c.monthly_cost)}/month at {c.req.requests_per_day:,} requests/day"
    tradeoff = None
    if c.one_off_cost:
        tradeoff = f"embedding {c.req.documents:,} documents once costs ~{money(c.one_off_cost)}"
        if budget is not None and c.one_off_cost > budget:
            tradeoff += f", more than one month's {money(budget)} budget"
    return Score(max(value, 0.0), why, tradeoff)


@criterion("latency")
def latency(c: Candidate) -> Score | None:
    """Meet the latency target when one is given."""
    target = c.req.latency_ms
    if target is None:
        return None
    if c.route == Route.API or c.latency_ms is None:
        return Score(0.6, tradeoff="latency depends on the provider and network: measure it")
    estimate = f"~{c.latency_ms:,.0f} ms per request (rule-of-thumb estimate)"
    if c.latency_ms <= target:
        return Score(1.0, why=estimate)
    return Score(target / c.latency_ms, tradeoff=f"{estimate}, above your {target:,} ms target")


@criterion("throughput")
def throughput(c: Candidate) -> Score | None:
    """A corpus must be embeddable in reasonable time on the hardware at hand."""
    docs = c.req.documents
    if c.route != Route.LOCAL or not docs or c.req.task != Task.EMBEDDINGS or c.fit is None:
        return None
    hours = local_indexing_hours(c.card, docs, c.fit.on_gpu)
    if hours is None:
        return None
    return Score(min(1.0, INDEXING_HOURS_OK / hours) if hours else 1.0)


@criterion("deployment")
def deployment(c: Candidate) -> Score | None:
    """Match the deployment the user prefers; both routes suit a hybrid."""
    deploy = c.req.deploy
    if deploy is None or c.req.local_only:
        return None
    both = c.card.runs_locally and c.hosted
    if deploy == Deploy.HYBRID:
        why = "usable both ways: local for sensitive data, API for scale" if both else None
        return Score(1.0 if both else 0.6, why)
    return Score(1.0 if (deploy == Deploy.CLOUD) == (c.route == Route.API) else 0.5)


@criterion("lifecycle")
def lifecycle(c: Candidate) -> Score | None:
    """A deprecated API still works, but not for long."""
    if c.route != Route.API:
        return None
    offer = c.card.availability.live_offer(c.day)
    if offer is None or offer.shutdown is None:
        return Score(1.0)
    return Score(
        0.3,
        tradeoff=f"{offer.provider} deprecated {offer.model}: it shuts down on {offer.shutdown}; "
        "plan the move to its successor",
    )


@criterion("headroom")
def headroom(c: Candidate) -> Score | None:
    """Local models that leave memory free run more smoothly."""
    fit = c.fit
    if c.route != Route.LOCAL or fit is None or not fit.fits or fit.need_gb is None:
        return None
    device = "GPU" if fit.on_gpu else "RAM"
    precision = "16-bit" if fit.bits == 16 else "4-bit"
    why = (
        f"fits in ~{fit.need_gb:g} GB {device} at {precision} (of {fit.capacity_gb:.1f} GB usable)"
    )
    tradeoff = "4-bit quantisation costs a little quality" if fit.bits == 4 else None
    return Score(max(0.0, 1 - fit.need_gb / fit.capacity_gb), why, tradeoff)


@criterion("ready")
def ready(c: Candidate) -> Score | None:
    """Weights that ship in a pip package work offline with no download."""
    if c.route != Route.LOCAL:
        return None
    if c.card.bundled:
        return Score(1.0, why="weights ship in a pip package: works offline right now")
    return Score(0.5)
