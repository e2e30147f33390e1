"""What a run writes: ``results.json`` (a versioned schema), ``examples.jsonl``, and diffs.

``results.json`` carries ``schema_version``; readers refuse versions they do not know
rather than guess. ``examples.jsonl`` has one line per candidate × example with the input,
reference, output, score, latency, tokens, cost and error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fondasi.errors import BadInputError

SCHEMA_VERSION = 1


class Latency(BaseModel):
    """Seconds per example (batched calls share their time out evenly)."""

    model_config = ConfigDict(extra="forbid")

    p50: float | None = Field(default=None, description="Median seconds per example.")
    p95: float | None = Field(default=None, description="95th percentile seconds per example.")
    mean: float | None = Field(default=None, description="Mean seconds per example.")


class Interval(BaseModel):
    """A bootstrap confidence interval of the headline metric."""

    model_config = ConfigDict(extra="forbid")

    low: float
    high: float
    level: float = Field(description="0.95 for a 95% interval.")


class CandidateResult(BaseModel):
    """One candidate's scores and costs."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="As shown in the report.")
    kind: Literal["model", "baseline"]
    model: str | None = Field(default=None, description="Model id (None for baselines).")
    approach: str = Field(description="zero-shot, few-shot k=3 balanced, tuned, a baseline ...")
    spec: dict[str, Any] | None = Field(default=None, description="The candidate's config.")
    metrics: dict[str, float] = Field(description="Metric name -> value.")
    ci: Interval | None = Field(default=None, description="Interval of the headline metric.")
    examples: int
    failures: int = Field(description="Examples where the call raised an error.")
    errors: list[str] = Field(default_factory=list, description="Distinct error messages.")
    computed: int = Field(default=0, description="Examples predicted in this run.")
    cached: int = Field(default=0, description="Examples read from the cache.")
    latency: Latency = Field(default_factory=Latency)
    throughput: float | None = Field(default=None, description="Examples per second.")
    load_seconds: float | None = Field(default=None, description="Time to load the model.")
    tokens: int | None = Field(default=None, description="Prompt + completion tokens, if known.")
    cost_usd: float | None = Field(default=None, description="API price or local hardware time.")
    details: dict[str, Any] = Field(default_factory=dict, description="Per class, confusion ...")
    notes: list[str] = Field(default_factory=list, description="Warnings in words.")


class Significance(BaseModel):
    """A paired test between the two best candidates."""

    model_config = ConfigDict(extra="forbid")

    a: str
    b: str
    metric: str
    difference: float
    p_value: float
    rounds: int
    method: str
    significant: bool = Field(description="p < 0.05.")


class CurvePoint(BaseModel):
    """A series at one number of labelled examples: the mean over draws and its interval."""

    model_config = ConfigDict(extra="forbid")

    size: int
    value: float
    low: float | None = None
    high: float | None = None
    draws: list[float] = Field(default_factory=list, description="The metric on each sample.")


class CurveSeries(BaseModel):
    """One candidate or baseline across the sizes; ``learns`` False: a flat reference line."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Literal["model", "baseline"]
    learns: bool
    points: list[CurvePoint]


class Curve(BaseModel):
    """Quality against the number of labelled examples, on the run's test examples."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    sizes: list[int]
    draws: int
    train_rows: int
    series: list[CurveSeries]
    summary: list[str] = Field(default_factory=list, description="What the curve shows.")


class Results(BaseModel):
    """Everything a run found (schema version 1)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    kind: Literal["fondasi.eval"] = "fondasi.eval"
    fondasi_version: str
    created: str = Field(description="UTC time, ISO 8601.")
    name: str
    task: str
    headline: str = Field(description="The metric that ranks candidates.")
    metrics: list[str]
    seed: int
    data: dict[str, Any] = Field(description="Files, row counts and how train was made.")
    labels: list[str] = Field(default_factory=list)
    candidates: list[CandidateResult] = Field(description="Best first by the headline metric.")
    significance: Significance | None = None
    verdict: list[str] = Field(description="What the run shows, in sentences.")
    judge_prompt: str | None = None
    curve: Curve | None = None
    config: dict[str, Any]


def write(out: Path, results: Results, rows: list[dict[str, Any]]) -> None:
    """results.json and examples.jsonl into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(results.model_dump_json(indent=2) + "\n", encoding="utf-8")
    with (out / "examples.jsonl").open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def read(run: Path) -> Results:
    """A run's results, from its folder or its results.json."""
    path = run / "results.json" if run.is_dir() else run
    if not path.is_file():
        raise BadInputError(f"no results.json at {run}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path}: not valid JSON ({exc.msg})") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != SCHEMA_VERSION:
        raise BadInputError(
            f"{path}: results schema version {version!r}; this fondasi reads {SCHEMA_VERSION}"
        )
    return Results.model_validate(data)


def read_examples(run: Path) -> list[dict[str, Any]]:
    """A run's examples.jsonl rows (empty when the file is missing)."""
    path = (run if run.is_dir() else run.parent) / "examples.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


class RunSummary(BaseModel):
    """One run folder, as a list of runs (the server's dashboard) shows it."""

    folder: Path
    name: str
    task: str
    created: str
    headline: str
    best: str | None = Field(default=None, description="The best candidate's name.")
    best_value: float | None = None
    candidates: int = 0
    report: Path | None = Field(default=None, description="report.html, when it exists.")


def list_runs(evals: Path) -> list[RunSummary]:
    """Runs under a folder (default layout: FONDASI_HOME/evals/*/results.json), newest first.

    Folders whose results.json is missing, malformed or of another schema are skipped.
    """
    found = []
    for path in sorted(evals.glob("*/results.json")):
        try:
            results = read(path)
        except (BadInputError, ValueError):
            continue
        best = results.candidates[0] if results.candidates else None
        report = path.parent / "report.html"
        found.append(
            RunSummary(
                folder=path.parent,
                name=results.name,
                task=results.task,
                created=results.created,
                headline=results.headline,
                best=best.name if best else None,
                best_value=best.metrics.get(results.headline) if best else None,
                candidates=len(results.candidates),
                report=report if report.is_file() else None,
            )
        )
    return sorted(found, key=lambda run: run.created, reverse=True)


class Change(BaseModel):
    """One candidate across two runs."""

    name: str
    a: float | None
    b: float | None
    delta: float | None
    p50_a: float | None = None
    p50_b: float | None = None
    fixed: int = 0  # examples wrong in A and right in B
    broken: int = 0  # right in A, wrong in B


def compare(run_a: Path, run_b: Path) -> tuple[Results, Results, list[Change]]:
    """Each candidate's headline in both runs, and which examples changed."""
    a, b = read(run_a), read(run_b)
    if a.task != b.task:
        raise BadInputError(f"the runs are different tasks: {a.task} and {b.task}")
    metric = a.headline
    by_name_b = {c.name: c for c in b.candidates}
    examples_a = _scores(read_examples(run_a))
    examples_b = _scores(read_examples(run_b))
    changes = []
    for name in [
        *(c.name for c in a.candidates),
        *(n for n in by_name_b if n not in {c.name for c in a.candidates}),
    ]:
        left = next((c for c in a.candidates if c.name == name), None)
        right = by_name_b.get(name)
        va = left.metrics.get(metric) if left else None
        vb = right.metrics.get(metric) if right else None
        first, second = examples_a.get(name, {}), examples_b.get(name, {})
        common = set(first) & set(second)
        changes.append(
            Change(
                name=name,
                a=va,
                b=vb,
                delta=vb - va if va is not None and vb is not None else None,
                p50_a=left.latency.p50 if left else None,
                p50_b=right.latency.p50 if right else None,
                fixed=sum(first[k] < 0.5 <= second[k] for k in common),
                broken=sum(second[k] < 0.5 <= first[k] for k in common),
            )
        )
    return a, b, changes


def _scores(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for row in rows:
        if row.get("score") is not None:
            key = json.dumps([row.get("id"), row.get("input")], ensure_ascii=False)
            found.setdefault(row["candidate"], {})[key] = float(row["score"])
    return found
