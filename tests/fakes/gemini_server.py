"""A local server speaking the Gemini API's REST format (v1 and v1beta), with faults on demand.

Routes as google-genai calls them: ``POST /{version}/models/{model}:generateContent``,
``:streamGenerateContent?alt=sse`` (``data: {GenerateContentResponse}`` events, no end
marker), ``:batchEmbedContents`` and ``:embedContent``; the key comes in ``x-goog-api-key``
and errors have Google's shape ``{"error": {"code", "message", "status", "details"}}``.

The model name picks the behaviour: ``flaky-429`` answers 429 twice (Retry-After: 0 the
first time, a RetryInfo ``retryDelay`` of 0 s the second) and then succeeds, ``quota-429``
always answers 429 with a ``retryDelay`` of 7 s, ``always-500`` fails, ``stall`` answers
after 3 s, ``reset`` breaks the stream off after two events, ``garbage`` sends an event that
is not JSON, ``no-usage`` omits usageMetadata, ``missing`` does not exist. Anything else
answers ``Echo: <last user text>`` one word per event, cut at the first stop sequence or
at ``maxOutputTokens`` words (finishReason MAX_TOKENS). A wrong key gets Google's 400
API_KEY_INVALID; ``SUSPENDED`` gets the 403 whose message names the key, as Google's does.

``tools[].functionDeclarations``, ``toolConfig.functionCallingConfig`` (mode AUTO, ANY,
NONE; allowedFunctionNames), ``functionCall`` / ``functionResponse`` parts,
``responseJsonSchema`` and ``responseLogprobs`` / ``logprobs`` are checked as the API
checks them and answered as ``tests.fakes.dialect`` decides: calls come whole in one
event, without ids and each with a ``thoughtSignature`` that must come back with it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from .dialect import Call, calls_for, schema_answer, valid_schema
from .serve import serve

KEY = "AIzaSyFAKE-test-key-0123456789"
SUSPENDED = "AIzaSyFAKE-suspended-key-98765"
EMBED_BATCH_LIMIT = 100


@dataclass
class FakeState:
    """What the fake saw: calls per model, and each request's path, headers and body."""

    calls: Counter[str] = field(default_factory=Counter)
    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)


def _error(
    code: int,
    message: str,
    status: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=code, headers=headers)


def _error_info(reason: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }


def _retry_info(delay: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


def _refused(key: str) -> Response | None:
    if key == KEY:
        return None
    if key == SUSPENDED:
        return _error(
            403,
            f"Permission denied: Consumer 'api_key:{key}' has been suspended.",
            "PERMISSION_DENIED",
            [_error_info("CONSUMER_SUSPENDED")],
        )
    return _error(
        400,
        "API key not valid. Please pass a valid API key.",
        "INVALID_ARGUMENT",
        [_error_info("API_KEY_INVALID")],
    )


def build_app(state: FakeState) -> FastAPI:
    """The FastAPI app behind the fake."""
    app = FastAPI()

    @app.post("/{version}/models/{target}")
    async def models(version: str, target: str, request: Request) -> Response:
        model, _, method = target.partition(":")
        body = await request.json()
        state.paths.append(
            request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
        state.headers.append(dict(request.headers))
        state.bodies.append(body)
        if (refused := _refused(request.headers.get("x-goog-api-key", ""))) is not None:
            return refused
        state.calls[model] += 1
        if version not in ("v1", "v1beta") or model == "missing":
            return _error(
                404,
                f"models/{model} is not found for API version {version}, or is not supported "
                f"for {method}. Call ListModels to see the list of available models and their "
                "supported methods.",
                "NOT_FOUND",
            )
        if model == "flaky-429" and state.calls[model] <= 2:
            first = state.calls[model] == 1
            return _error(
                429,
                "Resource has been exhausted (e.g. check quota).",
                "RESOURCE_EXHAUSTED",
                None if first else [_retry_info("0s")],
                {"retry-after": "0"} if first else None,
            )
        if model == "quota-429":
            return _error(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                "RESOURCE_EXHAUSTED",
                [_retry_info("7s")],
            )
        if model == "always-500":
            return _error(
                500, "An internal error has occurred. Please retry or report.", "INTERNAL"
            )
        if model == "stall":
            await asyncio.sleep(3)
        generates = method in ("streamGenerateContent", "generateContent")
        if generates and (malformed := _malformed(body)) is not None:
            return _error(400, malformed, "INVALID_ARGUMENT")
        if method == "streamGenerateContent":
            words, finish = _answer(body)
            calls = _calls(body, model)
            config = body.get("generationConfig", {})
            top = config.get("logprobs", 0) if config.get("responseLogprobs") else None
            return StreamingResponse(
                _events(model, [] if calls else words, finish, _prompt_tokens(body), calls, top),
                media_type="text/event-stream",
            )
        if method == "generateContent":
            words, finish = _answer(body)
            return JSONResponse(_response(model, " ".join(words), finish, _usage(body, len(words))))
        if method == "batchEmbedContents":
            return _embed_batch(model, body["requests"])
        if method == "embedContent":
            return _embed_batch(model, [body])
        return _error(404, f"Method not found: {method}", "NOT_FOUND")

    return app


def _field(message: dict[str, Any], camel: str, snake: str) -> str:
    return str(message.get(camel, message.get(snake, "")))


def _decoded(data: str) -> bytes:
    """Inline data: base64 as the SDK sends it (URL-safe alphabet, padding optional)."""
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _texts(content: dict[str, Any]) -> str:
    """The text parts; image parts (inline PNG or a file URI) are counted, not echoed."""
    parts = content.get("parts", [])
    text = " ".join(part["text"] for part in parts if "text" in part)
    images = [
        p
        for p in parts
        if _decoded(_field(p.get("inlineData", {}), "data", "data"))[:4] == b"\x89PNG"
        # proto JSON takes field names in camelCase or snake_case, and the SDK mixes them
        or str(_field(p.get("fileData", {}), "fileUri", "file_uri")).startswith("https://")
    ]
    if images:
        text += f" [{len(images)} image{'s' if len(images) > 1 else ''}]"
    return text


def _answer(body: dict[str, Any]) -> tuple[list[str], str]:
    """Echo the last user turn, cut at a stop sequence or at maxOutputTokens words."""
    last = next(c for c in reversed(body["contents"]) if c.get("role", "user") == "user")
    text = "Echo: " + _texts(last)
    config = body.get("generationConfig", {})
    results = [p["functionResponse"] for p in last["parts"] if "functionResponse" in p]
    if results:
        text = "Result: " + " ".join(json.dumps(r["response"]) for r in results)
    elif "responseJsonSchema" in config:
        text = schema_answer(config["responseJsonSchema"], _texts(last))
    elif config.get("responseMimeType") == "application/json":
        text = json.dumps({"echo": _texts(last)})
    cuts = [i for stop in config.get("stopSequences", []) if (i := text.find(stop)) >= 0]
    text = text[: min(cuts)].rstrip() if cuts else text
    words = text.split(" ")
    limit = config.get("maxOutputTokens") or len(words)
    return words[:limit], "MAX_TOKENS" if len(words) > limit else "STOP"


def _declared(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f["name"]: f.get("parametersJsonSchema", f.get("parameters_json_schema", {}))
        for tool in body.get("tools", [])
        for f in tool.get("functionDeclarations", tool.get("function_declarations", []))
    }


def _calls(body: dict[str, Any], model: str) -> list[Call]:
    """The calls the model makes, by functionCallingConfig (mode, allowedFunctionNames)."""
    last = body["contents"][-1]
    if any("functionResponse" in p for p in last["parts"]):
        return []
    config = body.get("toolConfig", {}).get("functionCallingConfig", {})
    mode, allowed = config.get("mode", "AUTO"), config.get("allowedFunctionNames")
    choice = {"NONE": "none", "ANY": "required"}.get(mode, "auto")
    if mode == "ANY" and allowed:
        choice = allowed[0]
    return calls_for(_declared(body), choice, model, _texts(last))


def _signature(name: str) -> str:
    return base64.b64encode(f"sig-{name}".encode()).decode()


def _malformed(body: dict[str, Any]) -> str | None:
    """Why the Gemini API would refuse these tools, contents or generation config."""
    for tool in body.get("tools", []):
        for f in tool.get("functionDeclarations", []):
            schema = f.get("parametersJsonSchema", f.get("parameters_json_schema"))
            if not f.get("name") or (schema is not None and not valid_schema(schema)):
                return "* GenerateContentRequest.tools[0].function_declarations: invalid"
            if schema is not None and "parameters" in f:
                return "parameters and parameters_json_schema are mutually exclusive"
    declared = _declared(body)
    config = body.get("toolConfig", {}).get("functionCallingConfig", {})
    if config.get("mode", "AUTO") not in ("AUTO", "ANY", "NONE", "VALIDATED"):
        return f"Invalid value at 'tool_config.function_calling_config.mode': {config['mode']}"
    allowed = config.get("allowedFunctionNames")
    if allowed and (config.get("mode") != "ANY" or not set(allowed) <= set(declared)):
        return "allowed_function_names is set only with mode ANY, naming declared functions"
    previous: list[dict[str, Any]] = []
    for n, content in enumerate(body["contents"]):
        parts = content.get("parts", [])
        asked = [p["functionCall"] for p in previous if "functionCall" in p]
        answered = [p["functionResponse"] for p in parts if "functionResponse" in p]
        if answered:
            if content.get("role", "user") != "user" or not asked:
                return (
                    f"contents[{n}]: a function response turn comes right after the function "
                    "call turn"
                )
            if sorted(r["name"] for r in answered) != sorted(c["name"] for c in asked):
                return (
                    "Please ensure that the number of function response parts is equal to "
                    "the number of function call parts of the function call turn."
                )
        for part in parts:
            if "functionCall" in part:
                call = part["functionCall"]
                if content.get("role") != "model" or not isinstance(call.get("args", {}), dict):
                    return f"contents[{n}]: functionCall parts are in model turns, args an object"
                # As Gemini 3 does: a call comes back with the signature it was given.
                signature = part.get("thoughtSignature", part.get("thought_signature"))
                if signature != _signature(call["name"]):
                    return f"Function call is missing a thought_signature in contents[{n}]"
        previous = parts
    generation = body.get("generationConfig", {})
    if "responseJsonSchema" in generation:
        if generation.get("responseMimeType") != "application/json":
            return "response_mime_type must be application/json with a response schema"
        if "responseSchema" in generation or not valid_schema(generation["responseJsonSchema"]):
            return "responseJsonSchema: a JSON schema, and not with responseSchema"
    if "logprobs" in generation and (
        not generation.get("responseLogprobs") or not 0 <= generation["logprobs"] <= 20
    ):
        return "logprobs needs responseLogprobs and a value from 0 to 20"
    return None


def _prompt_tokens(body: dict[str, Any]) -> int:
    system = _texts(body.get("systemInstruction", {}))
    return len(system.split()) + sum(len(_texts(c).split()) for c in body["contents"])


def _usage(body: dict[str, Any], completion: int) -> dict[str, int]:
    prompt = _prompt_tokens(body)
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": completion,
        "totalTokenCount": prompt + completion,
    }


def _response(
    model: str, text: str, finish: str | None, usage: dict[str, int] | None
) -> dict[str, Any]:
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": [{"text": text}]},
        "index": 0,
    }
    if finish:
        candidate["finishReason"] = finish
    response: dict[str, Any] = {
        "candidates": [candidate],
        "modelVersion": model,
        "responseId": "fake-response",
    }
    if usage:
        response["usageMetadata"] = usage
    return response


async def _events(
    model: str,
    words: list[str],
    finish: str,
    prompt_tokens: int,
    calls: list[Call] | None = None,
    top: int | None = None,
) -> AsyncIterator[bytes]:
    def event(payload: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(payload)}\r\n\r\n".encode()

    if calls:
        # As the Gemini API sends calls: whole, in one event, without ids, each signed.
        parts = [
            {
                "functionCall": {"name": c.name, "args": json.loads(c.arguments)},
                "thoughtSignature": _signature(c.name),
            }
            for c in calls
        ]
        usage = {"promptTokenCount": prompt_tokens, "candidatesTokenCount": 5}
        payload = _response(model, "", "STOP", usage)
        payload["candidates"][0]["content"]["parts"] = parts
        yield event(payload)
        return

    if model == "garbage":
        yield b"data: {this is not json\r\n\r\n"
    for index, word in enumerate(words):
        if model == "reset" and index == 2:
            raise ConnectionResetError("fake reset mid-stream")
        last = index == len(words) - 1
        # Like Google's, every event carries the running usage; the last one also the output.
        usage = {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens}
        if last:
            usage = {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": len(words),
                "totalTokenCount": prompt_tokens + len(words),
            }
        text = word if index == 0 else " " + word
        payload = _response(
            model, text, finish if last else None, None if model == "no-usage" else usage
        )
        if top is not None:
            payload["candidates"][0]["logprobsResult"] = _logprobs(text, index, top)
        yield event(payload)


def _logprobs(text: str, index: int, top: int) -> dict[str, Any]:
    """The Gemini API's logprobsResult for one event's one token."""
    chosen = {"token": text, "logProbability": -0.25 * (index + 1)}
    others = [
        {"token": f"alt{n}", "logProbability": -0.25 * (index + 1) - n - 1} for n in range(top)
    ]
    return {
        "topCandidates": [{"candidates": [chosen, *others][:top]}],
        "chosenCandidates": [chosen],
        "logProbabilitySum": chosen["logProbability"],
    }


def _embed_batch(model: str, requests: list[dict[str, Any]]) -> Response:
    if len(requests) > EMBED_BATCH_LIMIT:
        return _error(
            400,
            "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch",
            "INVALID_ARGUMENT",
        )
    if "gemini-embedding-2" in model and any("taskType" in r for r in requests):
        return _error(
            400,
            "taskType is not supported by this model; put the task in the text.",
            "INVALID_ARGUMENT",
        )
    return JSONResponse(
        {"embeddings": [{"values": _vector(_texts(r["content"]))} for r in requests]}
    )


def _vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [b / 255 - 0.5 for b in digest[:8]]


@contextmanager
def running(state: FakeState) -> Iterator[str]:
    """Serve the fake on 127.0.0.1 in a thread; yields its root URL."""
    with serve(build_app(state), "") as url:
        yield url
