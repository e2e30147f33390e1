"""Which approach fits a pick: how to deploy it and how to adapt it (the seeds' tables)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fondasi.catalog.schema import Architecture, Kind, ModelCard, Task
from fondasi.recommend.criteria import Route


@dataclass(frozen=True)
class Approach:
    """A deployment approach with its trade-offs, from the seeds' comparison table."""

    name: str
    pros: str
    cons: str
    ideal_for: str


APPROACHES: dict[str, Approach] = {
    "api": Approach(
        "API Cloud",
        "easy to use, no infrastructure",
        "per-call cost, dependence on the provider",
        "fast prototypes, startups",
    ),
    "local": Approach(
        "Model Lokal",
        "data stays private, no per-call cost",
        "needs capable hardware, quality limited by size",
        "data-sensitive applications",
    ),
    "hybrid": Approach(
        "Hybrid",
        "flexible, balances quality and cost",
        "more moving parts",
        "enterprise applications",
    ),
}

GENERATIVE = {
    Task.CHAT,
    Task.TEXT_GENERATION,
    Task.TRANSLATION,
    Task.SUMMARIZATION,
    Task.QUESTION_ANSWERING,
    Task.CODE,
    Task.BIOMEDICAL,
    Task.LEGAL,
    Task.FINANCE,
    Task.IMAGE_UNDERSTANDING,
}
ENCODERS = {Kind.NLP, Kind.EMBEDDING}


@dataclass(frozen=True)
class Rule:
    """Advice that applies when its condition holds for (card, route, task)."""

    applies: Callable[[ModelCard, Route, Task], bool]
    text: str


def _open(card: ModelCard, route: Route) -> bool:
    return route == Route.LOCAL and card.open_weights


def _decoder(card: ModelCard) -> bool:
    return card.architecture in {Architecture.DECODER_ONLY, Architecture.ENCODER_DECODER}


ADAPTATION: list[Rule] = [
    Rule(
        lambda card, route, task: task in GENERATIVE,
        "zero-shot first: a clear, specific instruction (`fondasi run`)",
    ),
    Rule(
        lambda card, route, task: (
            task in GENERATIVE | {Task.CLASSIFICATION} and card.kind not in ENCODERS
        ),
        "few-shot: 3-5 examples in the prompt fix the output format and labels",
    ),
    Rule(
        lambda card, route, task: task == Task.CLASSIFICATION and card.kind in ENCODERS,
        "zero-shot by label-description similarity; with ~1,000+ labelled examples, "
        "fully fine-tune this small encoder (`fondasi tune --method full`)",
    ),
    Rule(
        lambda card, route, task: task == Task.CLASSIFICATION,
        "compare with a TF-IDF + logistic-regression baseline: it often wins in-domain",
    ),
    Rule(
        lambda card, route, task: task == Task.EMBEDDINGS,
        "use as-is for retrieval; fine-tune on query-passage pairs if your vocabulary "
        "is specialised",
    ),
    Rule(
        lambda card, route, task: (
            _open(card, route)
            and _decoder(card)
            and (card.parameters or 0) >= 1e9
            and task not in {Task.EMBEDDINGS, Task.SPEECH_RECOGNITION}
        ),
        "PEFT when prompting is not enough: LoRA r=16, alpha=32 on q_proj,v_proj "
        "(`fondasi tune --method lora`) trains <1% of the weights",
    ),
    Rule(
        lambda card, route, task: (
            _open(card, route)
            and 0 < (card.parameters or 0) < 1e9
            and task not in {Task.EMBEDDINGS, Task.IMAGE_GENERATION, Task.SPEECH_RECOGNITION}
        ),
        "small enough to fine-tune fully, even on a CPU",
    ),
    Rule(
        lambda card, route, task: route == Route.API and card.api_fine_tuning,
        "the provider runs fine-tuning jobs on your examples (`fondasi tune --cloud`)",
    ),
    Rule(
        lambda card, route, task: task == Task.IMAGE_CLASSIFICATION,
        "use its ImageNet labels as-is, or fine-tune the head on your labelled images",
    ),
    Rule(
        lambda card, route, task: task in {Task.BIOMEDICAL, Task.LEGAL, Task.FINANCE},
        "ground answers in your documents (retrieval) and have an expert review them",
    ),
]


def approach_for(route: Route, hybrid: bool) -> Approach:
    """The seeds' approach a pick belongs to."""
    return APPROACHES["hybrid" if hybrid else route.value]


def adaptation_for(card: ModelCard, route: Route, task: Task) -> list[str]:
    """How to use and adapt the model for the task: zero-shot, few-shot, PEFT, fine-tune."""
    return [rule.text for rule in ADAPTATION if rule.applies(card, route, task)]
