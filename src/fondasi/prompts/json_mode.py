"""The words that ask a model for one JSON object, for models with no JSON mode of their own.

Backends add them where an API needs the word "JSON" in the prompt (OpenAI); the handle
tier adds them for local models and Anthropic, then checks the answer
(``fondasi.models.json_mode``).
"""

from __future__ import annotations

__all__ = ["INSTRUCTION", "with_instruction"]

INSTRUCTION = (
    "Reply with a single JSON object and nothing else: no prose, no code fence. "
    "Balas hanya dengan satu objek JSON."
)


def with_instruction(system: str | None) -> str:
    """The system prompt that asks for JSON, after the user's own."""
    return f"{system}\n\n{INSTRUCTION}" if system else INSTRUCTION
