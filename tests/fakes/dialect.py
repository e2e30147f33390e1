"""What the fakes share about tools and schemas: when to call, with what, and the answers.

Each fake checks its provider's own request shape and streams in its own wire; this
module only decides what the model "does", so every fake behaves the same:

- with tools and a choice that forces a call (required, or a named function), or with
  the model ``tool-caller`` and choice auto, the answer is a call of the named (else the
  first) tool, its arguments built from the schema and the last user text;
  ``parallel-caller`` calls every tool, once each;
- after a tool-result turn the answer is ``Result: <the tool's output>``;
- with a JSON schema the answer is an object that matches it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jsonschema

CALLERS = ("tool-caller", "parallel-caller")


@dataclass(frozen=True)
class Call:
    """A call the fake model makes: the id, the function and its arguments as JSON text."""

    id: str
    name: str
    arguments: str


def value_for(schema: dict[str, Any], said: str) -> Any:
    """A value matching ``schema``, its strings taken from what the user said."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: value_for(sub, said) for name, sub in properties.items()}
    return {
        "string": said,
        "integer": len(said.split()),
        "number": 1.5,
        "boolean": True,
        "array": [],
        "null": None,
    }[kind]


def schema_answer(schema: dict[str, Any], said: str) -> str:
    """The JSON text of an object matching ``schema``, checked against it."""
    value = value_for(schema, said)
    jsonschema.validate(value, schema)
    return json.dumps(value)


def calls_for(
    tools: dict[str, dict[str, Any]], choice: str | None, model: str, said: str
) -> list[Call]:
    """The calls the model makes: ``choice`` is auto/none/required or a function's name."""
    if not tools or choice == "none":
        return []
    if choice not in ("auto", "required", None):
        names = [str(choice)]
    elif model == "parallel-caller":
        names = list(tools)
    elif choice == "required" or model == "tool-caller":
        names = list(tools)[:1]
    else:
        return []
    return [
        Call(f"call_fake{i}", name, json.dumps(value_for(tools[name], said)))
        for i, name in enumerate(names)
    ]


def fragments(text: str, pieces: int = 3) -> list[str]:
    """``text`` split into ``pieces`` parts, as APIs stream arguments."""
    size = max(1, -(-len(text) // pieces))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def valid_schema(schema: Any) -> bool:
    """Whether ``schema`` is a JSON schema (as the APIs check a tool's parameters)."""
    if not isinstance(schema, dict):
        return False
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError:
        return False
    return True
