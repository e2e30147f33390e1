"""Checks that only make sense on a model's answer: did it leak the system prompt, and does
it match the JSON schema the caller asked for. (New personal data in an answer is the
``pii`` filter's output stage.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fondasi.errors import BadInputError
from fondasi.guard.base import Filter, Finding, ScanContext, register

TOKEN = re.compile(r"\w+")
SHINGLE = 6  # words in a row shared with the system prompt that count as a leak


@register("system_prompt_leak")
class SystemPromptLeak(Filter):
    """The answer repeats runs of the system prompt (6 words or more in a row)."""

    summary = "answers that repeat the system prompt"
    stages = frozenset({"output"})
    actions = frozenset({"flag", "mask", "block"})
    threshold = 0.0

    def scan(self, text: str, context: ScanContext) -> list[Finding]:
        """Spans of the answer made of word runs the system prompt also has."""
        if not context.system:
            return []
        secret = [m.group().lower() for m in TOKEN.finditer(context.system)]
        size = min(SHINGLE, len(secret))
        if size < 3:  # a two-word system prompt cannot be told apart from ordinary prose
            return []
        grams = {tuple(secret[i : i + size]) for i in range(len(secret) - size + 1)}
        tokens = list(TOKEN.finditer(text))
        lowered = [m.group().lower() for m in tokens]
        covered = [False] * len(tokens)
        for i in range(len(tokens) - size + 1):
            if tuple(lowered[i : i + size]) in grams:
                covered[i : i + size] = [True] * size
        found: list[Finding] = []
        i = 0
        while i < len(tokens):
            if not covered[i]:
                i += 1
                continue
            j = i
            while j + 1 < len(tokens) and covered[j + 1]:
                j += 1
            share = min((j - i + 1) / len(secret), 1.0)
            if share >= self.min_score:
                found.append(
                    Finding(
                        "system_prompt_leak",
                        tokens[i].start(),
                        tokens[j].end(),
                        round(share, 4),
                        self.name,
                        f"{j - i + 1} words",
                    )
                )
            i = j + 1
        return found

    def placeholder(self, finding: Finding) -> str:
        """Leaked instructions read as a marker."""
        return "[removed: system prompt]"


def load_schema(value: dict[str, Any] | Path) -> dict[str, Any]:
    """An inline schema, or one read from a .json file; checked to be a valid schema."""
    import jsonschema  # type: ignore[import-untyped]

    if isinstance(value, Path):
        path = value.expanduser()
        if not path.is_file():
            raise BadInputError(f"json_schema file not found: {path}")
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise BadInputError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise BadInputError("json_schema must be a JSON object")
    try:
        jsonschema.Draft202012Validator.check_schema(value)
    except jsonschema.SchemaError as exc:
        raise BadInputError(f"json_schema is not a valid schema: {exc.message}") from exc
    return value


@register("json_schema")
class JsonSchemaCheck(Filter):
    """The answer must be JSON (a ```json fence is allowed) matching the policy's schema."""

    summary = "answers that are not JSON matching the policy's schema"
    stages = frozenset({"output"})
    actions = frozenset({"flag", "block"})
    threshold = 0.0
    whole_text = True

    def __init__(self, config: Any, settings: Any) -> None:
        super().__init__(config, settings)
        self.schema = load_schema(config.json_schema) if config.json_schema is not None else None

    def scan(self, text: str, context: ScanContext) -> list[Finding]:
        """One finding over the whole answer when it is not valid JSON or breaks the schema."""
        import jsonschema

        if self.schema is None:
            return []
        body = text.strip()
        fenced = re.fullmatch(r"```(?:json)?\s*([\s\S]*?)\s*```", body)
        body = fenced.group(1) if fenced else body
        try:
            value = json.loads(body)
        except json.JSONDecodeError:
            return [Finding("json_invalid", 0, len(text), 1.0, self.name, "not JSON")]
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(self.schema).iter_errors(value)
        )
        if error is None:
            return []
        where = "/".join(str(part) for part in error.absolute_path) or "top level"
        return [
            Finding("json_schema", 0, len(text), 1.0, self.name, f"{error.validator} at {where}")
        ]
