"""``fondasi models``: list, show and search the catalog."""

from __future__ import annotations

import typer
from rich.panel import Panel
from rich.table import Table

from fondasi.catalog import Catalog, Kind, ModelCard
from fondasi.cli._render import console, count, esc, print_json, tokens, yes_no
from fondasi.errors import BadInputError, UnknownChoiceError
from fondasi.recommend.estimates import memory_fit
from fondasi.recommend.requirements import parse_task
from fondasi.registry import close_matches
from fondasi.settings import Settings

app = typer.Typer(help="Know the models: list, show and search the catalog.")


def _catalog(ctx: typer.Context) -> Catalog:
    settings: Settings = ctx.obj
    return Catalog.load(settings.card_dirs())


def parse_kind(value: str) -> Kind:
    """A kind from its name; an unknown one names the closest."""
    try:
        return Kind(value.strip().lower())
    except ValueError:
        names = [kind.value for kind in Kind]
        close = close_matches(value.lower(), names, n=2)
        raise UnknownChoiceError("kind", value, names, close) from None


def _where(card: ModelCard) -> str:
    ways = []
    if card.availability.pip:
        ways.append("[bold green]pip[/]")
    if card.availability.huggingface:
        ways.append("hf")
    if card.availability.hosted:
        ways.append(",".join(dict.fromkeys(o.provider for o in card.availability.api)))
    return " ".join(ways) or "[dim]none[/]"


def _table(cards: list[ModelCard], title: str) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False, pad_edge=False)
    table.add_column("id", style="bold cyan", no_wrap=True)
    table.add_column("kind")
    table.add_column("developer")
    table.add_column("params", justify="right")
    table.add_column("context", justify="right")
    table.add_column("open")
    table.add_column("licence")
    table.add_column("commercial")
    table.add_column("ID")
    table.add_column("get it")
    for card in cards:
        table.add_row(
            card.id,
            card.kind.value,
            esc(card.developer),
            count(card.parameters),
            tokens(card.context_length),
            yes_no(card.open_weights),
            esc(card.license.name),
            yes_no(card.license.commercial_use),
            card.indonesian.value if card.indonesian else "?",
            _where(card),
        )
    return table


@app.callback(invoke_without_command=True)
def list_models(
    ctx: typer.Context,
    kind: str | None = typer.Option(
        None,
        "--kind",
        help="llm, embedding, multimodal, domain, nlp, vision, image-generation, speech.",
    ),
    open_only: bool = typer.Option(False, "--open", help="Only open-weight models."),
    closed_only: bool = typer.Option(False, "--closed", help="Only closed (API) models."),
    task: str | None = typer.Option(None, "--task", help="Only models fit for this task."),
    runs_here: bool = typer.Option(
        False, "--runs-here", help="Only models whose weights fit this machine's memory."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the cards as JSON."),
) -> None:
    """List the catalog's models as a table."""
    if ctx.invoked_subcommand is not None:
        return
    if open_only and closed_only:
        raise BadInputError("--open and --closed exclude each other: pick one")
    catalog = _catalog(ctx)
    cards = catalog.filter(
        kind=parse_kind(kind) if kind else None,
        open_weights=True if open_only else False if closed_only else None,
        task=parse_task(task) if task else None,
    )
    title = f"{len(cards)} of {len(catalog)} models"
    if runs_here:
        from fondasi import system

        hw = system.detect()
        cards = [c for c in cards if c.runs_locally and memory_fit(c, hw.ram_gb, hw.vram_gb).fits]
        gpu = f", {hw.vram_gb:g} GB VRAM" if hw.gpus else ", no GPU"
        title = f"{len(cards)} models run here ({hw.ram_gb:g} GB RAM{gpu})"
    if as_json:
        print_json([card.model_dump(mode="json") for card in cards])
        return
    console.print(_table(cards, title))
    console.print(
        "[dim]ID = Bahasa Indonesia support. get it: pip = weights ship in a pip package "
        "(offline), hf = Hugging Face, else the API provider. `fondasi models show ID` for more.[/]"
    )


@app.command("show")
def show(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="Catalog id or alias, e.g. gpt-4o."),
    as_json: bool = typer.Option(False, "--json", help="Print the card as JSON."),
) -> None:
    """Show everything the catalog knows about one model."""
    card = _catalog(ctx).get(model_id)
    if as_json:
        # The card as stored, plus what fondasi derives from it (not part of the card schema).
        derived = {"memory_gb_estimate": {"fp16": card.memory_gb(16), "int4": card.memory_gb(4)}}
        print_json({**card.model_dump(mode="json"), "derived": derived})
        return
    console.print(
        Panel(_card_text(card), title=f"[bold]{esc(card.name)}[/] ({card.id})", expand=False)
    )


def _card_text(card: ModelCard) -> str:
    lic = card.license
    avail = card.availability
    lines = [
        f"[bold]developer[/]     {esc(card.developer)} ({card.release_year or '?'})",
        f"[bold]kind[/]          {card.kind.value}, {card.architecture.value}"
        + (f" ({card.hf_architecture})" if card.hf_architecture else ""),
        f"[bold]modalities[/]    {', '.join(m.value for m in card.inputs)} -> "
        f"{', '.join(m.value for m in card.outputs)}",
        f"[bold]tasks[/]         {', '.join(t.value for t in card.tasks)}",
        f"[bold]parameters[/]    {count(card.parameters)}    [bold]context[/] "
        f"{tokens(card.context_length)} tokens"
        + (f"    [bold]dim[/] {card.embedding_dim}" if card.embedding_dim else ""),
        f"[bold]open weights[/]  {yes_no(card.open_weights)}    [bold]licence[/] {esc(lic.name)}, "
        f"commercial use {yes_no(lic.commercial_use)}"
        + (f" — {esc(lic.notes)}" if lic.notes else ""),
        f"[bold]languages[/]     {', '.join(card.languages) or '?'}    [bold]Indonesian[/] "
        f"{card.indonesian.value if card.indonesian else 'unknown'}",
    ]
    if card.runs_locally:
        lines.append(
            f"[bold]memory[/]        ~{card.memory_gb(16) or '?'} GB at 16-bit, "
            f"~{card.memory_gb(4) or '?'} GB at 4-bit"
        )
    for offer in avail.api:
        state = {"retired": " [red](retired)[/]", "deprecated": " [yellow](deprecated)[/]"}
        when = f", shuts down {offer.shutdown}" if offer.shutdown else ""
        lines.append(
            f"[bold]api[/]           {offer.provider}: {esc(offer.model)}"
            f"{state.get(offer.status.value, '')}{when}"
        )
    if card.pricing:
        p = card.pricing
        price = (
            f"${p.per_image}/image"
            if p.per_image is not None
            else f"${p.input_per_1m} in / ${p.output_per_1m} out per 1M tokens"
        )
        lines.append(f"[bold]price[/]         {price} (as of {p.as_of})")
    for repo in avail.huggingface:
        lines.append(f"[bold]hugging face[/]  {esc(repo)}")
    for pkg in avail.pip:
        lines.append(f"[bold]pip[/]           {pkg.package}=={pkg.version} (offline, {pkg.format})")
    if avail.other:
        lines.append(f"[bold]other[/]         {esc(avail.other)}")
    lines += [
        "",
        f"[bold]strengths[/]  {esc(card.strengths.en)}",
        f"[bold]kelebihan[/]  {esc(card.strengths.id)}",
        f"[bold]use cases[/]  {esc(card.use_cases.en)}",
        f"[bold]kegunaan[/]   {esc(card.use_cases.id)}",
    ]
    if card.seed:
        lines.append(f"[bold]catatan[/]    {esc(card.seed)}")
    if card.notes:
        lines.append(f"[bold]notes[/]      {esc(card.notes)}")
    return "\n".join(lines)


@app.command("search")
def search(
    ctx: typer.Context,
    text: list[str] = typer.Argument(..., help="Words to look for (all must match)."),
    as_json: bool = typer.Option(False, "--json", help="Print the matching cards as JSON."),
) -> None:
    """Find models whose facts mention every word (English or Indonesian)."""
    query = " ".join(text)
    cards = _catalog(ctx).search(query)
    if as_json:
        print_json([card.model_dump(mode="json") for card in cards])
        return
    if not cards:
        console.print(f"No model mentions all of: {esc(repr(query))}. Try fewer or other words.")
        return
    console.print(_table(cards, f"{len(cards)} models match {esc(repr(query))}"))


@app.command("pull")
def pull(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="Catalog id or hf:ORG/NAME."),
    revision: str | None = typer.Option(None, "--revision", help="Branch, tag or commit."),
) -> None:
    """Download a model's weights into the Hugging Face cache (needs a network)."""
    from fondasi.backends import hub

    repo = hub.repo_for(model_id, _catalog(ctx))
    console.print(f"Pulling {esc(repo)} into {esc(str(hub.hub_cache()))} (safetensors/GGUF only)")
    folder = hub.pull(repo, revision)
    console.print(f"[green]Done:[/] {esc(str(folder))}")
