"""``POST /v1/chat/completions`` and ``POST /v1/completions``, streamed over SSE or whole."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from fondasi.backends.base import Capability
from fondasi.errors import BadInputError, FondasiError
from fondasi.models.results import fold
from fondasi.server.auth import Caller, state_of
from fondasi.server.errors import APIError, from_fondasi
from fondasi.server.generation import (
    bad,
    log_messages,
    messages,
    options,
    refuse_unsupported,
    sse,
    usage_json,
)
from fondasi.server.pool import Served
from fondasi.server.recorder import CallLog
from fondasi.server.schemas import ChatRequest, CompletionRequest, Sampling
from fondasi.server.serving import note_guard, serve_model
from fondasi.server.state import Route, ServerState
from fondasi.types import Answered, Chunk, Completion, GenerateOptions

router = APIRouter()


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatRequest, request: Request, key: Caller) -> Any:
    """Answer a conversation (OpenAI chat completions)."""
    state, call = state_of(request), request.state.call
    call.model, call.stream = body.model, bool(body.stream)
    refuse_unsupported(body)
    turns = messages(body)
    opts = options(body, state.config.max_tokens_cap, body.max_completion_tokens or body.max_tokens)
    served, route = await serve_model(state, call, body.model, key)
    if not served.can(Capability.CHAT):
        raise bad(f"{served.ref} has no chat template: use /v1/completions", "model")
    if state.config.log_text:
        call.prompt_text = log_messages(turns, state.redact)

    def make() -> Iterator[Chunk]:
        return iter(served.handle.stream(turns, options=opts))

    return await _answer(state, call, served, route, make, body, chat=True)


@router.post("/v1/completions")
async def completions(body: CompletionRequest, request: Request, key: Caller) -> Any:
    """Continue a text (OpenAI legacy completions); local models continue it verbatim."""
    state, call = state_of(request), request.state.call
    call.model, call.stream = body.model, bool(body.stream)
    refuse_unsupported(body)
    if body.echo or body.suffix:
        raise bad("echo and suffix are not served", "echo", "unsupported_value")
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    if len(prompts) != 1 or not prompts[0].strip():
        raise bad("send exactly one non-empty prompt", "prompt")
    prompt = prompts[0]
    opts = options(body, state.config.max_tokens_cap, body.max_tokens or 16)
    served, route = await serve_model(state, call, body.model, key)
    if not served.can(Capability.GENERATE):
        raise bad(f"{served.ref} does not generate text", "model")
    if state.config.log_text:
        call.prompt_text = state.redact(prompt)
    make = _continuation(served, prompt, opts)
    return await _answer(state, call, served, route, make, body, chat=False)


def _continuation(served: Served, prompt: str, opts: GenerateOptions) -> Callable[[], Any]:
    # The text is continued as given: a chat model's template would otherwise wrap it.
    return lambda: iter(served.handle.stream(prompt, options=opts, chat_template=False))


def _finish(state: ServerState, call: CallLog, route: Route, final: Answered, text: str) -> None:
    """Log who answered (from the model's own account), the route, tokens, cost and text."""
    call.version = final.model or route.ref
    call.decision = "; ".join(part for part in (route.decision, final.route) if part) or None
    call.cost_usd = final.cost_usd
    if state.config.log_text:
        call.response_text = state.redact(text)


def _gather(call: CallLog, chunks: Iterator[Chunk], ref: str) -> Completion:
    """The whole answer, noting when its first text came (queueing included)."""

    def noted() -> Iterator[Chunk]:
        for chunk in chunks:
            if chunk.text:
                call.first()
            yield chunk

    answer = fold(noted(), ref)
    call.prompt_tokens = answer.usage.prompt_tokens
    call.completion_tokens = answer.usage.completion_tokens
    return answer


def _envelope(call: CallLog, chat: bool, chunk: bool) -> dict[str, Any]:
    kind = ("chat.completion" if chat else "text_completion") + (".chunk" if chunk and chat else "")
    return {
        "id": call.id,
        "object": kind,
        "created": int(call.ts),
        "model": call.version,
        "system_fingerprint": None,
    }


async def _answer(
    state: ServerState,
    call: CallLog,
    served: Served,
    route: Route,
    make: Callable[[], Iterator[Chunk]],
    body: Sampling,
    chat: bool,
) -> Any:
    timeout = state.config.timeout_s
    if not body.stream:
        async with served.lane.slot():
            try:
                answer = await state.runner.run(
                    lambda: _gather(call, make(), route.ref), timeout=timeout
                )
            except FondasiError as exc:
                note_guard(call, exc)
                raise
        _finish(state, call, route, answer, answer.text)
        choice: dict[str, Any] = {"index": 0, "finish_reason": answer.finish_reason}
        if chat:
            choice["message"] = {"role": "assistant", "content": answer.text}
        else:
            choice["text"] = answer.text
        choice["logprobs"] = None
        return {
            **_envelope(call, chat, False),
            "choices": [choice],
            "usage": usage_json(answer.usage),
        }
    return await _stream(state, call, served, route, make, body, chat)


async def _stream(
    state: ServerState,
    call: CallLog,
    served: Served,
    route: Route,
    make: Callable[[], Iterator[Chunk]],
    body: Sampling,
    chat: bool,
) -> StreamingResponse:
    ticket = await served.lane.acquire()
    call.cleanups.append(ticket.release)
    chunks = state.runner.stream(make, timeout=state.config.timeout_s)
    call.cleanups.append(chunks.aclose)
    # The first chunk is awaited here so that failures before any text (a guard block, a
    # model error) still get their own status instead of an error inside a 200 stream.
    try:
        first: Chunk | None = await anext(chunks)
    except StopAsyncIteration:
        first = None
    except FondasiError as exc:
        note_guard(call, exc)
        raise
    if first is not None and first.model:
        call.version = first.model  # the first chunk names the model that is answering
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def delta(text: str | None, finish: str | None, role: bool = False) -> bytes:
        if chat:
            content: dict[str, Any] = {"role": "assistant", "content": ""} if role else {}
            if text:
                content["content"] = text
            choice: dict[str, Any] = {"index": 0, "delta": content, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text or "", "finish_reason": finish}
        return sse({**_envelope(call, chat, True), "choices": [choice], "logprobs": None})

    async def events() -> AsyncIterator[bytes]:
        parts: list[str] = []
        final: Chunk | None = None
        try:
            if chat:
                yield delta(None, None, role=True)
            pending = [first] if first is not None else []
            while True:
                chunk = pending.pop() if pending else await anext(chunks, None)
                if chunk is None:
                    break
                if chunk.text:
                    call.first()
                    parts.append(chunk.text)
                    yield delta(chunk.text, None)
                final = chunk
            if final is None or final.usage is None:
                raise BadInputError("the model ended its answer without usage")
            call.prompt_tokens = final.usage.prompt_tokens
            call.completion_tokens = final.usage.completion_tokens
            _finish(state, call, route, final, "".join(parts))
            yield delta(None, final.finish_reason or "stop")
            if include_usage:
                usage = {
                    **_envelope(call, chat, True),
                    "choices": [],
                    "usage": usage_json(final.usage),
                }
                yield sse(usage)
            yield sse("[DONE]")
        except (APIError, FondasiError) as exc:
            error = exc if isinstance(exc, APIError) else from_fondasi(exc)
            note_guard(call, exc)
            call.error = f"{error.code or error.type}: {error.message}"[:2000]
            yield sse(error.body())
        except Exception as exc:  # the stream is already a 200: report inside it, then stop
            call.error = f"internal error: {type(exc).__name__}: {exc}"[:2000]
            yield sse(APIError(500, f"internal error: {type(exc).__name__}", "server_error").body())
        finally:
            await chunks.aclose()
            ticket.release()

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
