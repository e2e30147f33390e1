"""JSON mode for every model: the provider's own where it has one, fondasi's otherwise.

OpenAI, OpenAI-compatible servers, Gemini and Cohere constrain their output to JSON when
asked (``native_json = True`` on their backends). Local models and Anthropic do not, so
fondasi asks for one JSON object in the system prompt, reads the answer whole and returns
the object alone — or fails with :class:`OutputParseError` quoting what came back, never
with a half-parsed answer. The stream then carries the object as one chunk, at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from fondasi.prompts.json_mode import INSTRUCTION as INSTRUCTION  # re-exported
from fondasi.prompts.json_mode import with_instruction as with_instruction  # re-exported
from fondasi.prompts.parse import OutputParseError, extract_json
from fondasi.types import Chunk

QUOTED = 200  # characters of a non-JSON answer shown in the error


def native(generator: object) -> bool:
    """Whether a backend constrains its output to JSON itself."""
    return bool(getattr(generator, "native_json", False))


def json_object(text: str) -> str:
    """The one JSON object in ``text``, re-serialised; anything else is an error."""
    try:
        value = extract_json(text)
    except OutputParseError as exc:
        raise OutputParseError(f"JSON mode: {exc}; the model said {text[:QUOTED]!r}") from None
    if not isinstance(value, dict):
        raise OutputParseError(
            f"JSON mode: the answer is a JSON {type(value).__name__}, not an object; "
            f"the model said {text[:QUOTED]!r}"
        )
    return json.dumps(value, ensure_ascii=False)


def enforce(chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """Collect a stream and yield its JSON object as the final chunk."""
    parts: list[str] = []
    for chunk in chunks:
        parts.append(chunk.text)
        if chunk.usage is not None:
            yield Chunk(
                text=json_object("".join(parts)),
                usage=chunk.usage,
                finish_reason=chunk.finish_reason,
            )
            return
