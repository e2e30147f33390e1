"""The ``fondasi run`` flags for tools, schemas, grammars and log-probabilities."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fondasi.errors import BadInputError


def read_json_file(path: Path, what: str) -> Any:
    """A JSON file's value; a missing or broken file is a clear error."""
    if not path.is_file():
        raise BadInputError(f"{what}: no such file: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BadInputError(
            f"{what}: {path} is not JSON ({exc.msg} at line {exc.lineno})"
        ) from None


def dialect_options(
    schema: Path | None,
    tools: Path | None,
    tool_choice: str,
    grammar: Path | None,
    logprobs: int | None,
) -> dict[str, Any]:
    """GenerateOptions fields from the flags (files read here, values checked by the options)."""
    fields: dict[str, Any] = {}
    if schema is not None:
        fields["json_schema"] = read_json_file(schema, "--schema")
    if tools is not None:
        listed = read_json_file(tools, "--tools")
        fields["tools"] = listed if isinstance(listed, list) else [listed]
        fields["tool_choice"] = tool_choice
    elif tool_choice != "auto":
        raise BadInputError("--tool-choice needs --tools")
    if grammar is not None:
        if not grammar.is_file():
            raise BadInputError(f"--grammar: no such file: {grammar}")
        fields["grammar"] = grammar.read_text(encoding="utf-8")
    if logprobs is not None:
        fields["logprobs"] = True
        fields["top_logprobs"] = logprobs
    return fields
