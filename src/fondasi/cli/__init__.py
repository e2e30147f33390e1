"""The ``fondasi`` command line: one module per command group, all thin.

Imports stay light here: ``fondasi --help`` must not import torch or transformers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from fondasi.cli import (
    classify,
    doctor,
    embed,
    guard,
    image,
    imagine,
    keys,
    logs,
    models,
    prompt,
    quickstart,
    recommend,
    run,
    serve,
    spend,
    transcribe,
    tune,
)
from fondasi.cli import eval as evaluate
from fondasi.cli._render import errors, esc
from fondasi.errors import FondasiError
from fondasi.settings import Settings
from fondasi.version import __version__

app = typer.Typer(
    name="fondasi",
    help="A local-first workbench for pre-trained models: know, choose, use, adapt, "
    "measure, guard and serve them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fondasi {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None, "--home", help="fondasi home folder (default: $FONDASI_HOME or ~/.fondasi)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Build the settings once and hand them to every command."""
    ctx.obj = Settings.load(home=home)


app.add_typer(models.app, name="models")
app.add_typer(prompt.app, name="prompt")
app.add_typer(tune.app, name="tune")
app.add_typer(evaluate.app, name="eval")
app.add_typer(serve.app, name="serve")
app.add_typer(keys.app, name="keys")
app.add_typer(logs.app, name="logs")
app.add_typer(guard.app, name="guard")
app.command("stats")(logs.stats)
app.command("recommend")(recommend.recommend)
app.command("doctor")(doctor.doctor)
app.command("spend")(spend.spend)
app.command("quickstart")(quickstart.quickstart)
app.command("run")(run.run)
app.command("chat")(run.chat)
app.command("embed")(embed.embed)
app.command("classify")(classify.classify)
app.command("image")(image.image)
app.command("imagine")(imagine.imagine)
app.command("transcribe")(transcribe.transcribe)


def main() -> None:
    """Entry point: run the CLI; a fondasi error becomes one line and an exit code."""
    try:
        app()
    except FondasiError as exc:
        errors.print(f"[bold red]error:[/] {esc(str(exc))}", soft_wrap=True)
        sys.exit(exc.exit_code)
