"""MkDocs hook: the CLI reference and the catalog pages, generated at build time.

Both pages are rendered from the code they describe (the Typer app, the bundled model cards)
every time the site is built, so neither can go stale; neither is committed. ``mkdocs.yml``
loads this file under ``hooks:``. Importing ``fondasi.cli`` is cheap: ``fondasi --help``
imports no torch, and neither does this.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

CLI_PAGE = "reference/cli.md"
CATALOG_PAGE = "reference/catalog.md"


def on_files(files: Files, config: MkDocsConfig, **kwargs: Any) -> Files:
    """Add the generated pages to the site's files before the navigation is built."""
    files.append(File.generated(config, CLI_PAGE, content=cli_markdown()))
    files.append(File.generated(config, CATALOG_PAGE, content=catalog_markdown()))
    return files


# -- the CLI reference ------------------------------------------------------------------------


# Typer vendors its own copy of click (typer._click), so commands and parameters are read by
# their attributes, not checked against click's classes.
Command = Any
Context = Any


def _commands(
    command: Command, path: list[str], parent: Context | None
) -> Iterator[tuple[list[str], Command, Context]]:
    """Every command of the tree, depth first, in the order `--help` lists them."""
    ctx = command.context_class(command, info_name=path[-1], parent=parent)
    yield path, command, ctx
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _commands(sub, [*path, name], ctx)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _param_row(param: Any, ctx: Context) -> str:
    """One table row: the parameter as `--help` names it, and its help with the default."""
    record = param.get_help_record(ctx)
    if record is None:  # an argument without help text
        names, help_text = (param.name or "").upper(), ""
    else:
        names, help_text = record
    required = " (required)" if param.required and "required" not in help_text else ""
    return f"| `{_cell(names)}` | {_cell(help_text)}{required} |"


def cli_markdown() -> str:
    """The help of every `fondasi` command, as one markdown page."""
    from fondasi.cli import app

    root = typer.main.get_command(app)
    out = [
        "# CLI reference",
        "",
        "Generated from the Typer app (`fondasi.cli.app`) each time the docs are built: it is"
        " what `fondasi COMMAND --help` prints. The guides show the commands in use.",
        "",
    ]
    for path, command, ctx in _commands(root, ["fondasi"], None):
        name = " ".join(path)
        level = "#" * min(len(path) + 1, 4)
        out += [f"{level} `{name}`", ""]
        help_text = (command.help or command.short_help or "").strip()
        if help_text:
            # Typer marks the end of the summary with \b or a form feed; keep the prose only.
            out += [help_text.split("\f")[0].replace("\b", "").strip(), ""]
        usage = " ".join(command.collect_usage_pieces(ctx))
        out += ["```text", f"{name} {usage}".rstrip(), "```", ""]
        params = [p for p in command.get_params(ctx) if not getattr(p, "hidden", False)]
        if params:
            out += ["| argument / option | help |", "|---|---|"]
            out += [_param_row(p, ctx) for p in params]
            out.append("")
        if hasattr(command, "list_commands"):
            subs = command.list_commands(ctx)
            if subs:
                out += ["Commands: " + ", ".join(f"`{name} {s}`" for s in subs) + ".", ""]
    return "\n".join(out)


# -- the catalog -------------------------------------------------------------------------------


def _value(value: object) -> str:
    return str(getattr(value, "value", value))


def _params(count: float | None) -> str:
    if count is None:
        return "?"
    if count >= 1e9:
        return f"{count / 1e9:g}B"
    return f"{count / 1e6:g}M"


def catalog_markdown() -> str:
    """One table row per bundled model card, grouped by kind."""
    from fondasi.api import load_catalog

    cards = sorted(load_catalog(), key=lambda card: (_value(card.kind), card.id))
    out = [
        "# Model catalog",
        "",
        f"The {len(cards)} model cards fondasi ships (`src/fondasi/catalog/cards/*.yaml`),"
        " generated from the cards each time the docs are built. `fondasi models show ID`"
        " prints one card in full; [Models and recommend](../guides/models.md) says what a"
        " card holds and how to add your own.",
        "",
    ]
    kind = None
    for card in cards:
        if _value(card.kind) != kind:
            kind = _value(card.kind)
            out += [
                "",
                f"## {kind}",
                "",
                "| id | name | developer | params | open weights | commercial use"
                " | Indonesian | strengths |",
                "|---|---|---|---|---|---|---|---|",
            ]
        commercial = {True: "yes", False: "no", None: "?"}[card.license.commercial_use]
        out.append(
            f"| `{card.id}` | {_cell(card.name)} | {_cell(card.developer)}"
            f" | {_params(card.parameters)} | {'yes' if card.open_weights else 'no'}"
            f" | {commercial} | {_value(card.indonesian)} | {_cell(card.strengths.en)} |"
        )
    return "\n".join(out) + "\n"
