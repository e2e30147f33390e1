"""A local server speaking OpenAI's documented wire format, with faults on demand.

The model name picks the behaviour: ``flaky-429`` answers 429 (Retry-After: 0) twice and
then succeeds, ``always-500`` fails, ``stall`` answers after 3 s, ``reset`` breaks the
stream off after two chunks, ``garbage`` sends an event that is not JSON, ``no-usage``
omits usage, ``missing`` does not exist, ``json-repair`` answers sloppy JSON until it is
corrected. Anything else answers ``Echo: <last message>`` (in JSON mode ``{"echo": ...}``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from .serve import free_port, serve  # noqa: F401  (bench/ imports free_port from here)

KEY = "sk-test-key-0123456789"


@dataclass
class FakeState:
    """What the fake saw: calls per model and the last request's headers."""

    calls: Counter[str] = field(default_factory=Counter)
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)


def _error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def build_app(state: FakeState) -> FastAPI:
    """The FastAPI app behind the fake."""
    app = FastAPI()

    def check(request: Request) -> Response | None:
        state.headers.append(dict(request.headers))
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {KEY}":
            shown = auth[7:11] + "****" + auth[-3:]
            return _error(401, f"Incorrect API key provided: {shown}", "invalid_api_key")
        return None

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        if (refused := check(request)) is not None:
            return refused
        body = await request.json()
        state.bodies.append(body)
        model = body["model"]
        state.calls[model] += 1
        if model == "missing":
            return _error(404, f"The model `{model}` does not exist", "model_not_found")
        if model == "flaky-429" and state.calls[model] <= 2:
            return _error(429, "Rate limit reached", "rate_limit", {"retry-after": "0"})
        if model == "always-500":
            return _error(500, "The server had an error", "server_error")
        if model == "stall":
            await asyncio.sleep(3)
        said = "Echo: " + _said(body["messages"][-1]["content"])
        if (body.get("response_format") or {}).get("type") == "json_object":
            # As OpenAI does: JSON mode needs the word in the conversation, then answers JSON.
            if not any("json" in str(m["content"]).lower() for m in body["messages"]):
                message = "'messages' must contain the word 'json' in some form"
                return _error(400, message, "invalid_request_error")
            said = json.dumps({"echo": _said(body["messages"][-1]["content"])})
        if model == "json-repair":
            # Sloppy JSON first; valid JSON once it has been told (a turn after its answer).
            repaired = any(m["role"] == "assistant" for m in body["messages"])
            said = '{"answer": "ok"}' if repaired else "Sure! {answer: ok}"
        words = said.split(" ")
        words = words[: body.get("max_tokens") or len(words)]
        finish = "length" if len(words) < len(said.split(" ")) else "stop"
        if not body.get("stream"):
            return JSONResponse(_completion(model, " ".join(words), finish))
        return StreamingResponse(_events(model, words, finish), media_type="text/event-stream")

    @app.post("/v1/images/generations")
    async def images(request: Request) -> Response:
        if (refused := check(request)) is not None:
            return refused
        body = await request.json()
        state.calls[body["model"]] += 1
        if body["model"].endswith("missing"):
            return _error(404, f"The model `{body['model']}` does not exist", "model_not_found")
        data = [{"b64_json": _png(body["prompt"])} for _ in range(body.get("n") or 1)]
        return JSONResponse({"created": int(time.time()), "data": data})

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        if (refused := check(request)) is not None:
            return refused
        body = await request.json()
        state.calls[body["model"]] += 1
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": _vector(text)}
            for i, text in enumerate(texts)
        ]
        usage = {"prompt_tokens": 3 * len(texts), "total_tokens": 3 * len(texts)}
        return JSONResponse(
            {"object": "list", "data": data, "model": body["model"], "usage": usage}
        )

    return app


def _png(prompt: str) -> str:
    """A tiny PNG whose colour depends on the prompt, base64-encoded."""
    import base64
    import io

    from PIL import Image

    shade = hashlib.sha256(prompt.encode()).digest()
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (shade[0], shade[1], shade[2])).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _said(content: Any) -> str:
    """The text of a message; image parts (data URLs or links) are counted, not echoed."""
    if isinstance(content, str):
        return content
    texts = [part["text"] for part in content if part["type"] == "text"]
    images = [part for part in content if part["type"] == "image_url"]
    valid = all(p["image_url"]["url"].startswith(("data:image/", "https://")) for p in images)
    return (
        " ".join(texts)
        + f" [{len(images)} image{'s' if len(images) != 1 else ''}"
        + ("]" if valid else " INVALID]")
    )


def _vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [b / 255 - 0.5 for b in digest[:8]]


def _completion(model: str, text: str, finish: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": len(text.split()), "total_tokens": 0},
    }


async def _events(model: str, words: list[str], finish: str) -> AsyncIterator[bytes]:
    def event(payload: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(payload)}\n\n".encode()

    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model}
    for index, word in enumerate(words):
        if model == "reset" and index == 2:
            raise ConnectionResetError("fake reset mid-stream")
        if model == "garbage" and index == 1:
            yield b"data: {this is not json\n\n"
        text = word if index == 0 else " " + word
        delta = {"index": 0, "delta": {"content": text}, "finish_reason": None}
        yield event({**base, "choices": [delta]})
    yield event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if model != "no-usage":
        usage = {
            "prompt_tokens": 11,
            "completion_tokens": len(words),
            "total_tokens": 11 + len(words),
        }
        yield event({**base, "choices": [], "usage": usage})
    yield b"data: [DONE]\n\n"


@contextmanager
def running(state: FakeState) -> Iterator[str]:
    """Serve the fake on 127.0.0.1 in a thread; yields its base URL (with /v1)."""
    with serve(build_app(state), "/v1") as url:
        yield url
