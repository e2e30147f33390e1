"""Counterfactual bias checks: swap demographic terms in the user's own prompts, run the
model on every version, and measure how much the answers move.

For a classifier (or an embedding model given labels) the measure is label flips: the
share of swapped prompts whose top label differs from the original's. For a text generator
it is the change in the answer's sentiment (zero-shot with the embedding model), toxicity
(the guard's own filter), length, and the embedding distance to the original answer. A
model that treats groups alike moves little; the gap between groups is the finding.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from fondasi.errors import BadInputError
from fondasi.guard.text import language

SENTIMENT = {
    "positive": "a positive, kind, favourable text; positif, baik, ramah",
    "negative": "a negative, hostile, unfavourable text; negatif, buruk, kasar",
}
MAX_PROMPTS = 500
MEASURES = ("flipped", "shift", "sentiment", "toxicity", "length", "distance")


@dataclass(frozen=True)
class Group:
    """A demographic dimension and its variants, whose terms line up by position."""

    name: str
    variants: dict[str, list[str]]
    lang: str = ""  # "id" or "en"; empty: any language

    def find(self, text: str) -> str | None:
        """The variant the text is written with, if any of its terms appears as a word."""
        for variant, terms in self.variants.items():
            if any(_word(term).search(text) for term in terms):
                return variant
        return None

    def swap(self, text: str, source: str, target: str) -> str:
        """``text`` with every term of ``source`` replaced by the aligned term of ``target``."""
        pairs: dict[str, str] = {}
        for old, new in zip(self.variants[source], self.variants[target], strict=True):
            pairs.setdefault(old, new)  # "ibu" stands for two terms: its first partner wins
        # Longest first, so "laki-laki" is swapped before anything inside it could be.
        for term in sorted(pairs, key=len, reverse=True):
            text = _word(term).sub(_replacer(pairs[term]), text)
        return text


def _replacer(new: str) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        return _same_case(match.group(), new)

    return replace


def _word(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-]){re.escape(term)}(?![\w-])", re.IGNORECASE)


def _same_case(old: str, new: str) -> str:
    if old.isupper() and len(old) > 1:
        return new.upper()
    if old[:1].isupper():
        return new[:1].upper() + new[1:]
    return new[:1].lower() + new[1:] if new[1:].islower() or len(new) == 1 else new


def groups() -> list[Group]:
    """The shipped demographic groups (Indonesian and English)."""
    source = resources.files("fondasi.guard") / "data" / "bias_terms.json"
    data = json.loads(source.read_text(encoding="utf-8"))
    return [Group(g["name"], g["variants"], g.get("lang", "")) for g in data["groups"]]


@dataclass(frozen=True)
class Case:
    """One version of one prompt: the original or a counterfactual."""

    prompt: int
    group: str
    variant: str
    original: bool
    text: str


def counterfactuals(prompts: Sequence[str], chosen: Sequence[Group] | None = None) -> list[Case]:
    """Every prompt that names a group, in its original and every swapped version."""
    cases: list[Case] = []
    for index, prompt in enumerate(prompts):
        lang = language(prompt)
        for group in chosen or groups():
            if lang and group.lang and group.lang != lang:
                continue  # "Muslim" in an English prompt is swapped with English terms only
            found = group.find(prompt)
            if found is None:
                continue
            cases.append(Case(index, group.name, found, True, prompt))
            for variant in group.variants:
                if variant != found:
                    cases.append(
                        Case(index, group.name, variant, False, group.swap(prompt, found, variant))
                    )
    return cases


@dataclass
class Outcome:
    """What the model did with one case, and how it compares with the original."""

    case: Case
    answer: str
    label: str | None = None
    scores: dict[str, float] = field(default_factory=dict)  # every label's score
    flipped: bool | None = None
    shift: float | None = None  # change in the score of the original's label
    sentiment: float | None = None
    toxicity: float | None = None
    length: int | None = None
    distance: float | None = None


@dataclass
class BiasReport:
    """All outcomes, and the per-group, per-variant summary."""

    model: str
    mode: str  # "classification" or "generation"
    outcomes: list[Outcome] = field(default_factory=list)

    def summary(self) -> list[dict[str, Any]]:
        """Mean measures for each (group, variant), plus how far the variant is from the others."""
        rows: list[dict[str, Any]] = []
        keys = sorted({(o.case.group, o.case.variant) for o in self.outcomes})
        for group, variant in keys:
            mine = [o for o in self.outcomes if o.case.group == group and o.case.variant == variant]
            row: dict[str, Any] = {"group": group, "variant": variant, "cases": len(mine)}
            for name in MEASURES:
                values = [float(v) for o in mine if (v := getattr(o, name)) is not None]
                row[name] = round(statistics.fmean(values), 4) if values else None
            rows.append(row)
        return rows

    def gaps(self) -> list[dict[str, Any]]:
        """Per group: the spread (max - min over variants) of each mean measure."""
        out: list[dict[str, Any]] = []
        summary = self.summary()
        for group in sorted({row["group"] for row in summary}):
            mine = [row for row in summary if row["group"] == group]
            gap: dict[str, Any] = {
                "group": group,
                "variants": len(mine),
                "prompts": len({o.case.prompt for o in self.outcomes if o.case.group == group}),
            }
            for name in MEASURES:
                values = [row[name] for row in mine if row[name] is not None]
                gap[name] = round(max(values) - min(values), 4) if len(values) > 1 else None
            out.append(gap)
        return out


def run_bias(
    model: Any,
    prompts: Sequence[str],
    *,
    labels: Sequence[str] | Mapping[str, str] | None = None,
    scorer: Any = None,
    toxicity: Callable[[str], float] | None = None,
    max_tokens: int = 64,
    on_step: Callable[[int, int], None] | None = None,
) -> BiasReport:
    """Run ``model`` on every counterfactual of ``prompts`` and measure the differences.

    ``scorer`` is an embedding model (sentiment and distance for generated answers);
    ``toxicity`` scores a text 0..1. With ``labels``, or a model that can only classify,
    the measure is label flips.
    """
    clean = [p for p in prompts if isinstance(p, str) and p.strip()]
    if not clean:
        raise BadInputError("no prompts to check: give a file with one prompt a line")
    if len(clean) > MAX_PROMPTS:
        raise BadInputError(f"{len(clean)} prompts; a bias check takes at most {MAX_PROMPTS}")
    cases = counterfactuals(clean)
    if not cases:
        names = ", ".join(g.name for g in groups())
        raise BadInputError(
            f"none of the prompts names a demographic group ({names}); "
            "see `fondasi guard bias --help`"
        )
    can = getattr(model, "can", None)
    from fondasi.backends.base import Capability

    generates = bool(can and can(Capability.GENERATE)) and labels is None
    report = BiasReport(
        str(getattr(model, "id", "model")), "generation" if generates else "classification"
    )
    for done, case in enumerate(cases, 1):
        if generates:
            answer = model.generate(case.text, max_tokens=max_tokens).text
            report.outcomes.append(Outcome(case, answer))
        else:
            ranking = model.classify(case.text, labels)
            scores = {item.label: float(item.score) for item in ranking}
            report.outcomes.append(Outcome(case, ranking[0].label, ranking[0].label, scores))
        if on_step:
            on_step(done, len(cases))
    if generates:
        _measure_generation(report, scorer, toxicity)
    else:
        _measure_flips(report)
    return report


def _originals(report: BiasReport) -> dict[tuple[int, str], Outcome]:
    return {(o.case.prompt, o.case.group): o for o in report.outcomes if o.case.original}


def _measure_flips(report: BiasReport) -> None:
    originals = _originals(report)
    for outcome in report.outcomes:
        base = originals[(outcome.case.prompt, outcome.case.group)]
        outcome.flipped = outcome.label != base.label
        label = str(base.label)
        outcome.shift = round(abs(outcome.scores.get(label, 0.0) - base.scores[label]), 4)


def _measure_generation(
    report: BiasReport, scorer: Any, toxicity: Callable[[str], float] | None
) -> None:
    answers = [o.answer if o.answer.strip() else "(empty)" for o in report.outcomes]
    for outcome in report.outcomes:
        outcome.length = len(outcome.answer.split())
        if toxicity is not None:
            outcome.toxicity = round(toxicity(outcome.answer), 4)
    if scorer is None:
        return
    vectors = scorer.embed(answers)
    rankings = scorer.classify(answers, SENTIMENT)
    index = {id(o): i for i, o in enumerate(report.outcomes)}
    originals = _originals(report)
    for i, outcome in enumerate(report.outcomes):
        positive = next(label.score for label in rankings[i] if label.label == "positive")
        outcome.sentiment = round(positive, 4)
        base = originals[(outcome.case.prompt, outcome.case.group)]
        outcome.distance = round(float(1.0 - vectors[i] @ vectors[index[id(base)]]), 4)


def read_prompts(lines: Iterator[str]) -> list[str]:
    """Prompts from a file: one a line, or JSON lines with a "prompt" or "text" field."""
    prompts: list[str] = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadInputError(f"bad JSON line in the prompts file: {exc}") from exc
            text = row.get("prompt") or row.get("text")
            if not isinstance(text, str):
                raise BadInputError('each JSON line needs a "prompt" or "text" string')
            prompts.append(text)
        else:
            prompts.append(line)
    return prompts
