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
        words, finish = _answer(body)
        if not body.get("stream"):
            return JSONResponse(_response(body, words, finish))
        return StreamingResponse(_events(body, words, finish), media_type="text/event-stream")

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


def _answer(body: dict[str, Any]) -> tuple[list[str], str]:
    """The echoed words and Cohere's finish_reason, as the real API would cut them."""
    text = "Echo: " + body["messages"][-1]["content"]
    if (body.get("response_format") or {}).get("type") == "json_object":
        text = json.dumps({"echo": body["messages"][-1]["content"]})
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


async def _events(body: dict[str, Any], words: list[str], finish: str) -> AsyncIterator[bytes]:
    def event(payload: dict[str, Any]) -> bytes:
        return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n".encode()

    model = body["model"]
    message = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": []}
    yield event({"id": "fake-chat", "type": "message-start", "delta": {"message": message}})
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
