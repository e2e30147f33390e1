"""``fondasi prompt``: list, show and render prompt templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.rule import Rule
from rich.syntax import Syntax
from rich.table import Table

from fondasi.cli._render import console, errors, esc, print_json
from fondasi.errors import BadInputError
from fondasi.settings import Settings

app = typer.Typer(help="Zero-shot and few-shot prompt templates.", no_args_is_help=True)

MAX_VAR_FILE_BYTES = 1_000_000


def library(ctx: typer.Context):  # type: ignore[no-untyped-def]
    """The bundled templates plus the user's, per the settings."""
    from fondasi.prompts.library import PromptLibrary

    settings: Settings = ctx.obj
    return PromptLibrary.load(settings.home)


def parse_vars(pairs: list[str]) -> dict[str, str]:
    """``name=value`` pairs; ``name=@file`` reads the value from a file."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise BadInputError(f"--var takes NAME=VALUE, got {pair!r}")
        if value.startswith("@"):
            path = Path(value[1:]).expanduser()
            if not path.is_file():
                raise BadInputError(f"--var {name}=@{path}: no such file")
            if path.stat().st_size > MAX_VAR_FILE_BYTES:
                raise BadInputError(f"--var {name}=@{path}: larger than 1 MB")
            value = path.read_text(encoding="utf-8")
        values[name.strip()] = value
    return values


def show_rendered(rendered: Any, chat: bool, raw: str | None) -> None:
    """The messages (or text) exactly as the model gets them."""
    if raw is not None:
        console.print(raw, markup=False, highlight=False, end="", soft_wrap=True)
        console.print()
        return
    if not chat:
        console.print(rendered.text, markup=False, highlight=False, soft_wrap=True)
        return
    for message in rendered.messages:
        console.print(Rule(message.role.value, align="left", style="dim"))
        console.print(message.content, markup=False, highlight=False, soft_wrap=True)


@app.command("list")
def list_templates(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Every template: bundled ones and those in FONDASI_HOME/prompts."""
    from fondasi.prompts.select import SELECTORS

    templates = library(ctx).all()
    if as_json:
        print_json([template.model_dump(mode="json", by_alias=True) for template in templates])
        return
    table = Table(title="Prompt templates", title_justify="left", pad_edge=False)
    table.add_column("name", no_wrap=True)
    for column in ("task", "lang", "output", "shots"):
        table.add_column(column, no_wrap=True)
    table.add_column("description", min_width=30, ratio=1)
    for template in templates:
        k = template.fewshot.k
        shots = f"{k if k is not None else len(template.examples)}/{len(template.examples)}"
        table.add_row(
            esc(template.name),
            esc(template.task),
            template.language,
            template.output.format,
            shots if template.examples else "0",
            esc(template.description),
        )
    console.print(table)
    console.print(
        "[dim]Example selection (--select): "
        + "; ".join(f"{name}: {s.summary}" for name, s in SELECTORS.items())
        + "[/]"
    )


@app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Template name or path to a .yaml file."),
) -> None:
    """A template's file, and what it needs."""
    lib = library(ctx)
    template = lib.get(name)
    path = lib.paths.get(name, Path(name))
    console.print(f"[bold]{esc(template.name)}[/] — {esc(template.description)}")
    console.print(
        f"[dim]{esc(str(path))} · variables: {', '.join(template.variables)} · "
        f"output: {template.output.format} · {len(template.examples)} examples[/]"
    )
    console.print(Syntax(path.read_text(encoding="utf-8"), "yaml", word_wrap=True))


def render_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Template name or path to a .yaml file."),
    var: list[str] = typer.Option([], "--var", help="NAME=VALUE (or NAME=@file), repeatable."),
    model_id: str | None = typer.Option(
        None, "--model", help="Render for this model: its chat form, context and template."
    ),
    shots: int | None = typer.Option(None, "--shots", min=0, help="Examples to show."),
    select: str | None = typer.Option(None, "--select", help="fixed, random, balanced or knn."),
    seed: int | None = typer.Option(None, "--seed", help="Seed for random/balanced selection."),
    labels: str | None = typer.Option(None, "--labels", help="Comma-separated label set."),
    raw: bool = typer.Option(
        False, "--raw", help="With --model: the exact text after the model's chat template."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print messages and text as JSON."),
) -> None:
    """Print the exact messages a template renders to (for --model, as that model reads them)."""
    from fondasi.models.prompting import prepare

    template = library(ctx).get(name)
    values = parse_vars(var)
    names = [label.strip() for label in labels.split(",")] if labels else None
    model = None
    if model_id:  # rendering calls no model: the plain one says how it reads a prompt
        from fondasi.models.load import load

        with errors.status(f"Loading {esc(model_id)} …", spinner="dots"):
            model = load(model_id, ctx.obj)
    if model is not None:
        rendered = prepare(
            model, template, values, shots=shots, select=select, seed=seed, labels=names
        )
    else:
        from fondasi.models.load import embedder_for

        knn = (select or template.fewshot.select) == "knn" and shots != 0
        settings: Settings = ctx.obj
        embedder = embedder_for(settings) if knn else None
        rendered = template.render(
            values, shots=shots, select=select, seed=seed, labels=names, embedder=embedder
        )
    from fondasi.backends.base import Capability

    chat = model is None or model.can(Capability.CHAT)
    text = None
    if raw:
        if model is None or not hasattr(model.backend, "prompt_text"):
            raise BadInputError("--raw needs --model with a local language model")
        text = model.backend.prompt_text(rendered.prompt(chat))
    if as_json:
        print_json(
            {
                "template": template.name,
                "messages": [m.wire() for m in rendered.messages],
                "text": rendered.text,
                **({"model_text": text} if text is not None else {}),
                "examples": len(rendered.examples),
                "dropped": rendered.dropped,
            }
        )
        return
    show_rendered(rendered, chat, text)
    if rendered.dropped:
        errors.print(f"[yellow]{rendered.dropped} examples dropped to fit the context[/]")


app.command("render")(render_command)
