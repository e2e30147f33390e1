"""Render a template with variables and chosen examples into messages and plain text.

Both forms are made at once: the model decides which it reads (messages through its own
chat template, or text for a base model). Examples that would overflow the model's
context are dropped, least important first, with a warning.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fondasi.prompts.sandbox import PromptError
from fondasi.prompts.sandbox import render as render_text
from fondasi.prompts.select import Embed, Pick, selector
from fondasi.prompts.template import PromptTemplate
from fondasi.registry import close_matches
from fondasi.types import Message, Role

log = logging.getLogger(__name__)

# Tokens a chat template adds around each message (role markers, separators): a margin
# so that a prompt measured as plain text still fits once templated.
TOKENS_PER_MESSAGE = 8


@dataclass(frozen=True)
class Rendered:
    """A rendered prompt: chat messages, the same prompt as text, and what went into it."""

    template: PromptTemplate
    messages: tuple[Message, ...]
    text: str
    examples: tuple[dict[str, str], ...] = ()
    dropped: int = 0  # examples left out so the prompt fits the context
    variables: dict[str, str] = field(default_factory=dict)
    labels: tuple[str, ...] = ()  # the label set this prompt asks for (label templates)

    def prompt(self, chat: bool) -> str | list[Message]:
        """Messages for a chat model, text for a base model."""
        return list(self.messages) if chat else self.text

    def parse(self, answer: str, schema: Any = None) -> Any:
        """The answer read as the template's output format (label, JSON or text).

        ``schema``, a pydantic model class or JSON Schema, reads it as that JSON instead.
        """
        from fondasi.prompts.answers import read_answer

        return read_answer(self.template, answer, self.labels, schema)


@dataclass(frozen=True)
class Budget:
    """How much prompt a model can take: its tokenizer and its context less the answer."""

    count_tokens: Callable[[str], int]
    limit: int

    def fits(self, rendered: Rendered, chat: bool) -> bool:
        """Whether the rendered prompt, templated, leaves room for the answer."""
        if chat:
            used = sum(self.count_tokens(m.content) + TOKENS_PER_MESSAGE for m in rendered.messages)
        else:
            used = self.count_tokens(rendered.text)
        return used <= self.limit


def check_variables(template: PromptTemplate, variables: Mapping[str, Any]) -> dict[str, str]:
    """The caller's variables as strings; a missing or unknown one is a clear error."""
    unknown = [name for name in variables if name not in template.variables]
    if unknown:
        close = close_matches(unknown[0], template.variables, n=1, cutoff=0.6)
        hint = (
            f"; did you mean {close[0]!r}?"
            if close
            else f"; it takes: {', '.join(template.variables)}"
        )
        raise PromptError(f"{template.name}: unknown variable {unknown[0]!r}{hint}")
    missing = [name for name in template.variables if name not in variables]
    if missing:
        raise PromptError(
            f"{template.name}: missing variable {missing[0]!r}; "
            f"it needs: {', '.join(template.variables)}"
        )
    values: dict[str, str] = {}
    for name, value in variables.items():
        if not isinstance(value, str | int | float):
            raise PromptError(f"{template.name}: variable {name!r} must be text")
        values[name] = str(value)
    return values


def compose(
    template: PromptTemplate,
    values: Mapping[str, str],
    examples: Sequence[Mapping[str, str]],
    layout: str | None = None,
    labels: Sequence[str] | None = None,
) -> Rendered:
    """Render the template around ``examples`` (already chosen and ordered)."""
    names = label_set(template, labels)
    context = _context(template, names)

    def part(name: str, extra: Mapping[str, Any]) -> str:
        source: str = getattr(template, name) or ""
        return render_text(source, f"{template.name}.{name}", {**context, **extra}).strip()

    system = part("system", values) or None
    instruction = part("instruction", values)
    query = part("input", values)
    pairs = [(part("input", ex), part("answer", ex)) for ex in examples]

    blocks = [instruction] if instruction else []
    for n, (example, (question, answer)) in enumerate(zip(examples, pairs, strict=True), 1):
        header = part("example_header", {**example, "n": n})
        body = f"{question}{template.answer_separator}{answer}"
        blocks.append(f"{header}\n{body}" if header else body)
    if query:
        blocks.append(query)
    single = template.separator.join(blocks)
    text = template.separator.join([system, single]) if system else single

    messages = [Message(role=Role.SYSTEM, content=system)] if system else []
    if (layout or template.fewshot.layout) == "single" or not pairs:
        messages.append(Message(role=Role.USER, content=single))
    else:
        lead = f"{instruction}{template.separator}" if instruction else ""
        for n, (question, answer) in enumerate(pairs):
            messages.append(Message(role=Role.USER, content=(lead if n == 0 else "") + question))
            messages.append(Message(role=Role.ASSISTANT, content=answer))
        messages.append(Message(role=Role.USER, content=query))
    shown = tuple(dict(example) for example in examples)
    return Rendered(template, tuple(messages), text, shown, 0, dict(values), tuple(names))


def render(
    template: PromptTemplate,
    variables: Mapping[str, Any],
    *,
    shots: int | None = None,
    select: str | None = None,
    seed: int | None = None,
    examples: Sequence[Mapping[str, str]] | None = None,
    embed: Embed | None = None,
    layout: str | None = None,
    budget: Budget | None = None,
    chat: bool = True,
    labels: Sequence[str] | None = None,
) -> Rendered:
    """Choose examples for this input, render, and drop examples that do not fit."""
    values = check_variables(template, variables)
    pool = template.shots(examples)
    if labels is not None and template.output.format == "label":
        # Asked for a subset of the labels: examples of the others would teach them.
        field = template.fewshot.label_field
        pool = [example for example in pool if example.get(field) in set(labels)]
    wanted = shots if shots is not None else template.fewshot.k
    if wanted is not None and wanted < 0:
        raise PromptError("shots must be 0 or more")
    k = len(pool) if wanted is None else min(wanted, len(pool))
    chooser = selector(select or template.fewshot.select)
    pick = Pick(
        query="\n".join(values[name] for name in template.variables),
        k=k,
        seed=template.fewshot.seed if seed is None else seed,
        label_field=template.fewshot.label_field,
        fields=tuple(template.variables),
        embed=embed,
    )
    chosen = chooser.choose(pool, pick) if k else []
    while True:
        shown = [pool[i] for i in chooser.arrange(chosen)]
        rendered = compose(template, values, shown, layout, labels)
        if budget is None or budget.fits(rendered, chat):
            break
        if not chosen:
            raise PromptError(
                f"{template.name}: the prompt alone is longer than the model's context "
                f"({budget.limit} tokens left for it); shorten the input"
            )
        chosen = chosen[:-1]
    dropped = k - len(chosen)
    if dropped:
        log.warning(
            "%s: %d of %d examples dropped to fit the model's context", template.name, dropped, k
        )
    return replace(rendered, dropped=dropped)


def label_set(template: PromptTemplate, labels: Sequence[str] | None) -> list[str]:
    """The caller's labels, else the template's; a label template needs some."""
    if isinstance(labels, str):
        raise PromptError("labels must be a list of names")
    names = list(labels) if labels is not None else template.label_names
    if template.output.format == "label" and len(names) < 2:
        raise PromptError(f"{template.name}: give at least two labels to choose between")
    if len(set(names)) != len(names):
        raise PromptError("labels must be distinct")
    return names


def _context(template: PromptTemplate, labels: Sequence[str]) -> dict[str, Any]:
    """Names every field of a template may use besides its variables."""
    specs = template.output.labels
    schema = template.output.json_schema or {}
    return {
        "schema": json.dumps(schema, ensure_ascii=False) if schema else "",
        "fields": list(schema.get("properties", {})),
        "labels": list(labels),
        "label_descriptions": {
            name: (specs[name].description if name in specs else None) or name for name in labels
        },
    }
