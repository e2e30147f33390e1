"""Turning OpenAI requests into fondasi calls and fondasi answers back into OpenAI shapes.

Every generation streams underneath; the model's final chunk says who answered, the cost
and the timing, so chat and text completions, streamed or not, are logged the same way.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from fondasi.server.errors import APIError
from fondasi.server.schemas import ChatMessage, ChatRequest, Sampling
from fondasi.types import GenerateOptions, Message, Role, Usage

ROLES = {"system": Role.SYSTEM, "developer": Role.SYSTEM, "user": Role.USER}
ROLES["assistant"] = Role.ASSISTANT
DEFAULT_MAX_TOKENS = 256


def bad(message: str, param: str | None = None, code: str = "invalid_value") -> APIError:
    """A 400 in OpenAI's shape."""
    return APIError(400, message, "invalid_request_error", code, param)


def refuse_unsupported(body: Sampling) -> None:
    """Fields fondasi knows but cannot honour get a clear 400, not a silent difference."""
    if body.n not in (None, 1):
        raise bad("only n=1 is served: send one request per answer", "n", "unsupported_value")
    if body.logprobs:
        raise bad("logprobs are not served", "logprobs", "unsupported_value")
    if isinstance(body, ChatRequest):
        if body.tools or body.functions:
            raise bad("tool and function calling are not served", "tools", "unsupported_value")
        kind = (body.response_format or {}).get("type", "text")
        if kind != "text":
            raise bad(
                f"response_format {kind!r} is not served (only text)",
                "response_format",
                "unsupported_value",
            )


def options(body: Sampling, cap: int, max_tokens: int | None) -> GenerateOptions:
    """GenerateOptions from the request; temperature defaults to fondasi's greedy 0."""
    wanted = max_tokens or DEFAULT_MAX_TOKENS
    if wanted > cap:
        raise bad(f"max_tokens is {wanted}; this server allows at most {cap}", "max_tokens")
    stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stops) > 4:
        raise bad("give at most 4 stop sequences", "stop")
    fields: dict[str, Any] = {"max_tokens": wanted, "stop": [s for s in stops if s]}
    if body.temperature is not None:
        fields["temperature"] = body.temperature
    if body.top_p is not None:
        fields["top_p"] = body.top_p
    if body.seed is not None:
        fields["seed"] = body.seed
    try:
        return GenerateOptions(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise bad(f"{first['loc'][0]}: {first['msg']}", str(first["loc"][0])) from None


def _text(message: ChatMessage, index: int) -> str:
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    parts = []
    for part in message.content:
        if part.type != "text" or part.text is None:
            raise bad(
                f"messages[{index}]: {part.type} content is not served (text only)",
                f"messages.{index}.content",
                "unsupported_value",
            )
        parts.append(part.text)
    return "".join(parts)


def messages(body: ChatRequest) -> list[Message]:
    """fondasi messages; developer becomes system; tool turns are refused."""
    out = []
    for index, message in enumerate(body.messages):
        if message.role not in ROLES:
            raise bad(
                f"messages[{index}]: role {message.role!r} is not served (tools are not)",
                f"messages.{index}.role",
                "unsupported_value",
            )
        out.append(Message(role=ROLES[message.role], content=_text(message, index)))
    if not any(m.content.strip() for m in out if m.role is Role.USER):
        raise bad("the conversation has no user message with text", "messages")
    return out


def log_messages(turns: list[Message], redact: Any) -> str:
    """Messages as JSON for the log, each content redacted."""
    return json.dumps(
        [{"role": m.role.value, "content": redact(m.content)} for m in turns], ensure_ascii=False
    )


def usage_json(usage: Usage) -> dict[str, int]:
    """OpenAI's usage object."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def sse(payload: dict[str, Any] | str) -> bytes:
    """One server-sent event."""
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n".encode()
