"""One evaluation run, end to end: data, candidates, baselines, judge, scores, files.

    results = evaluate(load_config("eval.yaml"), Settings.load(), out=Path("runs/a"))

Writes ``results.json``, ``examples.jsonl`` and ``report.html`` into ``out`` (default: a
new timestamped folder under ``FONDASI_HOME/evals/``, where the server's dashboard finds
reports).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fondasi.data.files import Split
from fondasi.errors import BadInputError
from fondasi.evaluate import results as results_io
from fondasi.evaluate.baselines import for_task
from fondasi.evaluate.cache import PredictionCache
from fondasi.evaluate.config import DataSpec, EvalConfig, JudgeSpec
from fondasi.evaluate.curve import Tuner, learning_curve, slug
from fondasi.evaluate.datasets import Example, load_examples, source_path, split, splits_in
from fondasi.evaluate.execution import CandidateRun, load_model
from fondasi.evaluate.executors import executor
from fondasi.evaluate.metrics import Chosen, choose
from fondasi.evaluate.results import Results
from fondasi.evaluate.scoring import scored, verdict
from fondasi.evaluate.tasks import Context, Task, get_task

if TYPE_CHECKING:
    from fondasi.evaluate.baselines import Baseline
    from fondasi.settings import Settings

Bars = Callable[[str, int], Callable[[int], None]]


def default_out(settings: Settings, config: EvalConfig) -> Path:
    """A new folder under FONDASI_HOME/evals named by time and run name."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^a-z0-9]+", "-", (config.name or config.task).lower()).strip("-")[:40]
    folder = settings.home / "evals" / f"{stamp}-{slug or 'run'}"
    number = 2
    while folder.exists():
        folder = folder.with_name(f"{stamp}-{slug}-{number}")
        number += 1
    return folder


def metrics_for(task: Task, config: EvalConfig) -> list[Chosen]:
    """The run's metrics, the headline first."""
    return [choose(task.name, name) for name in (config.metrics or task.default_metrics)]


def _prepared(task: Task, examples: list[Example]) -> list[Example]:
    return [task.prepare(example) for example in examples]


def read_data(task: Task, spec: DataSpec, what: str, split: Split | None = None) -> list[Example]:
    """A spec's examples (a folder's ``split``, or the one eval scores); retrieval queries may
    take their relevant ids from a qrels file."""
    if spec.qrels is None:
        return _prepared(task, load_examples(spec, task.needed, task.optional, what, split))
    needed = tuple(field for field in task.needed if field != "relevant")
    queries = load_examples(spec, needed, task.optional, what, split)
    judged: dict[str, dict[str, float]] = {}
    for row in load_examples(spec.qrels, ("query_id", "doc_id"), ("relevance",), "qrels"):
        grade = float(row.fields.get("relevance", 1) or 0)
        judged.setdefault(str(row.fields["query_id"]), {})[str(row.fields["doc_id"])] = grade
    examples = []
    for query in queries:
        if query.id not in judged:
            raise BadInputError(
                f"{what}: query {query.id!r} has no judgements in the qrels file "
                "(queries are matched by their id column)"
            )
        examples.append(
            Example(query.index, query.id, {**query.fields, "relevant": judged[query.id]})
        )
    return _prepared(task, examples)


def _labelled_texts(task: Task) -> bool:
    """Texts with one label each: the label set is read off the examples, and the baselines
    (TF-IDF, majority) learn it from a train split. Said by the fields the task declares."""
    return task.input_field == "text" and task.reference_field == "label"


def build_context(
    task: Task, config: EvalConfig, settings: Settings
) -> tuple[Context, dict[str, Any]]:
    """Test and train examples, labels and corpus, and a description of where they came from."""
    data = read_data(task, config.data, "data")
    info: dict[str, Any] = {"path": str(source_path(config.data)), "rows": len(data)}
    wants_train = any(c.learns for c in config.candidates) or (
        config.baselines is not False and _labelled_texts(task)
    )
    train: list[Example] = []
    if config.train is not None:
        train = read_data(task, config.train, "train")
        info["train"] = {
            "source": "file",
            "path": str(source_path(config.train)),
            "rows": len(train),
        }
        test = data
    elif wants_train and "train" in splits_in(config.data):  # the folder's own train split
        train = read_data(task, config.data, "train", split="train")
        info["train"] = {
            "source": "split file",
            "path": str(source_path(config.data)),
            "rows": len(train),
        }
        test = data
    elif wants_train:
        stratify = "label" if "label" in task.needed else None
        train, test = split(data, config.split, config.seed, stratify)
        info["train"] = {
            "source": "split",
            "fraction": config.split,
            "seed": config.seed,
            "rows": len(train),
            "stratified_by": stratify,
            "note": f"{len(train)} of {len(data)} rows held out as train (seed {config.seed}); "
            f"every candidate is scored on the other {len(test)}",
        }
    else:
        test = data
    info["test_rows"] = len(test)
    corpus: list[Example] = []
    if task.corpus_fields:
        if config.data.corpus is None:
            raise BadInputError("retrieval needs a corpus: data: {corpus: {path: FILE}}")
        corpus = load_examples(config.data.corpus, task.corpus_fields, what="corpus")
        info["corpus"] = {"path": str(source_path(config.data.corpus)), "rows": len(corpus)}
    labels: list[str] = []
    descriptions: dict[str, str] = {}
    if isinstance(config.labels, dict):
        labels, descriptions = list(config.labels), dict(config.labels)
    elif config.labels:
        labels = list(config.labels)
    elif _labelled_texts(task):
        labels = sorted({str(e.fields["label"]) for e in [*train, *test]})
    folder = source_path(config.data)
    context = Context(
        config=config,
        labels=labels,
        descriptions=descriptions,
        train=train,
        test=test,
        corpus=corpus,
        data_folder=str(folder if folder.is_dir() else folder.parent),
        home=settings.home,
    )
    return context, info


def run_baseline(baseline: Baseline, context: Context, settings: Settings) -> CandidateRun:
    """Fit and predict a baseline; its latency is its prediction time per example."""
    from fondasi.costs import local_cost
    from fondasi.evaluate.config import CandidateSpec
    from fondasi.evaluate.execution import describe, failed

    spec = CandidateSpec(model=f"baseline:{baseline.name}", name=baseline.label)
    n = len(context.test)
    try:
        baseline.fit(context)
        start = time.perf_counter()
        outputs = baseline.predict(context.test)
        share = (time.perf_counter() - start) / max(n, 1)
    except Exception as exc:
        return CandidateRun(spec, [failed(describe(exc)) for _ in range(n)])
    cost = local_cost(share, settings.hardware_usd_per_hour)
    records = [
        {"output": o, "seconds": share, "tokens": None, "cost_usd": cost, "error": None}
        for o in outputs
    ]
    for row in records:
        row["local"] = True
    return CandidateRun(spec, records, computed=n, wall_seconds=share * n)


def grade(
    runs: list[CandidateRun],
    task: Task,
    context: Context,
    settings: Settings,
    cache: PredictionCache,
) -> str:
    """Judge grades on every record; returns the judge prompt as shown in the report."""
    from fondasi.evaluate.judge import grade_all, judge_template

    # No judge named: the local instruct model fondasi writes with (settings.chat_model).
    spec = context.config.judge or JudgeSpec(model=settings.chat_model)
    template = judge_template(spec, settings.home)
    judge = load_model(spec.model, settings)
    for run in runs:
        items = [
            (
                str(example.fields[task.input_field]),
                task.shown(example.fields[task.reference_field]),
                task.shown(row.get("output")),
            )
            for example, row in zip(context.test, run.records, strict=True)
        ]
        for row, value in zip(
            run.records, grade_all(judge, template, items, cache, context.config.seed), strict=True
        ):
            row["judge"] = value
    return f"judge model: {spec.model}\n" + template.model_dump_json(
        indent=2, exclude_defaults=True
    )


def evaluate(
    config: EvalConfig,
    settings: Settings,
    out: Path | None = None,
    bars: Bars | None = None,
    tuner: Tuner | None = None,
) -> tuple[Results, Path]:
    """Run every candidate and baseline, score them, write the three files; return results.

    ``tuner`` tunes the candidates that ask for it (``tune:``); the CLI and the Python API
    pass fondasi's own.
    """
    task = get_task(config.task)
    chosen = metrics_for(task, config)
    baselines = for_task(task.name, config.baselines)
    context, info = build_context(task, config, settings)
    folder = out or default_out(settings, config)
    cache_path = (
        Path(config.cache).expanduser()
        if config.cache
        else settings.home / "evals" / "cache.sqlite"
    )
    cache = PredictionCache(cache_path)
    progress = bars or (lambda label, total: lambda n: None)
    try:
        tuned = dataclasses.replace(context, config=with_tuned(context, folder, tuner))
        runs = executor(config.executor).run(task, tuned, cache, settings, progress)
        base_runs = [run_baseline(b, context, settings) for b in baselines]
        judge_prompt = None
        if any(c.metric.reads == "judge" for c in chosen):
            judge_prompt = grade([*runs, *base_runs], task, context, settings, cache)
        ranked, test = scored(task, chosen, context, [*runs, *base_runs], settings)
        curve = None
        if config.curve is not None:
            curve = learning_curve(
                task,
                context,
                chosen[0],
                ranked,
                baselines,
                cache,
                settings,
                folder,
                progress,
                tuner=tuner,
            )
    finally:
        cache.close()
    from fondasi.version import __version__

    head = chosen[0]
    results = Results(
        fondasi_version=__version__,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        name=config.name or f"{task.name} on {Path(info['path']).name}",
        task=task.name,
        headline=head.name,
        metrics=[c.name for c in chosen],
        seed=config.seed,
        data=info,
        labels=context.labels,
        candidates=ranked,
        significance=test,
        verdict=verdict(ranked, head, test),
        judge_prompt=judge_prompt,
        curve=curve,
        config=config.model_dump(mode="json", exclude_defaults=True),
    )
    rows = example_rows(task, context, [*runs, *base_runs])
    results_io.write(folder, results, rows)
    from fondasi.evaluate.report import write_report

    write_report(folder / "report.html", results, rows)
    return results, folder


def with_tuned(context: Context, folder: Path, tuner: Tuner | None) -> EvalConfig:
    """The config with each ``tune:`` candidate tuned on the train split and named as asked."""
    config = context.config
    wanted = [c for c in config.candidates if c.tune]
    if not wanted:
        return config
    if tuner is None:
        names = ", ".join(c.label for c in wanted)
        raise BadInputError(f"{names}: tuning in an eval needs the CLI or fondasi.api")
    if not context.train:
        raise BadInputError("tune: candidates need train examples (train:, or a split)")
    candidates = [
        c.model_copy(
            update={
                "model": tuner(c, context.train, folder / "tuned" / slug(c.label)),
                "tune": None,
                "name": c.label,
            }
        )
        if c.tune
        else c
        for c in config.candidates
    ]
    return config.model_copy(update={"candidates": candidates})


def example_rows(task: Task, context: Context, runs: list[CandidateRun]) -> list[dict[str, Any]]:
    """One row per candidate × example, for examples.jsonl and the report."""
    rows = []
    for run in runs:
        for example, row in zip(context.test, run.records, strict=True):
            reference = example.fields[task.reference_field]
            output = row.get("output")
            rows.append(
                {
                    "candidate": run.spec.label,
                    "index": example.index,
                    "id": example.id,
                    "input": example.fields[task.input_field],
                    "reference": reference,
                    "output": output,
                    "score": None if row.get("error") else task.example_score(reference, output),
                    "seconds": row.get("seconds"),
                    "tokens": row.get("tokens"),
                    "cost_usd": row.get("cost_usd"),
                    "error": row.get("error"),
                    "note": row.get("note"),
                    "judge": row.get("judge"),
                    "cached": bool(row.get("cached")),
                }
            )
    return rows
