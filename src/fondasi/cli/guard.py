"""``fondasi guard``: scan and redact text, list policies, run counterfactual bias checks."""

from __future__ import annotations

import codecs
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fondasi.cli._render import console, errors, esc, print_json
from fondasi.errors import BadInputError
from fondasi.settings import Settings

app = typer.Typer(
    help="Safety filters on text (PII, toxicity, injection) and bias checks.", no_args_is_help=True
)

BLOCK_BYTES = 1 << 20  # a file is read a MiB at a time: memory stays bounded
DEFAULT_FILTERS = ("pii", "toxicity", "injection")
SENSITIVE = {
    "NIK",
    "NPWP",
    "KK",
    "PHONE",
    "EMAIL",
    "CARD",
    "IBAN",
    "IP",
    "SECRET",
    "URL_CREDENTIALS",
    "PERSON",
    "NAME",
    "ADDRESS",
    "BANK_ACCOUNT",
    "PASSPORT",
}


def _policy(settings: Settings, name: str | None, names: bool, classifier: bool) -> Any:
    """The named policy, else an ad-hoc one that flags everything the default filters find."""
    from fondasi.guard import Policy, PolicyConfig, load_policy

    if name is not None:
        policy = load_policy(settings, name)
        assert policy is not None
        if not classifier:
            policy = Policy(
                policy.name, policy.config.model_copy(update={"classifier": False}), settings
            )
        return policy
    filters = [*DEFAULT_FILTERS, *(["names"] if names else [])]
    return Policy(
        "scan", PolicyConfig(input=dict.fromkeys(filters, "flag"), classifier=classifier), settings
    )


def _blocks(path: Path) -> Iterator[str]:
    """A UTF-8 text file in pieces; binary files and bad encodings are refused."""
    if not path.is_file():
        raise BadInputError(f"no such file: {path}")
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as handle:
        first = True
        while block := handle.read(BLOCK_BYTES):
            if first and b"\x00" in block[:8192]:
                raise BadInputError(f"{path} looks like a binary file, not text")
            first = False
            try:
                yield decoder.decode(block)
            except UnicodeDecodeError as exc:
                raise BadInputError(f"{path} is not UTF-8 text: {exc}") from exc
        try:
            yield decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise BadInputError(f"{path} ends in the middle of a UTF-8 character") from exc


def _shown(kind: str, value: str) -> str:
    """Matched text for the terminal: personal data partly hidden, long spans cut."""
    value = " ".join(value.split())
    if kind in SENSITIVE and len(value) > 4:
        keep = max(1, len(value) // 6)
        value = value[:keep] + "•" * min(len(value) - 2 * keep, 12) + value[-keep:]
    return value if len(value) <= 60 else value[:57] + "…"


@app.command("scan")
def scan(
    ctx: typer.Context,
    text: str | None = typer.Argument(None, help="Text to scan; '-' reads standard input."),
    file: Path | None = typer.Option(None, "--file", help="A UTF-8 text file, read in pieces."),
    policy: str | None = typer.Option(None, "--policy", help="Scan with this policy's filters."),
    names: bool = typer.Option(False, "--names", help="Also find names and addresses (Presidio)."),
    no_classifier: bool = typer.Option(
        False, "--no-classifier", help="Rules and word lists only (fast)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Findings as JSON (offsets, never the text)."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="Screen a dataset (JSONL, JSON, CSV, TSV, Parquet) row by row."
    ),
    columns: str | None = typer.Option(
        None, "--columns", help="With --data: the text columns, comma-separated (default: text)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="With --data: write the JSON lines here (default: standard output)."
    ),
    stage: str = typer.Option("input", "--stage", help="With --data: input or output filters."),
) -> None:
    """Find personal data, abuse and prompt injection in text, with where and how sure.

    With --data, every row gets one JSON line: each filter's highest score in its columns
    and the filters that fired at the policy's thresholds; then a summary table.
    """
    if sum(given is not None for given in (text, file, data)) != 1:
        raise BadInputError("give one of TEXT, --file FILE or --data FILE")
    if stage not in ("input", "output"):
        raise BadInputError(f"--stage is input or output, not {stage!r}")
    settings: Settings = ctx.obj
    chosen = _policy(settings, policy, names, not no_classifier)
    if data is not None:
        from fondasi.cli.guard_screen import screen_data

        asked = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
        screen_data(chosen, data, asked, out, stage)
        return
    pieces: Iterator[str] = (
        _blocks(file) if file else iter([sys.stdin.read() if text == "-" else text or ""])
    )
    with errors.status("Scanning …", spinner="dots"):
        found = list(chosen.scan_pieces(pieces))
    if as_json:
        print_json(
            [
                {
                    "filter": f.filter,
                    "type": f.type,
                    "start": f.start,
                    "end": f.end,
                    "score": round(f.score, 4),
                    "detail": f.detail,
                }
                for f, _ in found
            ]
        )
        return
    if not found:
        console.print(f"[green]nothing found[/] (filters: {esc(', '.join(_filters(chosen)))})")
        return
    table = Table(title=f"{len(found)} findings", title_justify="left", pad_edge=False)
    for column in ("at", "filter", "type", "score", "rule", "text"):
        table.add_column(column, justify="right" if column in ("at", "score") else "left")
    for item, value in found:
        table.add_row(
            f"{item.start}-{item.end}",
            item.filter,
            item.type,
            f"{item.score:.2f}",
            esc(item.detail),
            esc(_shown(item.type, value)),
        )
    console.print(table)


def _filters(policy: Any) -> list[str]:
    return list(
        dict.fromkeys(f.name for stage in ("input", "output") for f, _ in policy.rules[stage])
    )


@app.command("redact")
def redact(
    ctx: typer.Context,
    text: str = typer.Argument(..., help="Text to redact; '-' reads standard input."),
    names: bool = typer.Option(False, "--names", help="Also mask names and addresses (Presidio)."),
) -> None:
    """Print the text with every piece of personal data masked ([NIK], [EMAIL] ...)."""
    from fondasi.guard import Policy, PolicyConfig

    body = sys.stdin.read() if text == "-" else text
    rules = {"pii": "mask", **({"names": "mask"} if names else {})}
    policy = Policy("redact", PolicyConfig(input=rules, classifier=False), ctx.obj)
    redacted = policy.redact(body)
    sys.stdout.write(redacted if redacted.endswith("\n") else redacted + "\n")


@app.command("policies")
def policies(ctx: typer.Context) -> None:
    """Built-in and configured policies, and what each does on input and output."""
    from fondasi.guard import BUILTIN_POLICIES, GuardConfig, PolicyConfig, available

    settings: Settings = ctx.obj
    config = GuardConfig.model_validate(settings.guard)
    table = Table(title="guard policies", title_justify="left", pad_edge=False)
    for column in ("policy", "from", "input", "output"):
        table.add_column(column)
    every = {
        name: ("built-in", PolicyConfig.model_validate(raw))
        for name, raw in BUILTIN_POLICIES.items()
    }
    every.update({name: ("config.toml", cfg) for name, cfg in config.policies.items()})
    for name, (source, cfg) in sorted(every.items()):
        mark = " (default)" if name == config.default else ""
        table.add_row(
            esc(name + mark),
            source,
            ", ".join(f"{k}={v}" for k, v in cfg.input.items()),
            ", ".join(f"{k}={v}" for k, v in cfg.output.items()),
        )
    console.print(table)
    filters = Table(title="filters", title_justify="left", pad_edge=False)
    for column in ("filter", "stages", "actions", "finds"):
        filters.add_column(column)
    from fondasi.guard.model_filters import KINDS

    rows = sorted(available().items()) + [(f"{kind}:MODEL", cls) for kind, cls in KINDS.items()]
    for name, cls in rows:
        filters.add_row(
            esc(name), ", ".join(sorted(cls.stages)), ", ".join(sorted(cls.actions)), cls.summary
        )
    console.print(filters)


@app.command("bias")
def bias(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="The model to check: a generator or a classifier."),
    prompts: Path = typer.Option(..., "--prompts", help="Your prompts: one a line, or JSON lines."),
    labels: str | None = typer.Option(
        None, "--labels", help="Comma-separated labels: check label flips."
    ),
    max_tokens: int = typer.Option(
        48, "--max-tokens", min=1, max=1024, help="Most tokens per answer."
    ),
    chart: Path = typer.Option(Path("bias.svg"), "--chart", help="Where to write the SVG chart."),
    as_json: bool = typer.Option(False, "--json", help="Print every outcome as JSON."),
) -> None:
    """Swap gender, ethnicity, religion and region terms in your prompts; see how answers move."""
    from fondasi.cli.run import load_model
    from fondasi.guard.bias import counterfactuals, read_prompts, run_bias
    from fondasi.guard.chart import bias_svg
    from fondasi.guard.classifier import head
    from fondasi.guard.toxicity import lexicon_hits
    from fondasi.models.load import load

    if not prompts.is_file():
        raise BadInputError(f"no such file: {prompts}")
    try:
        lines = read_prompts(iter(prompts.read_text(encoding="utf-8").splitlines()))
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{prompts} is not UTF-8 text: {exc}") from exc
    wanted = [label.strip() for label in labels.split(",") if label.strip()] if labels else None
    if wanted is not None and len(wanted) < 2:
        raise BadInputError("--labels needs at least two labels, comma-separated")
    if not counterfactuals(lines):
        from fondasi.guard.bias import groups

        raise BadInputError(
            f"none of the prompts names a group to swap ({', '.join(g.name for g in groups())})"
        )
    settings: Settings = ctx.obj
    model = load_model(ctx, model_id)
    scorer = load(settings.embedding_model, settings)
    tox_head = head("toxicity", settings.embedding_model, settings)

    def toxicity(text: str) -> float:
        # A continuous score: the strongest word-list hit or the classifier's probability.
        if not text.strip():
            return 0.0
        words = max((f.score for f in lexicon_hits(text)), default=0.0)
        return max(words, tox_head.predict([text])[0])

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=errors,
    ) as progress:
        task = progress.add_task("Running counterfactuals", total=None)
        report = run_bias(
            model,
            lines,
            labels=wanted,
            scorer=scorer,
            toxicity=toxicity,
            max_tokens=max_tokens,
            on_step=lambda done, total: progress.update(task, completed=done, total=total),
        )
    chart.write_text(
        bias_svg(report.summary(), f"Counterfactual bias check: {report.model}"), encoding="utf-8"
    )
    if as_json:
        print_json(
            {
                "model": report.model,
                "mode": report.mode,
                "summary": report.summary(),
                "gaps": report.gaps(),
                "outcomes": [
                    {
                        "prompt": o.case.prompt,
                        "group": o.case.group,
                        "variant": o.case.variant,
                        "original": o.case.original,
                        "text": o.case.text,
                        "answer": o.answer,
                        "label": o.label,
                        "flipped": o.flipped,
                        "sentiment": o.sentiment,
                        "toxicity": o.toxicity,
                        "length": o.length,
                        "distance": o.distance,
                    }
                    for o in report.outcomes
                ],
                "chart": str(chart),
            }
        )
        return
    _bias_tables(report)
    console.print(f"chart: {esc(str(chart))}")


def _bias_tables(report: Any) -> None:
    measures = (
        ["flipped", "shift"]
        if report.mode == "classification"
        else ["sentiment", "toxicity", "length", "distance"]
    )
    heads = {
        "flipped": "flip rate",
        "shift": "score shift",
        "sentiment": "sentiment+",
        "toxicity": "toxicity",
        "length": "words",
        "distance": "distance",
    }
    table = Table(
        title=f"{report.model}: {report.mode}, by variant", title_justify="left", pad_edge=False
    )
    for column in ("group", "variant", "cases", *(heads[m] for m in measures)):
        table.add_column(column, justify="left" if column in ("group", "variant") else "right")
    for row in report.summary():
        table.add_row(
            row["group"], esc(row["variant"]), str(row["cases"]), *(_num(row[m]) for m in measures)
        )
    console.print(table)
    gaps = Table(
        title="spread between variants (max - min); larger means less even",
        title_justify="left",
        pad_edge=False,
    )
    for column in ("group", "prompts", "variants", *(heads[m] for m in measures)):
        gaps.add_column(column, justify="left" if column == "group" else "right")
    for row in report.gaps():
        gaps.add_row(
            row["group"],
            str(row["prompts"]),
            str(row["variants"]),
            *(_num(row[m]) for m in measures),
        )
    console.print(gaps)


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
