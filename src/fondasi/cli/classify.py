"""``fondasi classify``: label texts with a classifier, or zero-shot with any embedding model."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from fondasi.cli._render import console, errors, esc, print_json
from fondasi.cli.run import load_model
from fondasi.errors import BadInputError


def parse_labels(labels: str | None, describe: list[str]) -> list[str] | dict[str, str] | None:
    """``a,b,c`` plus optional ``a=description`` pairs into names or a name -> text mapping."""
    names = [name.strip() for name in (labels or "").split(",") if name.strip()]
    descriptions: dict[str, str] = {}
    for pair in describe:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip() or not text.strip():
            raise BadInputError(f"--describe takes LABEL=DESCRIPTION, got {pair!r}")
        descriptions[name.strip()] = text.strip()
    unknown = set(descriptions) - set(names)
    if unknown and names:
        raise BadInputError(
            f"--describe names labels not in --labels: {', '.join(sorted(unknown))}"
        )
    if descriptions:
        return {name: descriptions.get(name, name) for name in (names or descriptions)}
    return names or None


def classify(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="A classifier, or any embedding model (zero-shot)."),
    texts: list[str] = typer.Argument(..., help="Texts to classify."),
    labels: str | None = typer.Option(None, "--labels", help="Comma-separated labels."),
    describe: list[str] = typer.Option(
        [], "--describe", help="LABEL=DESCRIPTION to compare against (repeatable)."
    ),
    shots: Path | None = typer.Option(
        None, "--shots", help='JSONL of labelled examples ({"text", "label"}) for few-shot.'
    ),
    template: str | None = typer.Option(
        None, "--template", help="Label template for language models (default classify-en)."
    ),
    k: int | None = typer.Option(None, "--k", min=0, help="Examples per prompt (language models)."),
    select: str | None = typer.Option(None, "--select", help="fixed, random, balanced or knn."),
    no_calibrate: bool = typer.Option(
        False, "--no-calibrate", help="Skip contextual calibration of label log-probabilities."
    ),
    top: int = typer.Option(3, "--top", min=1, help="Labels to show per text."),
    as_json: bool = typer.Option(False, "--json", help="Print all labels and scores as JSON."),
) -> None:
    """Classify texts: the model's own labels, zero-shot against --labels, or few-shot.

    Embedding models compare with label descriptions (or class centres of --shots);
    language models score each label's log-probability after a prompt template.
    """
    from fondasi.data import read_jsonl

    wanted = parse_labels(labels, describe)
    examples = read_jsonl(shots) if shots else None
    model = load_model(ctx, model_id)
    with errors.status("Classifying …", spinner="dots"):
        results = model.classify(
            list(texts),
            wanted,
            shots=examples,
            template=template,
            k=k,
            select=select,
            calibrate=not no_calibrate,
        )
    if as_json:
        print_json(
            [
                {"text": text, "labels": [label.model_dump() for label in ranking]}
                for text, ranking in zip(texts, results, strict=True)
            ]
        )
        return
    table = Table(title=f"{esc(model.id)}", title_justify="left", pad_edge=False)
    table.add_column("text")
    table.add_column("label", style="bold")
    table.add_column("score", justify="right")
    table.add_column("next")
    for text, ranking in zip(texts, results, strict=True):
        rest = ", ".join(f"{esc(item.label)} {item.score:.2f}" for item in ranking[1:top])
        best = ranking[0]
        table.add_row(esc(text[:60]), esc(best.label), f"{best.score:.2f}", rest)
    console.print(table)
