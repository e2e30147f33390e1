"""Ask a model through a template and read its answer: label, JSON (one repair) or text.

answer = fondasi.ask(model, "sentiment-id", input="Pelayanannya lambat", shots=3)
answer.value      # "negatif"
answer.completion # the text, usage, cost
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fondasi.backends.base import Capability
from fondasi.prompts.parse import OutputParseError, repair_message
from fondasi.prompts.render import Rendered, render
from fondasi.prompts.template import PromptTemplate
from fondasi.types import Completion, GenerateOptions, Message, Role

if TYPE_CHECKING:
    from fondasi.models.contract import ModelHandle


@dataclass(frozen=True)
class Answer:
    """A model's answer to a template, read as the template's output format."""

    value: Any  # the label, the validated JSON, or the text; None if it could not be read
    completion: Completion  # the last call (the repair, if there was one)
    rendered: Rendered
    repaired: bool = False  # a second turn was needed to get valid JSON
    error: str | None = None  # why the answer could not be read, if it could not

    @property
    def text(self) -> str:
        """The model's raw answer."""
        return self.completion.text


def prepare(
    model: ModelHandle,
    template: str | PromptTemplate,
    variables: Mapping[str, Any],
    *,
    shots: int | None = None,
    select: str | None = None,
    seed: int | None = None,
    examples: Sequence[Mapping[str, str]] | None = None,
    labels: Sequence[str] | None = None,
    max_tokens: int = 256,
) -> Rendered:
    """Render ``template`` for ``model``: its chat form, within its context."""
    from fondasi.models.load import embedder_for

    settings = model.settings
    chosen = (
        template
        if isinstance(template, PromptTemplate)
        else PromptTemplate.load(template, settings.home if settings else None)
    )
    needs_knn = (select or chosen.fewshot.select) == "knn" and (shots is None or shots > 0)
    return render(
        chosen,
        variables,
        shots=shots,
        select=select,
        seed=seed,
        examples=examples,
        labels=labels,
        embed=embedder_for(settings) if needs_knn else None,
        budget=model.budget(reserve=max_tokens),
        chat=model.can(Capability.CHAT),
    )


def ask(
    model: ModelHandle,
    template: str | PromptTemplate | Rendered,
    variables: Mapping[str, Any] | None = None,
    *,
    shots: int | None = None,
    select: str | None = None,
    seed: int | None = None,
    examples: Sequence[Mapping[str, str]] | None = None,
    labels: Sequence[str] | None = None,
    options: GenerateOptions | None = None,
    schema: Any = None,
    **values: Any,
) -> Answer:
    """Render, generate and read the answer; bad JSON gets one repair turn.

    ``model`` is anything ``fondasi.model(...)`` returns.
    ``schema`` (a pydantic model class or a JSON Schema) reads the answer as that JSON; a
    class gives an instance of it.
    """
    opts = options or GenerateOptions()
    rendered = (
        template
        if isinstance(template, Rendered)
        else prepare(
            model,
            template,
            {**(variables or {}), **values},
            shots=shots,
            select=select,
            seed=seed,
            examples=examples,
            labels=labels,
            max_tokens=opts.max_tokens,
        )
    )
    completion = model.generate(rendered, options=opts)
    try:
        return Answer(rendered.parse(completion.text, schema), completion, rendered)
    except OutputParseError as problem:
        wanted = schema if schema is not None else rendered.template.output.json_schema
        follow_up = repair_message(problem, wanted, rendered.template.language)
        chat = model.can(Capability.CHAT)
        prompt: str | list[Message] = (
            [
                *rendered.messages,
                Message(role=Role.ASSISTANT, content=completion.text),
                Message(role=Role.USER, content=follow_up),
            ]
            if chat
            else f"{rendered.text} {completion.text}\n\n{follow_up}\n"
        )
        repaired = model.generate(prompt, options=opts)
        try:
            value = rendered.parse(repaired.text, schema)
            return Answer(value, repaired, rendered, repaired=True)
        except OutputParseError as second:
            return Answer(None, repaired, rendered, repaired=True, error=str(second))
