"""``fondasi eval``: several models and approaches on your data, in one run, one report.

    fondasi eval eval.yaml
    fondasi eval --models multilingual-e5-small,all-minilm-l6-v2 --data test.csv \\
        --task classification --columns text=ulasan,label=kategori --shots 0,8
    fondasi eval compare RUN_A RUN_B
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.table import Table
from typer.core import TyperGroup

from fondasi.cli._render import console, errors, esc, validation_message
from fondasi.errors import BadInputError
from fondasi.settings import Settings


class DefaultToRun(TyperGroup):
    """``fondasi eval CONFIG`` and ``fondasi eval --models ...`` mean ``fondasi eval run ...``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=DefaultToRun,
    no_args_is_help=True,
    help="Evaluate models and approaches on your data: metrics, baselines, latency, cost, "
    "and a self-contained report.html. `fondasi eval CONFIG.yaml`, or the flags of "
    "`fondasi eval run --help`.",
)

FLAGS = {
    "models": "--models",
    "data": "--data",
    "task": "--task",
    "seed": "--seed",
    "split": "--split",
    "batch_size": "--batch-size",
    "concurrency": "--concurrency",
    "requests_per_minute": "--requests-per-minute",
    "executor": "--executor",
    "bootstrap": "--bootstrap",
    "limit": "--limit",
    "shots": "--shots",
    "by": "--by",
    "curve": "--curve",
}


def _pairs(text: str | None, flag: str) -> dict[str, str]:
    """``text=ulasan,label=kategori`` into a mapping."""
    found: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise BadInputError(f"{flag} takes FIELD=COLUMN pairs, got {part!r}")
        found[key.strip()] = value.strip()
    return found


def _list(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def from_flags(options: dict[str, Any]) -> dict[str, Any]:
    """A config mapping from the flag form."""
    models = _list(options["models"])
    if not models or not options["data"] or not options["task"]:
        raise BadInputError("give CONFIG.yaml, or --models, --data and --task")
    try:
        shots = [int(k) for k in _list(options["shots"])] or [0]
    except ValueError:
        raise BadInputError(f"--shots takes numbers like 0,3,8, got {options['shots']!r}") from None
    templates: list[str | None] = list(_list(options["template"])) or [None]
    routes = _list(options["by"]) or ["auto"]
    candidates = [
        {
            "model": model,
            **({"template": template} if template else {}),
            **({"shots": k} if k else {}),
            **({"select": options["select"]} if options["select"] and k else {}),
            **({"max_tokens": options["max_tokens"]} if options["max_tokens"] else {}),
            **({"by": by} if by != "auto" else {}),
        }
        for model in models
        for template in templates
        for k in _shots_for(model, shots)
        for by in routes
    ]
    # Heads fit on embeddings: one candidate per embedding model and head, shots aside.
    candidates += [
        {"model": model, "head": head}
        for model in models
        if not model.startswith("tuned:")
        for head in _list(options.get("head"))
    ]
    # Tuned on the train split first: one candidate per model and tune method.
    candidates += [
        {"model": model, "tune": method}
        for model in models
        if not model.startswith("tuned:")
        for method in _list(options.get("tune"))
    ]
    data: dict[str, Any] = {
        "path": options["data"],
        "columns": _pairs(options["columns"], "--columns"),
    }
    if options["qrels"]:
        data["qrels"] = {
            "path": options["qrels"],
            "columns": _pairs(options["qrels_columns"], "--qrels-columns"),
        }
    if options["corpus"]:
        data["corpus"] = {
            "path": options["corpus"],
            "columns": _pairs(options["corpus_columns"], "--corpus-columns"),
        }
    config: dict[str, Any] = {"task": options["task"], "data": data, "candidates": candidates}
    if options["train"]:
        config["train"] = {"path": options["train"], "columns": data["columns"]}
    if options["labels"]:
        config["labels"] = _list(options["labels"])
    if options["metrics"]:
        config["metrics"] = _list(options["metrics"])
    if options["judge"]:
        config["judge"] = {"model": options["judge"]}
    return config


def _shots_for(model: str, shots: list[int]) -> list[int]:
    """The shot counts that mean something for ``model``: a tuned classifier answers with
    its own labels, so it runs once, without shots."""
    if not model.startswith("tuned:"):
        return shots
    from fondasi.backends.tuned import read_meta

    try:
        classifies = read_meta(Path(model[6:]).expanduser()).get("task") == "classification"
    except BadInputError:
        return shots  # not a tuned folder: loading it says so
    return [0] if classifies else shots


def _overrides(options: dict[str, Any]) -> dict[str, Any]:
    """Flags that change a config file's run (given flags win)."""
    keys = (
        "seed", "split", "batch_size", "concurrency", "requests_per_minute", "bootstrap",
        "executor", "cache", "name",
    )  # fmt: skip
    found = {key: options[key] for key in keys if options.get(key) is not None}
    if options["no_baselines"]:
        found["baselines"] = False
    if options.get("curve"):
        try:
            sizes = [int(size) for size in _list(options["curve"])]
        except ValueError:
            raise BadInputError(
                f"--curve takes sizes like 8,32,128, got {options['curve']!r}"
            ) from None
        found["curve"] = {"sizes": sizes, "draws": options.get("draws") or 3}
    return found


def run(
    ctx: typer.Context,
    config_file: Path | None = typer.Argument(None, help="Eval config YAML (or use the flags)."),
    models: str | None = typer.Option(None, "--models", help="Comma-separated model ids."),
    data: str | None = typer.Option(None, "--data", help="Test data: JSONL, CSV, Parquet, folder."),
    task: str | None = typer.Option(
        None,
        "--task",
        help="classification, generation, extraction, retrieval, image-classification.",
    ),
    columns: str | None = typer.Option(None, "--columns", help="FIELD=COLUMN pairs: text=ulasan."),
    train: str | None = typer.Option(None, "--train", help="Train data for baselines and shots."),
    template: str | None = typer.Option(None, "--template", help="Template(s), comma-separated."),
    shots: str | None = typer.Option(None, "--shots", help="Few-shot k values: 0,3,8."),
    select: str | None = typer.Option(None, "--select", help="fixed, random, balanced or knn."),
    head: str | None = typer.Option(
        None,
        "--head",
        help="Embedding models: heads fitted on the train split: linear, knn, hybrid.",
    ),
    tune: str | None = typer.Option(
        None,
        "--tune",
        help="Tune each model on the train split first: setfit, linear-head, lora, full ...",
    ),
    curve: str | None = typer.Option(
        None,
        "--curve",
        help="Learning curve: train sizes, e.g. 8,32,128 (the whole train split is added).",
    ),
    draws: int | None = typer.Option(
        None, "--draws", min=1, max=20, help="Learning curve: random samples per size (3)."
    ),
    labels: str | None = typer.Option(None, "--labels", help="Comma-separated labels."),
    by: str | None = typer.Option(
        None,
        "--by",
        help="How language models classify: logprob, generation (both: logprob,generation).",
    ),
    metrics: str | None = typer.Option(
        None, "--metrics", help="Metrics; the first is the headline."
    ),
    corpus: str | None = typer.Option(None, "--corpus", help="Retrieval corpus file (id, text)."),
    corpus_columns: str | None = typer.Option(
        None, "--corpus-columns", help="id=doc_id,text=body."
    ),
    qrels: str | None = typer.Option(
        None, "--qrels", help="Retrieval judgements (query_id, doc_id, relevance)."
    ),
    qrels_columns: str | None = typer.Option(
        None, "--qrels-columns", help="query_id=query-id,doc_id=corpus-id,relevance=score."
    ),
    judge: str | None = typer.Option(None, "--judge", help="Judge model for the judge metric."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="Most tokens per answer."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Use only the first N rows."),
    out: Path | None = typer.Option(
        None, "--out", help="Output folder (default FONDASI_HOME/evals/…)."
    ),
    name: str | None = typer.Option(None, "--name", help="Report title."),
    seed: int | None = typer.Option(None, "--seed", help="Seed (splits, sampling, bootstrap)."),
    split: float | None = typer.Option(None, "--split", help="Train fraction when no --train."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Examples per local call."),
    concurrency: int | None = typer.Option(None, "--concurrency", help="Parallel API calls."),
    requests_per_minute: float | None = typer.Option(
        None, "--requests-per-minute", help="Most calls a minute to each hosted model."
    ),
    bootstrap: int | None = typer.Option(None, "--bootstrap", help="Bootstrap resamples."),
    executor: str | None = typer.Option(None, "--executor", help="local or ray."),
    cache: str | None = typer.Option(None, "--cache", help="Prediction cache file."),
    no_baselines: bool = typer.Option(False, "--no-baselines", help="Skip the baselines."),
) -> None:
    """Run an evaluation and write results.json, examples.jsonl and report.html."""
    from fondasi.evaluate import evaluate, load_config
    from fondasi.evaluate.config import EvalConfig
    from fondasi.tune.for_eval import eval_tuner

    options = dict(locals())
    settings: Settings = ctx.obj
    try:
        if config_file is not None:
            config = load_config(config_file)
            config = EvalConfig.model_validate({**config.model_dump(), **_overrides(options)})
        else:
            config = EvalConfig.model_validate({**from_flags(options), **_overrides(options)})
        if limit:
            config = config.model_copy(
                update={"data": config.data.model_copy(update={"limit": limit})}
            )
    except ValidationError as exc:
        raise validation_message(exc, FLAGS) from None
    with _progress() as bars:
        results, folder = evaluate(config, settings, out, bars, eval_tuner(settings, config.seed))
    show(results)
    console.print(f"\nwrote {esc(str(folder))}/results.json, examples.jsonl, report.html")


class _progress:
    """A Rich progress bar per candidate, on standard error."""

    def __enter__(self) -> Any:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=errors,
        )
        self.progress.start()

        def bars(label: str, total: int) -> Any:
            task = self.progress.add_task(esc(label), total=total)
            return lambda n: self.progress.advance(task, n)

        return bars

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def show(results: Any) -> None:
    """The leaderboard and the verdict in the terminal."""
    table = Table(title=esc(results.name), title_justify="left", pad_edge=False)
    table.add_column("candidate", min_width=24, overflow="fold")
    shown_metrics = results.metrics[:3]  # the rest are in the report
    for name in shown_metrics:
        table.add_column(esc(name), justify="right")
    for column in ("p50", "ex/s", "cost $", "fail"):
        table.add_column(column, justify="right")
    for c in results.candidates:
        cells = []
        for name in shown_metrics:
            value = c.metrics.get(name)
            shown = f"{value:.3f}" if value is not None else "–"
            if name == results.headline and c.ci is not None:
                shown += f" [dim]±{(c.ci.high - c.ci.low) / 2:.3f}[/]"
            cells.append(shown)
        p50 = f"{c.latency.p50 * 1000:.1f}ms" if c.latency.p50 is not None else "–"
        rate = (
            "–"
            if not c.throughput
            else f"{c.throughput:,.0f}"
            if c.throughput >= 100
            else f"{c.throughput:.1f}"
        )
        cost = "?" if c.cost_usd is None else f"{c.cost_usd:.2g}" if c.cost_usd else "0"
        style = "dim" if c.kind == "baseline" else None
        table.add_row(esc(c.name), *cells, p50, rate, cost, str(c.failures), style=style)
    console.print(table)
    for sentence in results.verdict:
        console.print(esc(sentence), soft_wrap=True)
    if results.curve is not None:
        show_curve(results.curve)


def show_curve(curve: Any) -> None:
    """The learning curve as a table: a row per series, a column per train size."""
    table = Table(
        title=f"learning curve: {esc(curve.metric)} by labelled examples "
        f"(mean of {curve.draws} samples [95% interval])",
        title_justify="left",
        pad_edge=False,
    )
    table.add_column("candidate", min_width=24, overflow="fold")
    for size in curve.sizes:
        table.add_column(str(size), justify="right")
    for series in curve.series:
        cells = [
            f"{p.value:.3f}" + (f" [dim][{p.low:.2f}–{p.high:.2f}][/]" if p.low is not None else "")
            for p in series.points
        ]
        if not series.learns:
            cells = [cells[0] + " [dim](no labels)[/]", *["[dim]=[/]"] * (len(cells) - 1)]
        table.add_row(esc(series.name), *cells, style="dim" if series.kind == "baseline" else None)
    console.print(table)
    for sentence in curve.summary:
        console.print(esc(sentence), soft_wrap=True)


def compare(
    run_a: Path = typer.Argument(..., help="First run folder (or its results.json)."),
    run_b: Path = typer.Argument(..., help="Second run folder."),
) -> None:
    """Diff two runs: each candidate's headline metric, latency and examples that changed."""
    from fondasi.evaluate import compare as diff

    a, _b, changes = diff(run_a, run_b)
    table = Table(
        title=f"{esc(a.headline)}: {esc(str(run_a))} → {esc(str(run_b))}",
        title_justify="left",
        pad_edge=False,
    )
    for column in ("candidate", "A", "B", "Δ", "fixed", "broken", "p50 A→B"):
        table.add_column(column, justify="left" if column == "candidate" else "right")
    for c in changes:
        delta = (
            "–" if c.delta is None else f"[{'green' if c.delta >= 0 else 'red'}]{c.delta:+.3f}[/]"
        )
        p50 = " → ".join(f"{v * 1000:.1f}ms" if v is not None else "–" for v in (c.p50_a, c.p50_b))
        table.add_row(
            esc(c.name),
            "–" if c.a is None else f"{c.a:.3f}",
            "–" if c.b is None else f"{c.b:.3f}",
            delta,
            str(c.fixed),
            str(c.broken),
            p50,
        )
    console.print(table)


app.command("run")(run)
app.command("compare")(compare)
