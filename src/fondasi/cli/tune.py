"""``fondasi tune``: fine-tune a local model (full, LoRA, IA3, prompt tuning), merge adapters.

``fondasi tune BASE --data FILE ...`` runs a job; ``fondasi tune merge DIR`` and
``fondasi tune methods`` are subcommands beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from fondasi.cli._render import console, count, errors, esc, print_json
from fondasi.errors import BadInputError
from fondasi.settings import Settings


class RunByDefault(TyperGroup):
    """``fondasi tune BASE ...`` means ``fondasi tune run BASE ...``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in {"-h", "--help"}:
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=RunByDefault,
    help="Fine-tune models: full, LoRA, IA3, prompt tuning, distillation; export to ONNX.",
    no_args_is_help=True,
)


@app.command("run")
def run(
    ctx: typer.Context,
    base: str = typer.Argument(..., help="Base model: catalog id or hf:/gguf: path."),
    data: Path = typer.Option(..., "--data", help="Training data: JSONL, CSV, Parquet, folder."),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for checkpoints and the tuned model (local runs)."
    ),
    provider: str | None = typer.Option(
        None, "--provider", help="Run as a cloud fine-tuning job on this provider (openai ...)."
    ),
    eval_data: Path | None = typer.Option(None, "--eval-data", help="Dev data (else split)."),
    task: str | None = typer.Option(
        None, "--task", help="classification, causal-lm or seq2seq (default: from the data)."
    ),
    method: str = typer.Option(
        "lora",
        "--method",
        help="full, lora, ia3, prompt-tuning, distill; on embeddings: linear-head, knn, "
        "hybrid, setfit (`fondasi tune methods`).",
    ),
    r: int = typer.Option(16, "--r", help="LoRA rank."),
    alpha: int = typer.Option(32, "--alpha", help="LoRA alpha."),
    dropout: float = typer.Option(0.05, "--dropout", help="LoRA dropout."),
    target_modules: str | None = typer.Option(
        None, "--target-modules", help="Comma-separated layers, e.g. q_proj,v_proj."
    ),
    virtual_tokens: int = typer.Option(20, "--virtual-tokens", help="Prompt-tuning tokens."),
    k: int | None = typer.Option(
        None, "--k", help="knn: neighbours that vote (default: by leave-one-out)."
    ),
    pairs: int = typer.Option(8, "--pairs", help="setfit: contrastive pairs per training text."),
    epochs: float | None = typer.Option(None, "--epochs", help="Default: the method's."),
    lr: float | None = typer.Option(None, "--lr", help="Learning rate; default: the method's."),
    batch_size: int = typer.Option(16, "--batch-size", help="Examples per step."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Stop after N steps."),
    max_length: int = typer.Option(256, "--max-length", help="Tokens per example."),
    seed: int = typer.Option(42, "--seed", help="Seed."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint."),
    patience: int | None = typer.Option(
        None,
        "--patience",
        help="Stop after N dev checks without gain (0: never stop early); default: the method's.",
    ),
    teacher: str | None = typer.Option(
        None, "--teacher", help="Model to learn from (--method distill)."
    ),
    temperature: float = typer.Option(2.0, "--temperature", help="Distillation temperature."),
    dp_epsilon: float | None = typer.Option(
        None, "--dp-epsilon", help="Train with differential privacy at this budget (Opacus)."
    ),
    dp_delta: float | None = typer.Option(
        None, "--dp-delta", help="DP delta (default: 1/(10 x training rows))."
    ),
    dp_clip: float = typer.Option(1.0, "--dp-clip", help="DP per-example gradient norm bound."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Fine-tune BASE on --data; the result loads as `tuned:OUT`.

    With --provider the data is checked, uploaded and a cloud job started instead; follow
    it with `fondasi tune status JOB --provider P`.
    """
    from pydantic import ValidationError

    if provider is not None:
        start_cloud_job(ctx, provider, base, data, eval_data, epochs, seed, as_json)
        return
    if out is None:
        raise BadInputError("--out is needed for a local run (where the tuned model goes)")

    from fondasi.cli._render import validation_message
    from fondasi.tune.local import tune
    from fondasi.tune.options import TuneOptions

    settings: Settings = ctx.obj
    try:
        options = TuneOptions(
            base=base,
            data=data,
            eval_data=eval_data,
            out=out,
            task=task,
            method=method,
            r=r,
            alpha=alpha,
            dropout=dropout,
            target_modules=[t.strip() for t in target_modules.split(",") if t.strip()]
            if target_modules
            else None,
            virtual_tokens=virtual_tokens,
            k=k,
            pairs=pairs,
            epochs=epochs,
            learning_rate=lr,
            batch_size=batch_size,
            max_steps=max_steps,
            max_length=max_length,
            seed=seed,
            resume=resume,
            patience=patience,
            teacher=teacher,
            temperature=temperature,
            dp_epsilon=dp_epsilon,
            dp_delta=dp_delta,
            dp_clip=dp_clip,
        )
    except ValidationError as exc:
        flags = {"learning_rate": "--lr", "task": "--task", "dp_epsilon": "--dp-epsilon"}
        raise validation_message(exc, flags) from None
    errors.print(f"[dim]Tuning {esc(base)} with {esc(method)} on {esc(str(data))} …[/]")
    result = tune(options, settings)
    if as_json:
        print_json({**result.__dict__, "out": str(result.out)})
        return
    show_result(result)


def show_result(result: Any) -> None:
    """The run's numbers in one table, with the classical baseline beside them."""
    table = Table(title=f"tuned:{esc(str(result.out))}", title_justify="left", pad_edge=False)
    table.add_column("", style="dim")
    table.add_column("")
    table.add_row("base", esc(result.base))
    table.add_row("method", result.method)
    table.add_row(
        "trainable",
        f"{count(result.trainable)} of {count(result.total)} ({result.trainable_share:.2%})",
    )
    table.add_row(
        "time",
        f"{result.seconds:.1f} s"
        + (f", {result.steps} steps" if result.steps else "")
        + (" (stopped early: the dev score stopped improving)" if result.stopped_early else ""),
    )
    table.add_row("peak RAM", f"{result.peak_ram_mb:.0f} MB")
    for key, value in result.metrics.items():
        table.add_row(f"dev {key}", f"{value:.4f}")
    if result.baseline:
        for key, value in result.baseline.items():
            table.add_row(f"TF-IDF + LR {key}", f"{value:.4f}")
    if result.privacy:
        spent = result.privacy
        table.add_row(
            "privacy spent",
            f"ε = {spent['epsilon_spent']:.2f} of {spent['epsilon_target']:g}, "
            f"δ = {spent['delta']:.1e} (noise {spent['noise_multiplier']:.2f}, "
            f"clip {spent['clip']:g})",
        )
    console.print(table)
    accuracy, classical = result.metrics.get("accuracy"), (result.baseline or {}).get("accuracy")
    if accuracy is not None and classical is not None:
        console.print(baseline_verdict(accuracy, classical))


def baseline_verdict(accuracy: float, classical: float) -> str:
    """One plain sentence: did tuning beat TF-IDF + logistic regression?"""
    if classical > accuracy:
        return (
            f"[yellow]The classical baseline wins on this data: TF-IDF + logistic regression "
            f"{classical:.3f} > tuned {accuracy:.3f}. Try more epochs or another method, or "
            "use the baseline: it is smaller and faster.[/]"
        )
    return f"Tuned {accuracy:.3f} beats TF-IDF + logistic regression {classical:.3f}."


def start_cloud_job(
    ctx: typer.Context,
    provider: str,
    base: str,
    data: Path,
    eval_data: Path | None,
    epochs: float | None,
    seed: int,
    as_json: bool,
) -> None:
    """Validate, upload and start a provider's fine-tuning job."""
    from fondasi.tune.cloud import create_job, validate_chat_file

    settings: Settings = ctx.obj
    report = validate_chat_file(data, n_epochs=int(epochs) if epochs else 3)
    errors.print(
        f"[dim]{report.examples} examples, {report.tokens:,} tokens"
        + (" (converted to chat format)" if report.converted else "")
        + "[/]"
    )
    with errors.status(f"Uploading to {esc(provider)} and starting the job …", spinner="dots"):
        job = create_job(
            settings,
            provider,
            base,
            data,
            eval_data,
            n_epochs=int(epochs) if epochs else None,
            seed=seed,
        )
    show_jobs([job], as_json)


def show_jobs(jobs: list[Any], as_json: bool) -> None:
    """Jobs as a table, or JSON."""
    if as_json:
        print_json(jobs)
        return
    table = Table(title="Fine-tuning jobs", title_justify="left", pad_edge=False)
    for column in ("job", "status", "base", "fine-tuned model", "epochs", "trained tokens"):
        table.add_column(column)
    for job in jobs:
        table.add_row(
            esc(job.id),
            job.status,
            esc(job.base_model),
            esc(job.fine_tuned_model or "-"),
            str(job.n_epochs or "auto"),
            f"{job.trained_tokens:,}" if job.trained_tokens else "-",
        )
    console.print(table)
    for job in jobs:
        if job.error:
            errors.print(f"[red]{esc(job.id)}: {esc(job.error)}[/]")
        for event in job.events:
            console.print(f"[dim]{esc(event)}[/]")


@app.command("status")
def status(
    ctx: typer.Context,
    job: str = typer.Argument(..., help="Job id (from `fondasi tune --provider`)."),
    provider: str = typer.Option("openai", "--provider", help="The provider running it."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """A cloud job's status, its model when done, and its latest events."""
    from fondasi.tune.cloud import job_status

    show_jobs([job_status(ctx.obj, provider, job)], as_json)


@app.command("list")
def list_cloud_jobs(
    ctx: typer.Context,
    provider: str = typer.Option("openai", "--provider", help="The provider to ask."),
    limit: int = typer.Option(20, "--limit", min=1, max=100, help="Most jobs to show."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Recent cloud fine-tuning jobs."""
    from fondasi.tune.cloud import list_jobs

    show_jobs(list_jobs(ctx.obj, provider, limit), as_json)


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    job: str = typer.Argument(..., help="Job id."),
    provider: str = typer.Option("openai", "--provider", help="The provider running it."),
) -> None:
    """Cancel a cloud fine-tuning job."""
    from fondasi.tune.cloud import cancel_job

    show_jobs([cancel_job(ctx.obj, provider, job)], False)


@app.command("methods")
def methods() -> None:
    """The tuning methods and their defaults."""
    from fondasi.tune.methods import METHODS

    table = Table(title="Tuning methods", title_justify="left", pad_edge=False)
    for column in ("method", "default lr", "default epochs", "patience", "what it trains"):
        table.add_column(column)
    for item in METHODS.values():
        table.add_row(
            item.name,
            # A head fitted by scikit-learn has no step size, epochs or early stopping.
            f"{item.learning_rate:g}" if item.learning_rate else "-",
            f"{item.epochs:g}" if item.epochs else "-",
            str(item.patience) if item.patience else "-",
            item.summary,
        )
    console.print(table)


@app.command("export")
def export(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., help="A classifier made by `fondasi tune`."),
    out: Path = typer.Option(..., "--out", help="Folder for the exported model."),
    onnx: bool = typer.Option(False, "--onnx", help="Export to ONNX (the format for edges)."),
    int8: bool = typer.Option(False, "--int8", help="Also write a dynamic int8 copy."),
    eval_data: Path | None = typer.Option(
        None, "--eval-data", help="Dev rows to measure on (default: the run's own)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the measurements as JSON."),
) -> None:
    """Export a tuned classifier to ONNX (adapters merged), measuring the accuracy change."""
    from fondasi.tune.export import export_onnx

    if not onnx:
        raise BadInputError("say which format: --onnx (the only export format so far)")
    with errors.status("Exporting and measuring on the dev rows …", spinner="dots"):
        result = export_onnx(folder, out, ctx.obj, int8=int8, eval_data=eval_data)
    if as_json:
        print_json({**result.__dict__, "out": str(result.out)})
        return
    table = Table(
        title=f"Export of {esc(str(folder))} ({result.dev_rows} dev rows)",
        title_justify="left",
        pad_edge=False,
    )
    for column in ("form", "dev accuracy", "change", "agrees with PyTorch", "MB", "ms/text"):
        table.add_column(column, justify="left" if column == "form" else "right")
    for variant in result.variants:
        table.add_row(
            variant.name,
            f"{variant.accuracy:.4f}",
            f"{result.change(variant.name):+.4f}",
            f"{variant.agreement:.1%}",
            f"{variant.megabytes:.1f}",
            f"{variant.ms_per_text:.2f}",
        )
    console.print(table)
    console.print(f"load it as tuned:{esc(str(result.out))}")


@app.command("merge")
def merge(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., help="An adapter made by `fondasi tune`."),
    out: Path = typer.Option(..., "--out", help="Folder for the merged model."),
) -> None:
    """Merge a LoRA/IA3 adapter into its base: one model, no adapter at load time."""
    from fondasi.tune.merge import merge_adapter

    settings: Settings = ctx.obj
    if out.exists() and any(out.iterdir()):
        raise BadInputError(f"--out {out} is not empty")
    merged = merge_adapter(folder, out, settings)
    console.print(f"merged into {esc(str(merged))}; load it as tuned:{esc(str(merged))}")
