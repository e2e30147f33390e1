"""A local server speaking Cohere's documented v2 wire format, with faults on demand.

POST /v2/chat answers JSON, or server-sent events (message-start, content-start,
content-delta..., content-end, message-end) when ``stream`` is true; POST /v2/embed
answers ``embeddings.float``. Errors have Cohere's body shape, ``{"message": ...}``.
The model name picks the behaviour: ``flaky-429`` answers 429 (Retry-After: 0) twice and
then succeeds, ``always-500`` fails, ``stall`` answers after 3 s, ``reset`` breaks the
stream off after two deltas, ``garbage`` sends an event that is not JSON and no
message-end (and, for embed, no vectors), ``no-usage`` omits usage, ``error-end`` ends
with finish_reason ERROR, ``missing`` does not exist. Anything else answers
``Echo: <last message>``, cut at ``max_tokens`` words or at a stop sequence.

Tools, ``tool_choice`` (REQUIRED, NONE), assistant ``tool_calls`` and ``tool`` turns,
``image_url`` content parts and ``response_format.json_schema`` are checked as the API
checks them and answered as ``tests.fakes.dialect`` decides; calls stream as
tool-plan-delta, then tool-call-start / tool-call-delta (arguments in pieces) /
tool-call-end, and message-end with finish_reason TOOL_CALL.
"""

from __future__ import annotations

import asyncio
import hashlib
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

KEY = "co-test-key-0123456789"


@dataclass
class FakeState:
    """What the fake saw: calls per model, request bodies and headers."""

    calls: Counter[str] = field(default_factory=Counter)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"id": "fake-error", "message": message}, status_code=status, headers=headers
    )


def _faults(model: str, calls: int) -> Response | None:
    if model == "missing":
        return _error(
            404,
            f"model '{model}' not found, make sure the correct model ID was used "
            "and that you have access to the model.",
        )
    if model == "flaky-429" and calls <= 2:
        return _error(429, "You are using a Trial key, which is rate limited", {"retry-after": "0"})
    if model == "always-500":
        return _error(500, "internal server error, this has been reported to our developers")
    return None


def build_app(state: FakeState) -> FastAPI:
    """The FastAPI app behind the fake."""
    app = FastAPI()

    async def accept(request: Request) -> tuple[dict[str, Any], Response | None]:
        state.headers.append(dict(request.headers))
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {KEY}":
            shown = auth[7:11] + "****" + auth[-3:]  # as real providers do: part of the key
            return {}, _error(401, f"invalid api token: {shown}")
        body: dict[str, Any] = await request.json()
        state.bodies.append(body)
        state.calls[body["model"]] += 1
        return body, _faults(body["model"], state.calls[body["model"]])

    @app.post("/v2/chat")
    async def chat(request: Request) -> Response:
        body, refused = await accept(request)
        if refused is not None:
            return refused
        if body["model"] == "stall":
            await asyncio.sleep(3)
        if (malformed := _malformed(body)) is not None:
            return _error(400, malformed)
        words, finish = _answer(body)
        calls = _calls(body)
        if calls:
            words, finish = [], "TOOL_CALL"
        if not body.get("stream"):
            return JSONResponse(_response(body, words, finish))
        return StreamingResponse(
            _events(body, words, finish, calls), media_type="text/event-stream"
        )

    @app.post("/v2/embed")
    async def embed(request: Request) -> Response:
        body, refused = await accept(request)
        if refused is not None:
            return refused
        texts = body["texts"]
        vectors = (
            {} if body["model"].endswith("garbage") else {"float": [_vector(t) for t in texts]}
        )
        return JSONResponse(
            {
                "id": "fake-embed",
                "response_type": "embeddings_by_type",
                "embeddings": vectors,
                "texts": texts,
                "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 3}},
            }
        )

    return app


def _said(content: Any) -> str:
    """A message's text; image parts are checked elsewhere, not echoed."""
    if isinstance(content, str):
        return content
    return " ".join(part["text"] for part in content if part["type"] == "text")


def _calls(body: dict[str, Any]) -> list[Call]:
    last = body["messages"][-1]
    if last["role"] == "tool":
        return []
    tools = {t["function"]["name"]: t["function"]["parameters"] for t in body.get("tools", [])}
    choice = {"REQUIRED": "required", "NONE": "none"}.get(body.get("tool_choice", ""), "auto")
    return calls_for(tools, choice, body["model"], _said(last["content"]))


def _malformed(body: dict[str, Any]) -> str | None:
    """Why Cohere's v2 chat would refuse these tools, messages or response format."""
    for tool in body.get("tools", []):
        function = tool.get("function") or {}
        if tool.get("type") != "function" or not function.get("name"):
            return "invalid request: tools[]: {type: function, function: {name, parameters}}"
        if not valid_schema(function.get("parameters")):
            return f"invalid request: tool {function['name']} has invalid parameters"
    if "tool_choice" in body:
        if body["tool_choice"] not in ("REQUIRED", "NONE"):
            return "invalid request: tool_choice must be one of REQUIRED, NONE"
        if not body.get("tools"):
            return "invalid request: tool_choice requires tools"
    made: set[str] = set()
    for n, message in enumerate(body["messages"]):
        if message.get("role") not in ("system", "user", "assistant", "tool"):
            return f"invalid request: messages[{n}].role"
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            if not call.get("id") or not isinstance(function.get("arguments"), str):
                return f"invalid request: messages[{n}].tool_calls: id and function.arguments"
            made.add(call["id"])
        if message["role"] == "tool" and message.get("tool_call_id") not in made:
            return f"invalid request: messages[{n}]: tool_call_id matches no tool call"
        if isinstance(message.get("content"), list):
            for part in message["content"]:
                url = (part.get("image_url") or {}).get("url", "")
                if part["type"] == "image_url" and not url.startswith(("data:image/", "https://")):
                    return f"invalid request: messages[{n}]: image_url.url"
                if part["type"] not in ("text", "image_url"):
                    return f"invalid request: messages[{n}]: content type {part['type']!r}"
    form = body.get("response_format")
    if form is not None:
        if form.get("type") not in ("text", "json_object"):
            return "invalid request: response_format.type must be text or json_object"
        if "json_schema" in form and not valid_schema(form["json_schema"]):
            return "invalid request: response_format.json_schema"
    return None


def _answer(body: dict[str, Any]) -> tuple[list[str], str]:
    """The echoed words and Cohere's finish_reason, as the real API would cut them."""
    last = body["messages"][-1]
    text = "Echo: " + _said(last["content"])
    form = body.get("response_format") or {}
    if last["role"] == "tool":
        text = "Result: " + _said(last["content"])
    elif "json_schema" in form:
        text = schema_answer(form["json_schema"], _said(last["content"]))
    elif form.get("type") == "json_object":
        text = json.dumps({"echo": _said(last["content"])})
    for stop in body.get("stop_sequences") or []:
        if stop in text:
            return text[: text.index(stop)].split(" "), "STOP_SEQUENCE"
    words = text.split(" ")
    limit = body.get("max_tokens") or len(words)
    return words[:limit], "MAX_TOKENS" if limit < len(words) else "COMPLETE"


def _usage(body: dict[str, Any], words: list[str]) -> dict[str, Any]:
    billed = sum(len(str(m["content"]).split()) for m in body["messages"])
    # tokens counts the chat template too, so it is larger than billed_units
    return {
        "billed_units": {"input_tokens": billed, "output_tokens": len(words)},
        "tokens": {"input_tokens": billed + 60, "output_tokens": len(words)},
    }


def _vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [b / 255 - 0.5 for b in digest[:8]]


def _response(body: dict[str, Any], words: list[str], finish: str) -> dict[str, Any]:
    return {
        "id": "fake-chat",
        "finish_reason": finish,
        "message": {"role": "assistant", "content": [{"type": "text", "text": " ".join(words)}]},
        "usage": _usage(body, words),
    }


async def _events(
    body: dict[str, Any], words: list[str], finish: str, calls: list[Call]
) -> AsyncIterator[bytes]:
    def event(payload: dict[str, Any]) -> bytes:
        return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n".encode()

    model = body["model"]
    message = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": []}
    yield event({"id": "fake-chat", "type": "message-start", "delta": {"message": message}})
    if calls:
        # As Cohere streams calls: a tool plan, then each call's start, argument deltas, end.
        plan = {"message": {"tool_plan": "I will call the tool."}}
        yield event({"type": "tool-plan-delta", "delta": plan})
        for index, call in enumerate(calls):
            opening = {"id": call.id, "type": "function"}
            opening["function"] = {"name": call.name, "arguments": ""}
            started = {"message": {"tool_calls": opening}}
            yield event({"type": "tool-call-start", "index": index, "delta": started})
            for piece in fragments(call.arguments):
                more = {"message": {"tool_calls": {"function": {"arguments": piece}}}}
                yield event({"type": "tool-call-delta", "index": index, "delta": more})
            yield event({"type": "tool-call-end", "index": index})
        end = {"finish_reason": finish, "usage": _usage(body, ["call"] * 5)}
        yield event({"type": "message-end", "delta": end})
        return
    start = {"message": {"content": {"type": "text", "text": ""}}}
    yield event({"type": "content-start", "index": 0, "delta": start})
    for index, word in enumerate(words):
        if model == "reset" and index == 2:
            raise ConnectionResetError("fake reset mid-stream")
        if model == "garbage" and index == 1:
            yield b"event: content-delta\ndata: {this is not json\n\n"
            return  # and no message-end
        text = word if index == 0 else " " + word
        delta = {"message": {"content": {"text": text}}}
        yield event({"type": "content-delta", "index": 0, "delta": delta})
    yield event({"type": "content-end", "index": 0})
    end: dict[str, Any] = {"finish_reason": finish}
    if model == "error-end":
        end = {"finish_reason": "ERROR", "error": "the model failed to generate"}
    if model != "no-usage":
        end["usage"] = _usage(body, words)
    yield event({"type": "message-end", "delta": end})


@contextmanager
def running(state: FakeState) -> Iterator[str]:
    """Serve the fake on 127.0.0.1 in a thread; yields its base URL (the SDK adds /v2/...)."""
    with serve(build_app(state), "") as url:
        yield url
