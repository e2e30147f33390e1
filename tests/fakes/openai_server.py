"""A local server speaking OpenAI's documented wire format, with faults on demand.

The model name picks the behaviour: ``flaky-429`` answers 429 (Retry-After: 0) twice and
then succeeds, ``always-500`` fails, ``stall`` answers after 3 s, ``reset`` breaks the
stream off after two chunks, ``garbage`` sends an event that is not JSON, ``no-usage``
omits usage, ``missing`` does not exist, ``json-repair`` answers sloppy JSON until it is
corrected. Anything else answers ``Echo: <last message>`` (in JSON mode ``{"echo": ...}``).

Tools, tool_choice, parallel_tool_calls, response_format json_schema and logprobs are
checked as OpenAI checks them (a malformed request gets its 400) and answered as
``tests.fakes.dialect`` decides: calls stream as OpenAI's ``delta.tool_calls`` (id and
name first, the arguments in several pieces) ending with finish_reason ``tool_calls``;
``logprobs`` puts ``choices[].logprobs.content`` on each text delta.

``/v1/audio/transcriptions`` reads OpenAI's multipart form and answers a fixed Indonesian
transcript naming the upload, in the asked ``response_format``; as OpenAI does, it refuses
``verbose_json``, ``srt`` and ``vtt`` for the GPT-4o transcribe models.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from .dialect import Call, calls_for, fragments, schema_answer, valid_schema
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
        if (malformed := _malformed(body)) is not None:
            return _error(400, malformed, "invalid_request_error")
        last = body["messages"][-1]
        said = "Echo: " + _said(last["content"])
        if (body.get("response_format") or {}).get("type") == "json_object":
            # As OpenAI does: JSON mode needs the word in the conversation, then answers JSON.
            if not any("json" in str(m["content"]).lower() for m in body["messages"]):
                message = "'messages' must contain the word 'json' in some form"
                return _error(400, message, "invalid_request_error")
            said = json.dumps({"echo": _said(last["content"])})
        if model == "json-repair":
            # Sloppy JSON first; valid JSON once it has been told (a turn after its answer).
            repaired = any(m["role"] == "assistant" for m in body["messages"])
            said = '{"answer": "ok"}' if repaired else "Sure! {answer: ok}"
        calls: list[Call] = []
        if last["role"] == "tool":
            said = "Result: " + _said(last["content"])
        else:
            tools = {
                t["function"]["name"]: t["function"].get("parameters", {})
                for t in body.get("tools", [])
            }
            calls = calls_for(
                tools, _choice(body.get("tool_choice")), model, _said(last["content"])
            )
            if body.get("parallel_tool_calls") is False:
                calls = calls[:1]
        if (body.get("response_format") or {}).get("type") == "json_schema":
            said = schema_answer(
                body["response_format"]["json_schema"]["schema"], _said(last["content"])
            )
        if model in GUARDS:
            said = GUARDS[model](body)
        words = said.split(" ")
        words = words[: body.get("max_tokens") or len(words)]
        finish = "length" if len(words) < len(said.split(" ")) else "stop"
        if calls:
            words, finish = [], "tool_calls"
        top = body.get("top_logprobs", 0) if body.get("logprobs") else None
        if not body.get("stream"):
            return _whole(model, words, finish, calls, top)
        return StreamingResponse(
            _events(model, words, finish, calls, top), media_type="text/event-stream"
        )

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

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        if (refused := check(request)) is not None:
            return refused
        return await _transcription(state, request)

    return app


async def _transcription(state: FakeState, request: Request) -> Response:
    """OpenAI's multipart transcription request, answered in the asked response_format."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return _error(400, "Could not parse multipart form", "invalid_request_body")
    async with request.form() as form:
        upload, model = form.get("file"), str(form.get("model") or "")
        if upload is None or isinstance(upload, str):
            return _error(400, "you must provide a 'file' field", "missing_required_parameter")
        audio = await upload.read()
        fields = {key: str(value) for key, value in form.multi_items() if key != "file"}
        fields["filename"] = str(upload.filename)
        granularities = form.getlist("timestamp_granularities[]")
    state.calls[model] += 1
    state.bodies.append(fields)
    if not model:
        return _error(400, "you must provide a model parameter", "missing_required_parameter")
    if model.endswith("missing"):
        return _error(404, f"The model `{model}` does not exist", "model_not_found")
    shape = fields.get("response_format", "json")
    if shape not in ("json", "text", "srt", "verbose_json", "vtt"):
        return _error(400, f"Invalid value for response_format: {shape}", "invalid_value")
    if not model.startswith("whisper") and shape not in ("json", "text"):
        return _error(
            400, f"response_format '{shape}' is not compatible with model '{model}'", "unsupported"
        )
    text = f"Transkrip {fields['filename']} ({len(audio)} bita)."
    if shape == "text":
        return Response(text + "\n", media_type="text/plain")
    if shape in ("srt", "vtt"):
        mark = "," if shape == "srt" else "."
        cue = f"00:00:00{mark}000 --> 00:00:02{mark}000"
        head = "1\n" if shape == "srt" else "WEBVTT\n\n"
        return Response(f"{head}{cue}\n{text}\n", media_type="text/plain")
    if shape == "json":
        return JSONResponse({"text": text, "usage": {"type": "duration", "seconds": 2}})
    words = text.split()
    verbose: dict[str, Any] = {
        "task": "transcribe",
        "language": {"id": "indonesian", "en": "english"}.get(fields.get("language", "id")),
        "duration": 2.0,
        "text": text,
        "segments": [
            {
                "id": 0,
                "seek": 0,
                "start": 0.0,
                "end": 2.0,
                "text": " " + text,
                "tokens": [1],
                "temperature": float(fields.get("temperature", 0)),
                "avg_logprob": -0.2,
                "compression_ratio": 1.0,
                "no_speech_prob": 0.01,
            }
        ],
    }
    if "word" in granularities:
        step = 2.0 / len(words)
        verbose["words"] = [
            {"word": word, "start": i * step, "end": (i + 1) * step} for i, word in enumerate(words)
        ]
    return JSONResponse(verbose)


def _png(prompt: str) -> str:
    """A tiny PNG whose colour depends on the prompt, base64-encoded."""
    import base64
    import io

    from PIL import Image

    shade = hashlib.sha256(prompt.encode()).digest()
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (shade[0], shade[1], shade[2])).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


# Words the fake guard models call unsafe hate speech: a stand-in for a hosted guard's
# judgement, answered in each model's documented output format.
HATEFUL = ("kafir", "cina babi", "vermin")


def _hateful(body: dict[str, Any]) -> bool:
    judged = body["messages"][-1]
    return any(word in _said(judged["content"]).lower() for word in HATEFUL)


def _llama_guard(body: dict[str, Any]) -> str:
    """Llama Guard's answer: "safe", or "unsafe" and the S-codes on the next line."""
    return "unsafe\nS10" if _hateful(body) else "safe"


def _json_guard(body: dict[str, Any]) -> str:
    """A chat model held to the verdict schema it was sent."""
    schema = body["response_format"]["json_schema"]["schema"]
    verdict = {"verdict": "unsafe", "categories": ["hate"]} if _hateful(body) else None
    verdict = verdict or {"verdict": "safe", "categories": []}
    jsonschema.validate(verdict, schema)
    return json.dumps(verdict)


GUARDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "llama-guard-3-8b": _llama_guard,
    "guard-json": _json_guard,
    "guard-garbled": lambda body: "I think it is probably fine",
}


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


def _whole(
    model: str, words: list[str], finish: str, calls: list[Call], top: int | None
) -> Response:
    """The answer ``_events`` streams, in one chat.completion object (``stream: false``)."""
    if model == "garbage":
        return Response(b'{"id": "chatcmpl-fake", "choices": [', media_type="application/json")
    if model == "reset":
        raise ConnectionResetError("fake reset before the answer")
    texts = [word if index == 0 else " " + word for index, word in enumerate(words)]
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls
        ]
    choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
    if top is not None:
        content = [_logprob(text, index, top) for index, text in enumerate(texts)]
        choice["logprobs"] = {"content": content, "refusal": None}
    answer: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
    }
    if model != "no-usage":
        tokens = len(words) or 5
        answer["usage"] = {
            "prompt_tokens": 11,
            "completion_tokens": tokens,
            "total_tokens": 11 + tokens,
        }
    return JSONResponse(answer)


async def _events(
    model: str, words: list[str], finish: str, calls: list[Call], top: int | None
) -> AsyncIterator[bytes]:
    def event(payload: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(payload)}\n\n".encode()

    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model}
    first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    yield event({**base, "choices": [first]})
    for index, word in enumerate(words):
        if model == "reset" and index == 2:
            raise ConnectionResetError("fake reset mid-stream")
        if model == "garbage" and index == 1:
            yield b"data: {this is not json\n\n"
        text = word if index == 0 else " " + word
        delta: dict[str, Any] = {"index": 0, "delta": {"content": text}, "finish_reason": None}
        if top is not None:
            delta["logprobs"] = {"content": [_logprob(text, index, top)], "refusal": None}
        yield event({**base, "choices": [delta]})
    for position, call in enumerate(calls):
        # As OpenAI streams a call: id, type and name first, then the arguments in pieces.
        opening = {"index": position, "id": call.id, "type": "function"}
        opening["function"] = {"name": call.name, "arguments": ""}
        yield event({**base, "choices": [_tool_delta(opening)]})
        for piece in fragments(call.arguments):
            more = {"index": position, "function": {"arguments": piece}}
            yield event({**base, "choices": [_tool_delta(more)]})
    yield event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if model != "no-usage":
        usage = {
            "prompt_tokens": 11,
            "completion_tokens": len(words) or 5,
            "total_tokens": 11 + (len(words) or 5),
        }
        yield event({**base, "choices": [], "usage": usage})
    yield b"data: [DONE]\n\n"


def _tool_delta(call: dict[str, Any]) -> dict[str, Any]:
    return {"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}


def _logprob(text: str, index: int, top: int) -> dict[str, Any]:
    """OpenAI's ChatCompletionTokenLogprob for one streamed token."""
    chosen = -0.25 * (index + 1)
    others = [
        {"token": f"alt{n}", "logprob": chosen - n - 1, "bytes": list(f"alt{n}".encode())}
        for n in range(max(top - 1, 0))
    ]
    alternatives = [{"token": text, "logprob": chosen, "bytes": list(text.encode())}, *others]
    return {
        "token": text,
        "logprob": chosen,
        "bytes": list(text.encode()),
        "top_logprobs": alternatives[:top],
    }


def _choice(choice: Any) -> str | None:
    if isinstance(choice, dict):
        return str(choice["function"]["name"])
    return choice


def _malformed(body: dict[str, Any]) -> str | None:
    """Why OpenAI would refuse this request's tools, messages or formats (None: it is fine)."""
    tools = body.get("tools")
    names: set[str] = set()
    if tools is not None:
        for tool in tools:
            function = tool.get("function") if tool.get("type") == "function" else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                return "tools[]: each tool is {type: function, function: {name, parameters}}"
            if "parameters" in function and not valid_schema(function["parameters"]):
                return f"Invalid schema for function '{function['name']}'"
            names.add(function["name"])
    choice = body.get("tool_choice")
    if choice is not None or "parallel_tool_calls" in body:
        if not tools:
            return "'tool_choice' and 'parallel_tool_calls' are only allowed with 'tools'"
        if isinstance(choice, dict):
            if (
                choice.get("type") != "function"
                or choice.get("function", {}).get("name") not in names
            ):
                return "tool_choice: a named function must be one of the tools"
        elif choice not in (None, "auto", "none", "required"):
            return f"Invalid value for 'tool_choice': {choice!r}"
    if (why := _malformed_messages(body["messages"])) is not None:
        return why
    form = body.get("response_format")
    if form is not None:
        if form.get("type") not in ("text", "json_object", "json_schema"):
            return "response_format.type must be text, json_object or json_schema"
        if form["type"] == "json_schema":
            spec = form.get("json_schema")
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                return "Missing required parameter: 'response_format.json_schema.name'"
            if not valid_schema(spec.get("schema")):
                return "Invalid schema for response_format"
    if "stream_options" in body and not body.get("stream"):
        return "The 'stream_options' parameter is only allowed when 'stream' is set to true."
    top = body.get("top_logprobs")
    if top is not None and (not body.get("logprobs") or not 0 <= top <= 20):
        return "top_logprobs needs logprobs: true and a value from 0 to 20"
    return None


def _malformed_messages(messages: list[dict[str, Any]]) -> str | None:
    made: set[str] = set()
    for n, message in enumerate(messages):
        role = message.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool"):
            return f"messages[{n}].role: {role!r} is not a role"
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            if call.get("type") != "function" or not isinstance(call.get("id"), str):
                return f"messages[{n}].tool_calls[]: each is {{id, type: function, function}}"
            if not isinstance(function.get("arguments"), str) or not function.get("name"):
                return f"messages[{n}].tool_calls[].function: name and arguments (a string)"
            made.add(call["id"])
        if role == "tool" and message.get("tool_call_id") not in made:
            return (
                f"messages[{n}]: a message with role 'tool' must be a response to a preceding "
                "message with 'tool_calls'"
            )
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if part.get("type") == "image_url":
                    url = (part.get("image_url") or {}).get("url", "")
                    if not url.startswith(("data:image/", "https://", "http://")):
                        return f"messages[{n}]: image_url.url must be a link or a data URL"
                elif part.get("type") != "text":
                    return f"messages[{n}]: content parts are text or image_url"
        elif content is None and not message.get("tool_calls"):
            return f"messages[{n}].content: null only on a turn of tool calls"
    return None


@contextmanager
def running(state: FakeState) -> Iterator[str]:
    """Serve the fake on 127.0.0.1 in a thread; yields its base URL (with /v1)."""
    with serve(build_app(state), "/v1") as url:
        yield url
