"""The words that offer tools to a model whose chat template cannot, and ask for a schema.

Local models whose templates lay out tools (Qwen2.5, Hermes) get them from the template;
others get this system text, in the same Hermes-style format the decoding grammar holds
them to, so what the model is told and what it may write agree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fondasi.types import Tool

__all__ = ["schema_instruction", "tool_call_text", "tool_instruction", "tool_result_text"]


def tool_instruction(tools: Sequence[Tool], choice: str) -> str:
    """System text listing the tools and how to call them."""
    listed = "\n".join(json.dumps(tool.openai(), ensure_ascii=False) for tool in tools)
    ask = {
        "required": "You must call at least one function.",
        "auto": "Call a function when it helps answer; otherwise answer in plain text.",
    }.get(choice, f"You must call the function {choice}.")
    return (
        "You may call functions to help answer the user. The functions, as JSON schemas:\n"
        f"<tools>\n{listed}\n</tools>\n"
        "To call a function, write a JSON object with its name and arguments inside "
        "<tool_call></tool_call> tags:\n"
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>\n'
        f"{ask}"
    )


def tool_call_text(name: str, arguments: dict[str, Any]) -> str:
    """An earlier tool call as the model would have written it."""
    call = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"<tool_call>\n{call}\n</tool_call>"


def tool_result_text(content: str) -> str:
    """A tool's answer as the model is shown it (in a user turn)."""
    return f"<tool_response>\n{content}\n</tool_response>"


def schema_instruction(schema: dict[str, Any]) -> str:
    """System text asking for one JSON value matching ``schema``."""
    shown = json.dumps(schema, ensure_ascii=False)
    return (
        "Reply with one JSON value matching this JSON schema, and nothing else:\n"
        f"{shown}\nBalas hanya dengan JSON yang sesuai skema ini."
    )
