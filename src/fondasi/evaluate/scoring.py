"""From records to results: metrics, intervals, costs, the paired test and the verdict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fondasi.evaluate.results import (
    CandidateResult,
    Interval,
    Latency,
    Significance,
)
from fondasi.evaluate.stats import bootstrap, paired_test, percentile

if TYPE_CHECKING:
    from fondasi.evaluate.execution import CandidateRun
    from fondasi.evaluate.metrics import Chosen
    from fondasi.evaluate.tasks import Context, Task
    from fondasi.settings import Settings

ALPHA = 0.05


def _read(chosen: Chosen, records: Sequence[dict[str, Any]]) -> list[Any]:
    field = "judge" if chosen.metric.reads == "judge" else "output"
    return [row.get(field) for row in records]


def score(
    task: Task,
    chosen: Sequence[Chosen],
    references: Sequence[Any],
    records: Sequence[dict[str, Any]],
    *,
    rounds: int,
    seed: int,
) -> tuple[dict[str, float], Interval | None, dict[str, Any]]:
    """Every metric, the headline's interval, and the task's detail views."""
    values = {c.name: c(references, _read(c, records)) for c in chosen}
    head = chosen[0]
    interval = bootstrap(head, references, _read(head, records), rounds, seed)
    outputs = [row.get("output") for row in records]
    found = (
        Interval(low=interval.low, high=interval.high, level=interval.level) if interval else None
    )
    return values, found, task.details(references, outputs)


def accounting(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Latency percentiles, tokens, cost and failures of a candidate's records."""
    seconds = [float(r["seconds"]) for r in records if r.get("seconds") is not None]
    tokens = [int(r["tokens"]) for r in records if r.get("tokens") is not None]
    costs = [float(r["cost_usd"]) for r in records if r.get("cost_usd") is not None]
    errors = [str(r["error"]) for r in records if r.get("error")]
    return {
        "latency": Latency(
            p50=percentile(seconds, 50),
            p95=percentile(seconds, 95),
            mean=sum(seconds) / len(seconds) if seconds else None,
        ),
        "tokens": sum(tokens) if tokens else None,
        "cost_usd": sum(costs) if costs else None,
        "failures": len(errors),
        "errors": list(dict.fromkeys(errors))[:5],
        "seconds": sum(seconds),
    }


def notes_for(result: CandidateResult, task: Task) -> list[str]:
    """Warnings in words: total failure, labels never predicted, answers outside the set."""
    notes = []
    if result.failures and result.failures == result.examples:
        notes.append(f"failed on every example: {result.errors[0] if result.errors else '?'}")
    elif result.failures:
        notes.append(f"failed on {result.failures} of {result.examples} examples")
    never = result.details.get("never_predicted") or []
    if never and result.failures < result.examples:
        notes.append(f"never predicted: {', '.join(never)}")
    outside = result.details.get("outside_labels") or []
    if outside:
        notes.append(f"answered labels not in the references: {', '.join(outside[:5])}")
    return notes


def significance(
    ranked: Sequence[CandidateResult],
    outputs: dict[str, list[Any]],
    head: Chosen,
    references: Sequence[Any],
    rounds: int,
    seed: int,
) -> Significance | None:
    """A paired test between the two best candidates."""
    if len(ranked) < 2 or rounds < 1 or len(references) < 2:
        return None
    a, b = ranked[0], ranked[1]
    test = paired_test(head, references, outputs[a.name], outputs[b.name], rounds, seed)
    return Significance(
        a=a.name,
        b=b.name,
        metric=head.name,
        difference=test.difference,
        p_value=test.p_value,
        rounds=test.rounds,
        method=test.method,
        significant=test.p_value < ALPHA,
    )


def _fmt(value: float, head: Chosen) -> str:
    return f"{value:.1f}" if head.metric.scale == 100 else f"{value:.3f}"


def verdict(
    ranked: Sequence[CandidateResult], head: Chosen, test: Significance | None
) -> list[str]:
    """What the run shows, in sentences a person can act on."""
    if not ranked:
        return []
    name = head.name
    said = []
    best = ranked[0]
    ci = f" (95% CI {_fmt(best.ci.low, head)}–{_fmt(best.ci.high, head)})" if best.ci else ""
    said.append(f"Best on {name}: {best.name}, {_fmt(best.metrics[name], head)}{ci}.")
    models = [c for c in ranked if c.kind == "model" and c.failures < c.examples]
    baselines = [c for c in ranked if c.kind == "baseline"]
    if baselines and models:
        top_model, top_base = models[0], baselines[0]
        gap = top_model.metrics[name] - top_base.metrics[name]
        if gap < 0:
            said.append(
                f"A baseline wins: {top_base.name} ({_fmt(top_base.metrics[name], head)}) scores "
                f"above every pre-trained model candidate (best: {top_model.name}, "
                f"{_fmt(top_model.metrics[name], head)}). Unless the models bring something this "
                "score does not measure, the baseline is the cheaper choice on this data."
            )
        else:
            said.append(
                f"The best model candidate, {top_model.name}, beats the strongest baseline "
                f"({top_base.name}, {_fmt(top_base.metrics[name], head)}) by "
                f"{_fmt(gap, head)} {name}."
            )
    elif baselines and not models:
        said.append("Every model candidate failed; only the baselines have scores.")
    if test is not None:
        judged = (
            "significant at the 5% level"
            if test.significant
            else "not significant at the 5% level: this test set cannot tell them apart"
        )
        said.append(
            f"{test.a} vs {test.b}: {name} differs by {_fmt(test.difference, head)}, "
            f"p = {test.p_value:.3f} ({test.method}, {test.rounds} rounds), {judged}."
        )
    for result in ranked:
        if result.failures == result.examples and result.examples:
            said.append(f"{result.name} failed on every example: {result.errors[0]}.")
    priced = [c for c in models if c.cost_usd is not None and c.cost_usd > 0]
    if len(priced) >= 2:
        cheapest = min(priced, key=lambda c: c.cost_usd or 0.0)
        said.append(f"Cheapest model candidate: {cheapest.name} (${cheapest.cost_usd:.2g} in all).")
    return said


def scored(
    task: Task,
    chosen: list[Chosen],
    context: Context,
    runs: list[CandidateRun],
    settings: Settings,
) -> tuple[list[CandidateResult], Any]:
    """Each run's results, best first, and the paired test between the top two."""
    config = context.config
    references = [example.fields[task.reference_field] for example in context.test]
    results_list: list[CandidateResult] = []
    head_outputs: dict[str, list[Any]] = {}
    field = "judge" if chosen[0].metric.reads == "judge" else "output"
    for run in runs:
        reprice(run.records, settings.hardware_usd_per_hour)
        values, interval, details = score(
            task, chosen, references, run.records, rounds=config.bootstrap, seed=config.seed
        )
        spent = accounting(run.records)
        is_base = run.spec.model.startswith("baseline:")
        throughput = None
        succeeded = len(run.records) - spent["failures"]
        if run.computed and run.wall_seconds > 0 and succeeded:
            throughput = min(run.computed, succeeded) / run.wall_seconds
        elif spent["seconds"] > 0:
            throughput = succeeded / spent["seconds"]
        result = CandidateResult(
            name=run.spec.label,
            kind="baseline" if is_base else "model",
            model=None if is_base else run.spec.model,
            approach="baseline" if is_base else run.spec.approach,
            spec=None if is_base else run.spec.model_dump(mode="json", exclude_defaults=True),
            metrics=values,
            ci=interval,
            examples=len(run.records),
            failures=spent["failures"],
            errors=spent["errors"],
            computed=run.computed,
            cached=run.cached,
            latency=spent["latency"],
            throughput=throughput,
            load_seconds=run.load_seconds,
            tokens=spent["tokens"],
            cost_usd=spent["cost_usd"],
            details=details,
        )
        result.notes = notes_for(result, task)
        results_list.append(result)
        head_outputs[result.name] = [row.get(field) for row in run.records]
    head = chosen[0]
    ranked = sorted(results_list, key=lambda r: (r.failures == r.examples, -r.metrics[head.name]))
    test = significance(
        ranked, head_outputs, head, references, min(config.bootstrap, 1000), config.seed
    )
    return ranked, test


def reprice(records: list[dict[str, Any]], usd_per_hour: float) -> None:
    """Local calls cost their time at today's hardware rate, cached ones included."""
    from fondasi.costs import local_cost

    for row in records:
        if row.get("local") and row.get("seconds") is not None:
            row["cost_usd"] = local_cost(float(row["seconds"]), usd_per_hour)
