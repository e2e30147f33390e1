"""``fondasi run`` and ``fondasi chat``: generate text with any model, streamed."""

from __future__ import annotations

import sys
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from fondasi.cli._dialect import dialect_options
from fondasi.cli._render import console, errors, esc, print_json
from fondasi.errors import BadInputError
from fondasi.models.results import options_of
from fondasi.settings import Settings
from fondasi.types import GenerateOptions, Message, Role

if TYPE_CHECKING:
    from fondasi.models.contract import ModelHandle


def load_model(
    ctx: typer.Context, model_id: str, fallbacks: list[str] | None = None, guard: Any = None
) -> ModelHandle:
    """The composed model (routes and guard as config.toml and the flags say), loaded with a
    spinner on stderr so stdout stays clean for the answer; guard events go to stderr."""
    from fondasi.api import model

    settings: Settings = ctx.obj
    with errors.status(f"Loading {esc(model_id)} …", spinner="dots"):
        return model(
            model_id,
            settings,
            fallbacks=fallbacks or None,
            guard=guard,
            on_event=lambda event: errors.print(f"[dim]guard: {esc(event.describe())}[/]"),
        )


def guard_policy(ctx: typer.Context, policy_name: str | None) -> Any:
    """The guard policy named, or config's default, or None; checked before a model loads."""
    settings: Settings = ctx.obj
    if policy_name is None and not settings.guard.get("default"):
        return None
    from fondasi.guard import load_policy

    return load_policy(settings, policy_name)


def run(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="Catalog id or hf:/path, gguf:/file.gguf."),
    prompt: str | None = typer.Argument(
        None, help="The prompt; '-' reads it from standard input. Not with --template."
    ),
    system: str | None = typer.Option(None, "--system", help="System prompt (chat models)."),
    max_tokens: int = typer.Option(256, "--max-tokens", help="Most new tokens."),
    temperature: float = typer.Option(0.0, "--temperature", help="0 = greedy."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling mass."),
    stop: list[str] = typer.Option([], "--stop", help="Stop sequence (repeatable)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed for sampling."),
    image: list[Path] = typer.Option([], "--image", help="Image for a vision model (repeatable)."),
    fallback: list[str] = typer.Option([], "--fallback", help="Model to try if this one fails."),
    explain: bool = typer.Option(False, "--explain", help="Say which model answered and why."),
    confidential: bool = typer.Option(
        False, "--confidential", help="Never send this prompt off the machine."
    ),
    template: str | None = typer.Option(
        None, "--template", help="Prompt template name or .yaml path (see `fondasi prompt`)."
    ),
    var: list[str] = typer.Option([], "--var", help="Template variable NAME=VALUE (repeatable)."),
    shots: int | None = typer.Option(None, "--shots", min=0, help="Few-shot examples to show."),
    select: str | None = typer.Option(None, "--select", help="fixed, random, balanced or knn."),
    no_stream: bool = typer.Option(False, "--no-stream", help="Print the answer at the end."),
    as_json: bool = typer.Option(False, "--json", help="Print the completion as JSON."),
    json_mode: bool = typer.Option(
        False, "--json-mode", help="Answer with one JSON object (the provider's JSON mode)."
    ),
    guard: str | None = typer.Option(
        None, "--guard", help="Guard policy for input and output (default: guard.default)."
    ),
    schema: Path | None = typer.Option(
        None, "--schema", help="JSON schema file the answer must match (local: held to it)."
    ),
    tools: Path | None = typer.Option(
        None, "--tools", help="JSON file of OpenAI tools the model may call."
    ),
    tool_choice: str = typer.Option(
        "auto", "--tool-choice", help="auto, none, required or a function's name."
    ),
    grammar: Path | None = typer.Option(
        None, "--grammar", help="Lark grammar file the answer must match (local models)."
    ),
    logprobs: int | None = typer.Option(
        None, "--logprobs", min=0, max=20, help="Print token log-probabilities (N alternatives)."
    ),
) -> None:
    """Generate text from a prompt, streamed to the terminal as it is produced.

    With --template the prompt is a template rendered with --var values (zero-shot, or
    few-shot with --shots); label and JSON answers are read and checked.
    """
    if template is None and prompt is None:
        raise BadInputError("give a prompt, or --template NAME with --var input=...")
    if template is not None and prompt is not None:
        raise BadInputError("give either a prompt or --template, not both")
    if prompt == "-":
        prompt = sys.stdin.read()
    options = options_of(
        None,
        {
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "stop": stop,
            "seed": seed,
            "json_mode": json_mode,
            "confidential": confidential,
            **dialect_options(schema, tools, tool_choice, grammar, logprobs),
        },
    )
    model = load_model(ctx, model_id, fallback, guard_policy(ctx, guard))
    images = [str(path) for path in image] or None
    if template is not None:
        from fondasi.cli.prompt import parse_vars

        answer_template(model, template, parse_vars(var), shots, select, options, as_json)
        if explain:
            errors.print(f"[dim]route: {esc(model.explain())}[/]")
        return
    if as_json or no_stream or options.tools or options.logprobs:
        completion = model.generate(prompt or "", system=system, images=images, options=options)
        if as_json:
            print_json(completion)
        else:
            shown = [completion.text] if completion.text else []
            shown += [f"{call.name}({call.arguments})" for call in completion.tool_calls]
            sys.stdout.write("\n".join(shown) + "\n")
            if completion.finish_reason == "length":
                errors.print("[yellow]the answer was cut at --max-tokens[/]")
            for token in completion.logprobs or []:
                tops = ", ".join(f"{t.token!r} {t.logprob:.2f}" for t in token.top_logprobs)
                errors.print(f"[dim]{esc(repr(token.token))} {token.logprob:.2f}  {esc(tops)}[/]")
        if explain:
            errors.print(f"[dim]route: {esc(model.explain())}[/]")
        return
    for chunk in model.stream(prompt or "", system=system, images=images, options=options):
        sys.stdout.write(chunk.text)
        sys.stdout.flush()
    sys.stdout.write("\n")
    if explain:
        errors.print(f"[dim]route: {esc(model.explain())}[/]")


def answer_template(
    model: ModelHandle,
    template: str,
    values: dict[str, str],
    shots: int | None,
    select: str | None,
    options: GenerateOptions,
    as_json: bool,
) -> None:
    """Render, generate and read the answer; print the text and what was read from it."""
    from fondasi.models.prompting import ask

    with errors.status("Thinking …", spinner="dots"):
        answer = ask(model, template, values, shots=shots, select=select, options=options)
    if as_json:
        print_json(
            {
                "template": answer.rendered.template.name,
                "value": answer.value,
                "error": answer.error,
                "repaired": answer.repaired,
                "examples": len(answer.rendered.examples),
                "completion": answer.completion.model_dump(mode="json"),
            }
        )
        return
    sys.stdout.write(answer.text.strip() + "\n")
    output = answer.rendered.template.output.format
    if answer.error:
        errors.print(f"[yellow]could not read the answer as {output}: {esc(answer.error)}[/]")
    elif output == "label":
        read = answer.value if answer.value is not None else "none of the labels"
        errors.print(f"[dim]label: {esc(str(read))}[/]")
    elif output == "json" and answer.repaired:
        errors.print("[dim]JSON repaired in a second turn[/]")


def chat(
    ctx: typer.Context,
    model_id: str | None = typer.Argument(
        None, help="A chat model: catalog id or path (default: settings' chat_model)."
    ),
    system: str | None = typer.Option(None, "--system", help="System prompt."),
    max_tokens: int = typer.Option(512, "--max-tokens", help="Most new tokens per answer."),
    temperature: float = typer.Option(0.0, "--temperature", help="0 = greedy."),
    guard: str | None = typer.Option(
        None, "--guard", help="Guard policy for every turn (default: guard.default)."
    ),
) -> None:
    """Talk with a model; it remembers the conversation. /reset forgets, /exit or Ctrl-D ends."""
    settings: Settings = ctx.obj
    model_id = model_id or settings.chat_model
    model = load_model(ctx, model_id, guard=guard_policy(ctx, guard))
    from fondasi.backends.base import Capability
    from fondasi.guard.events import GuardBlockedError

    if not model.can(Capability.CHAT):
        raise BadInputError(f"{model.id} has no chat template; use `fondasi run` with plain text")
    history: list[Message] = []
    console.print(f"[dim]Chatting with {esc(model.id)}. /reset forgets, /exit ends.[/]")
    while True:
        try:
            line = input("> ")
        except (EOFError, KeyboardInterrupt):
            break
        text = line.strip()
        if text in {"/exit", "/quit"}:
            break
        if text == "/reset":
            history.clear()
            console.print("[dim]Forgotten.[/]")
            continue
        if not text:
            continue
        history.append(Message(role=Role.USER, content=text))
        parts: list[str] = []
        try:
            with suppress(KeyboardInterrupt):  # Ctrl-C stops this answer, not the session
                for chunk in model.stream(
                    history, system=system, max_tokens=max_tokens, temperature=temperature
                ):
                    sys.stdout.write(chunk.text)
                    sys.stdout.flush()
                    parts.append(chunk.text)
        except GuardBlockedError as blocked:  # the turn is refused, the conversation goes on
            history.pop()
            errors.print(f"\n[yellow]{esc(str(blocked))}[/]")
            continue
        sys.stdout.write("\n")
        history.append(Message(role=Role.ASSISTANT, content="".join(parts)))
