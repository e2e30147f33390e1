"""Turning OpenAI requests into fondasi calls and fondasi answers back into OpenAI shapes.

A request becomes ``Message``s and one ``GenerateOptions`` (tools, tool choice, JSON mode or
schema, log-probabilities included); the handle does the rest. Every generation streams
underneath and is gathered by one ``Gathered``, so chat, text completions and responses,
streamed or not, are logged the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from fondasi.backends.base import Capability
from fondasi.server.errors import APIError
from fondasi.server.schemas import ChatMessage, ChatRequest
from fondasi.types import (
    Chunk,
    GenerateOptions,
    JsonSchema,
    Message,
    Role,
    TokenLogprob,
    Tool,
    ToolCall,
    Usage,
)

ROLES = {"system": Role.SYSTEM, "developer": Role.SYSTEM, "user": Role.USER}
ROLES |= {"assistant": Role.ASSISTANT, "tool": Role.TOOL, "function": Role.TOOL}
DEFAULT_MAX_TOKENS = 256
CHOICES = ("auto", "none", "required")


def bad(message: str, param: str | None = None, code: str = "invalid_value") -> APIError:
    """A 400 in OpenAI's shape."""
    return APIError(400, message, "invalid_request_error", code, param)


def options(
    body: Any,
    cap: int,
    max_tokens: int | None,
    dialect: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
) -> GenerateOptions:
    """GenerateOptions from the request; temperature defaults to fondasi's greedy 0.

    ``params`` names the request field behind an option, for the 400's ``param``.
    """
    wanted = max_tokens or DEFAULT_MAX_TOKENS
    if wanted > cap:
        raise bad(f"max_tokens is {wanted}; this server allows at most {cap}", "max_tokens")
    raw_stop = getattr(body, "stop", None)
    stops = [raw_stop] if isinstance(raw_stop, str) else list(raw_stop or [])
    if len(stops) > 4:
        raise bad("give at most 4 stop sequences", "stop")
    fields: dict[str, Any] = {"max_tokens": wanted, "stop": [s for s in stops if s]}
    for name in ("temperature", "top_p", "seed"):
        if getattr(body, name, None) is not None:
            fields[name] = getattr(body, name)
    try:
        return GenerateOptions(**fields, **(dialect or {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        # A check across fields has no location: its message names the field it is about.
        across = next((k for k in ("tool_choice", "tools") if k in message), "options")
        name = str(first["loc"][0]) if first["loc"] else across
        named = {"json_schema": "response_format", "json_mode": "response_format"}
        param = (params or {}).get(name, named.get(name, name))
        raise bad(f"{param}: {message}", param) from None


def tools_of(specs: list[dict[str, Any]], param: str) -> list[Tool]:
    """Function tools from OpenAI tool dicts (chat's nested or Responses' flat shape)."""
    out = []
    for index, spec in enumerate(specs):
        if spec.get("type", "function") != "function":
            raise bad(
                f"{param}[{index}]: tool type {spec.get('type')!r} is not served "
                "(only function tools)",
                f"{param}.{index}",
                "unsupported_value",
            )
        try:
            out.append(Tool.of(spec))
        except (ValueError, ValidationError) as exc:
            raise bad(f"{param}[{index}]: {_first(exc)}", f"{param}.{index}") from None
    return out


def tool_choice_of(value: str | dict[str, Any] | None, param: str) -> str | None:
    """auto, none, required or a function's name, from any of OpenAI's spellings."""
    if value is None or value in CHOICES:
        return value
    if isinstance(value, dict):
        function = value.get("function")
        name = function.get("name") if isinstance(function, dict) else value.get("name")
        if isinstance(name, str) and name and value.get("type", "function") == "function":
            return name
    raise bad(
        f"{param} is auto, none, required or {{'type': 'function', 'function': {{'name': ...}}}}",
        param,
    )


def format_fields(spec: dict[str, Any] | None, param: str) -> dict[str, Any]:
    """json_mode / json_schema options from chat's response_format or Responses' text.format."""
    kind = (spec or {}).get("type", "text")
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"json_mode": True}
    if kind == "json_schema":
        assert spec is not None
        nested = spec.get("json_schema")
        body = (
            nested if isinstance(nested, dict) else {k: v for k, v in spec.items() if k != "type"}
        )
        if not isinstance(body.get("schema"), dict):
            raise bad(f"{param}: json_schema needs a schema object", param)
        try:
            return {"json_schema": JsonSchema.of(body)}
        except (ValueError, ValidationError) as exc:
            raise bad(f"{param}: {_first(exc)}", param) from None
    raise bad(f"{param} type {kind!r} is not served (text, json_object, json_schema)", param)


def _first(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    return str(exc)


def chat_dialect(body: ChatRequest) -> dict[str, Any]:
    """Tools, tool choice, answer format and log-probabilities of a chat request."""
    if body.tools and body.functions:
        raise bad("send tools or the legacy functions, not both", "functions")
    fields: dict[str, Any] = {}
    if body.tools or body.functions:
        param = "tools" if body.tools else "functions"
        fields["tools"] = tools_of(body.tools or body.functions or [], param)
    choice = tool_choice_of(body.tool_choice, "tool_choice")
    if choice is None:
        choice = tool_choice_of(body.function_call, "function_call")
    if choice is not None:
        fields["tool_choice"] = choice
    if body.parallel_tool_calls is not None:
        fields["parallel_tool_calls"] = body.parallel_tool_calls
    fields |= format_fields(body.response_format, "response_format")
    if body.top_logprobs and not body.logprobs:
        raise bad("top_logprobs needs logprobs: true", "top_logprobs")
    if body.logprobs:
        fields |= {"logprobs": True, "top_logprobs": body.top_logprobs or 0}
    return fields


def _call(raw: dict[str, Any], where: str) -> ToolCall:
    function = raw.get("function") if isinstance(raw.get("function"), dict) else raw
    assert isinstance(function, dict)
    name, arguments = function.get("name"), function.get("arguments") or "{}"
    if not isinstance(name, str) or not isinstance(arguments, str):
        raise bad(f"{where}: a tool call needs function.name and function.arguments (text)", where)
    return ToolCall(id=str(raw.get("id") or f"call_{name}"), name=name, arguments=arguments)


def _message(message: ChatMessage, index: int, names: dict[str, str]) -> Message:
    where = f"messages.{index}"
    calls = [
        _call(raw, f"{where}.tool_calls.{n}") for n, raw in enumerate(message.tool_calls or [])
    ]
    if message.function_call:
        calls.append(_call(message.function_call, f"{where}.function_call"))
    for call in calls:
        names[call.id] = call.name
    fields: dict[str, Any] = {"role": ROLES[message.role], "content": message.content}
    if calls:
        fields["tool_calls"] = calls
    if message.role == "tool":
        fields["tool_call_id"] = message.tool_call_id
        fields["name"] = message.name or names.get(message.tool_call_id or "")
    elif message.role == "function":  # legacy: the function's answer, named, without an id
        fields["tool_call_id"], fields["name"] = f"call_{message.name}", message.name
    try:
        return Message(**fields)
    except (ValueError, ValidationError) as exc:
        raise bad(f"messages[{index}]: {_first(exc)}", where) from None


def messages(body: ChatRequest) -> list[Message]:
    """fondasi messages; developer becomes system; legacy function turns become tool turns."""
    names: dict[str, str] = {}
    out = [_message(message, index, names) for index, message in enumerate(body.messages)]
    if not any(m.content.strip() or m.images for m in out if m.role is Role.USER):
        raise bad("the conversation has no user message with text or an image", "messages")
    return out


def check_images(turns: list[Message], served: Any, links: bool) -> None:
    """Images need a model that sees; only data URLs come in unless links are allowed."""
    found = [(i, url) for i, turn in enumerate(turns) for url in turn.images]
    if not found:
        return
    if not served.can(Capability.VISION_CHAT):
        raise bad(
            f"{served.ref} cannot see images: send text only", "messages", "unsupported_value"
        )
    for index, url in found:
        where = f"messages.{index}.content"
        if url.startswith("data:image/") and ";base64," in url[:64]:
            continue
        if url.startswith(("http://", "https://")):
            if links:
                continue
            raise bad(
                "image links are not fetched by this server: send the image as a data URL "
                "(data:image/png;base64,...), or set allow_image_urls = true in serve.toml",
                where,
                "unsupported_value",
            )
        raise bad("an image is a data:image/...;base64 URL or an http(s) link", where)


@dataclass
class Gathered:
    """One answer gathered from its chunks: text, tool calls, log-probs and the final chunk."""

    parts: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None
    final: Chunk | None = None

    def add(self, chunk: Chunk) -> None:
        """Take one chunk in."""
        self.parts.append(chunk.text)
        self.tool_calls.extend(chunk.tool_calls)
        if chunk.logprobs is not None:
            self.logprobs = [*(self.logprobs or []), *chunk.logprobs]
        if chunk.final:
            self.final = chunk

    @property
    def text(self) -> str:
        """The answer's text."""
        return "".join(self.parts)

    @property
    def usage(self) -> Usage:
        """Its tokens (a stream without a final chunk is the model's fault)."""
        if self.final is None or self.final.usage is None:
            raise RuntimeError("the model ended its answer without usage")
        return self.final.usage

    @property
    def finish_reason(self) -> str:
        """Why it ended; tool_calls when it ended on calls."""
        reason = (self.final.finish_reason if self.final else None) or "stop"
        return "tool_calls" if self.tool_calls and reason == "stop" else reason

    def logged(self) -> str:
        """The answer as the log keeps it: the text, then each call and its arguments."""
        calls = [f"[tool call] {call.name}({call.arguments})" for call in self.tool_calls]
        return "\n".join(part for part in (self.text, *calls) if part)


def summed(usages: list[Usage]) -> Usage:
    """Several answers' usage as one."""
    return Usage(
        prompt_tokens=sum(u.prompt_tokens for u in usages),
        completion_tokens=sum(u.completion_tokens for u in usages),
    )


def log_messages(turns: list[Message], redact: Any) -> str:
    """Messages as JSON for the log, each text and tool call's arguments redacted."""
    rows = []
    for m in turns:
        row: dict[str, Any] = {"role": m.role.value, "content": redact(m.content)}
        if m.images:
            row["images"] = len(m.images)  # never the pictures themselves
        if m.tool_calls:
            row["tool_calls"] = [
                {"id": c.id, "name": c.name, "arguments": redact(c.arguments)} for c in m.tool_calls
            ]
        if m.tool_call_id:
            row["tool_call_id"] = m.tool_call_id
        rows.append(row)
    return json.dumps(rows, ensure_ascii=False)


def tool_call_json(call: ToolCall) -> dict[str, Any]:
    """A chat completion's tool call."""
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def token_json(item: TokenLogprob) -> dict[str, Any]:
    """One token of chat's ``logprobs.content``."""
    return {
        "token": item.token,
        "logprob": item.logprob,
        "bytes": item.bytes if item.bytes is not None else list(item.token.encode()),
        "top_logprobs": [
            {
                "token": top.token,
                "logprob": top.logprob,
                "bytes": top.bytes if top.bytes is not None else list(top.token.encode()),
            }
            for top in item.top_logprobs
        ],
    }


def usage_json(usage: Usage) -> dict[str, int]:
    """OpenAI's usage object."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def sse(payload: dict[str, Any] | str, event: str | None = None) -> bytes:
    """One server-sent event (named for the Responses API)."""
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()
