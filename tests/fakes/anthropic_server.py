"""A local server speaking Anthropic's documented Messages wire format, with faults on demand.

``POST /v1/messages`` wants the key (``x-api-key``, or ``Authorization: Bearer`` as SDK 2.x
sends it) and an ``anthropic-version`` header; like API version 2026-10-21 it refuses
``temperature``, ``top_p`` and ``top_k``. Errors use the documented body
``{"type": "error", "error": {"type": ..., "message": ...}}``.

The model name picks the behaviour: ``flaky-429`` answers 429 (Retry-After: 0) twice and
then succeeds, ``flaky-529`` is overloaded once, ``always-500`` fails, ``stall`` answers
after 3 s, ``reset`` breaks the stream off after two text deltas, ``error-event`` sends an
``overloaded_error`` event mid-stream, ``garbage`` sends an event that is not JSON,
``no-usage`` omits usage, ``missing`` does not exist. Anything else answers
``Echo: <last user message>``, cut at ``max_tokens`` words or at a stop sequence.

Tools (``input_schema``), ``tool_choice`` (auto, any, tool, none, with
``disable_parallel_tool_use``), ``tool_use`` / ``tool_result`` blocks and
``output_config.format`` are checked as the API checks them and answered as
``tests.fakes.dialect`` decides; calls stream as ``tool_use`` blocks whose input comes in
several ``input_json_delta`` pieces, ending with stop_reason ``tool_use``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from .dialect import Call, calls_for, fragments, schema_answer, valid_schema
from .serve import serve

KEY = "sk-ant-test-key-0123456789"
SAMPLING = ("temperature", "top_p", "top_k")


@dataclass
class FakeState:
    """What the fake saw: calls per model, each request's headers and body."""

    calls: Counter[str] = field(default_factory=Counter)
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}
    return JSONResponse(body, status_code=status, headers=headers)


def _refusal(request: Request) -> Response | None:
    """401 for a wrong key (echoing part of it, as real providers do), 400 without a version."""
    given = request.headers.get("x-api-key") or request.headers.get("authorization", "")
    given = given.removeprefix("Bearer ")
    if given != KEY:
        shown = given[:7] + "****" + given[-3:]
        return _error(401, "authentication_error", f"invalid x-api-key: {shown}")
    if not request.headers.get("anthropic-version"):
        return _error(400, "invalid_request_error", "anthropic-version: header is required")
    return None


def build_app(state: FakeState) -> FastAPI:
    """The FastAPI app behind the fake."""
    app = FastAPI()

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        state.headers.append(dict(request.headers))
        if (refused := _refusal(request)) is not None:
            return refused
        body = await request.json()
        state.bodies.append(body)
        model = body.get("model", "")
        state.calls[model] += 1
        if sent := [name for name in SAMPLING if name in body]:
            return _error(400, "invalid_request_error", f"{sent[0]}: not supported")
        if not isinstance(body.get("max_tokens"), int) or not body.get("messages"):
            return _error(400, "invalid_request_error", "max_tokens and messages are required")
        if any(m.get("role") not in ("user", "assistant") for m in body["messages"]):
            return _error(400, "invalid_request_error", "messages: roles are user or assistant")
        if model == "missing":
            return _error(404, "not_found_error", f"model: {model}")
        if model == "flaky-429" and state.calls[model] <= 2:
            return _error(429, "rate_limit_error", "Rate limited", {"retry-after": "0"})
        if model == "flaky-529" and state.calls[model] <= 1:
            return _error(529, "overloaded_error", "Overloaded")
        if model == "always-500":
            return _error(500, "api_error", "Internal server error")
        if model == "stall":
            await asyncio.sleep(3)
        if (malformed := _malformed(body)) is not None:
            return _error(400, "invalid_request_error", malformed)
        words, stop_reason, stop_sequence = _answer(body)
        calls = _calls(body)
        if calls:
            words, stop_reason, stop_sequence = [], "tool_use", None
        if not body.get("stream"):
            return JSONResponse(_message(model, " ".join(words), stop_reason, stop_sequence))
        return StreamingResponse(
            _events(model, words, stop_reason, stop_sequence, calls),
            media_type="text/event-stream",
        )

    return app


def _valid_image(source: dict[str, Any]) -> bool:
    """A link, or base64 data that decodes to the media type it claims (PNG here)."""
    if source["type"] == "url":
        return str(source["url"]).startswith("https://")
    return (
        source["media_type"] == "image/png" and base64.b64decode(source["data"])[:4] == b"\x89PNG"
    )


def _said(body: dict[str, Any]) -> str:
    """The text of the last user turn."""
    content = next(m for m in reversed(body["messages"]) if m["role"] == "user")["content"]
    if isinstance(content, str):
        return content
    return " ".join(block["text"] for block in content if block["type"] == "text")


def _calls(body: dict[str, Any]) -> list[Call]:
    """The calls the model makes, by tool_choice (its type: auto, any, tool or none)."""
    last = body["messages"][-1]["content"]
    if not isinstance(last, str) and any(b["type"] == "tool_result" for b in last):
        return []
    tools = {tool["name"]: tool["input_schema"] for tool in body.get("tools", [])}
    picked = body.get("tool_choice") or {"type": "auto"}
    choice = {"auto": "auto", "any": "required", "none": "none"}.get(picked["type"])
    calls = calls_for(tools, choice or picked.get("name"), body["model"], _said(body))
    return calls[:1] if picked.get("disable_parallel_tool_use") else calls


def _malformed(body: dict[str, Any]) -> str | None:
    """Why the Messages API would refuse these tools, blocks or output format."""
    tools = body.get("tools")
    names: set[str] = set()
    for n, tool in enumerate(tools or []):
        schema = tool.get("input_schema")
        if not isinstance(tool.get("name"), str) or not valid_schema(schema):
            return f"tools.{n}: a tool needs a name and an input_schema"
        if schema.get("type") != "object":
            return f"tools.{n}.input_schema.type: Input should be 'object'"
        names.add(tool["name"])
    picked = body.get("tool_choice")
    if picked is not None:
        if not tools:
            return "tool_choice may only be specified while providing tools"
        if picked.get("type") not in ("auto", "any", "tool", "none"):
            return "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
        if picked["type"] == "tool" and picked.get("name") not in names:
            return f"tool_choice.name: no tool named {picked.get('name')!r}"
    previous: list[Any] = []
    for n, message in enumerate(body["messages"]):
        content = message["content"]
        blocks = [] if isinstance(content, str) else content
        kinds = [block.get("type") for block in blocks]
        if "tool_use" in kinds and message["role"] != "assistant":
            return f"messages.{n}: tool_use blocks are only in assistant turns"
        if "tool_result" in kinds:
            if message["role"] != "user":
                return f"messages.{n}: tool_result blocks are only in user turns"
            if kinds[: kinds.count("tool_result")] != ["tool_result"] * kinds.count("tool_result"):
                return f"messages.{n}: tool_result blocks must come first in the content"
            asked = {b["id"] for b in previous if b.get("type") == "tool_use"}
            for block in blocks:
                if block["type"] == "tool_result" and block.get("tool_use_id") not in asked:
                    return (
                        f"messages.{n}.content: unexpected `tool_use_id` found in `tool_result` "
                        "blocks: each tool_result block must have a corresponding tool_use "
                        "block in the previous message"
                    )
        for block in blocks:
            if block.get("type") == "tool_use" and not isinstance(block.get("input"), dict):
                return f"messages.{n}: tool_use.input must be an object"
            if block.get("type") not in ("text", "image", "tool_use", "tool_result"):
                return f"messages.{n}: unknown content block {block.get('type')!r}"
            if block.get("type") == "image" and not _valid_image(block["source"]):
                return f"messages.{n}: the image could not be read"
        previous = blocks
    form = (body.get("output_config") or {}).get("format")
    if form is not None and (
        form.get("type") != "json_schema" or not valid_schema(form.get("schema"))
    ):
        return "output_config.format: {type: json_schema, schema: {...}}"
    return None


def _answer(body: dict[str, Any]) -> tuple[list[str], str, str | None]:
    """The echoed words, why they end, and the stop sequence that ended them."""
    last = next(m for m in reversed(body["messages"]) if m["role"] == "user")
    content = last["content"]
    form = (body.get("output_config") or {}).get("format")
    results = [] if isinstance(content, str) else [b for b in content if b["type"] == "tool_result"]
    if results:
        content = "Result: " + " ".join(str(b["content"]) for b in results)
    elif form is not None:
        content = schema_answer(form["schema"], _said(body))
    elif not isinstance(content, str):
        images = [b for b in content if b["type"] == "image" and _valid_image(b["source"])]
        content = " ".join(block["text"] for block in content if block["type"] == "text")
        if images:  # counted, not echoed
            content += f" [{len(images)} image{'s' if len(images) > 1 else ''}]"
    text = content if results or form is not None else "Echo: " + content
    for stop in body.get("stop_sequences") or []:
        if stop in text:
            return text[: text.index(stop)].split(), "stop_sequence", stop
    words = text.split(" ")
    if len(words) > body["max_tokens"]:
        return words[: body["max_tokens"]], "max_tokens", None
    return words, "end_turn", None


def _message(model: str, text: str, stop_reason: str, stop_sequence: str | None) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": {"input_tokens": 11, "output_tokens": len(text.split())},
    }


def _sse(name: str, payload: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()


async def _events(
    model: str, words: list[str], stop_reason: str, stop_sequence: str | None, calls: list[Call]
) -> AsyncIterator[bytes]:
    start = _message(model, "", "", None) | {"content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": 11, "cache_read_input_tokens": 2, "output_tokens": 1}
    if model == "no-usage":
        del start["usage"]
    yield _sse("message_start", {"type": "message_start", "message": start})
    for index, call in enumerate(calls):
        # As Claude streams a call: a tool_use block, its input as input_json_delta pieces.
        block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        opening = {"type": "content_block_start", "index": index, "content_block": block}
        yield _sse("content_block_start", opening)
        for piece in fragments(call.arguments):
            delta = {"type": "input_json_delta", "partial_json": piece}
            more = {"type": "content_block_delta", "index": index, "delta": delta}
            yield _sse("content_block_delta", more)
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
    if not calls:
        block = {"type": "text", "text": ""}
        opening = {"type": "content_block_start", "index": 0, "content_block": block}
        yield _sse("content_block_start", opening)
    yield _sse("ping", {"type": "ping"})
    for index, word in enumerate(words):
        if model == "reset" and index == 2:
            raise ConnectionResetError("fake reset mid-stream")
        if model == "error-event" and index == 2:
            error = {"type": "overloaded_error", "message": "Overloaded"}
            yield _sse("error", {"type": "error", "error": error})
            return
        if model == "garbage" and index == 1:
            yield b"event: content_block_delta\ndata: {this is not json\n\n"
        delta = {"type": "text_delta", "text": word if index == 0 else " " + word}
        yield _sse(
            "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
        )
    if not calls:
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    message_delta: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
        "usage": {"output_tokens": len(words)},
    }
    if model == "no-usage":
        del message_delta["usage"]
    yield _sse("message_delta", message_delta)
    yield _sse("message_stop", {"type": "message_stop"})


@contextmanager
def running(state: FakeState) -> Iterator[str]:
    """Serve the fake on 127.0.0.1 in a thread; yields its base URL (the SDK adds /v1)."""
    with serve(build_app(state), "") as url:
        yield url
