"""Read a model's answer the way its template says: a label, JSON, or text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fondasi.prompts.parse import Schema, parse_json, parse_label
from fondasi.prompts.template import PromptTemplate


def read_answer(
    template: PromptTemplate, answer: str, labels: Sequence[str] = (), schema: Schema = None
) -> Any:
    """A label of ``labels`` (None if none matched), a validated JSON value, or the text.

    ``schema`` (a pydantic model class or JSON Schema) overrides the template's and makes
    the answer JSON. JSON that cannot be read raises ``OutputParseError``, which
    ``fondasi.models.prompting`` answers with one repair turn.
    """
    output = template.output
    if output.format == "label":
        specs = output.labels
        names = labels or list(specs)
        return parse_label(
            answer, {name: specs[name].synonyms if name in specs else [] for name in names}
        )
    if output.format == "json" or schema is not None:
        return parse_json(answer, schema if schema is not None else output.json_schema)
    return answer.strip()
