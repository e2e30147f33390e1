"""``POST /v1/chat/completions``, streamed over SSE or whole, and the generation plumbing the
text completion and Responses routes share: ``n`` answers run one after another in one lane
slot, gathered (``gather``) or streamed (``open_stream``), then logged once (``finish``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from fondasi.backends.base import Capability
from fondasi.backends.hosted import whole_answers
from fondasi.errors import FondasiError
from fondasi.server.auth import Caller, state_of
from fondasi.server.errors import APIError, from_fondasi
from fondasi.server.generation import (
    Gathered,
    bad,
    chat_dialect,
    check_images,
    log_messages,
    messages,
    options,
    sse,
    summed,
    token_json,
    tool_call_json,
    usage_json,
)
from fondasi.server.limits import Ticket
from fondasi.server.pool import Served
from fondasi.server.recorder import CallLog
from fondasi.server.runner import within
from fondasi.server.schemas import ChatRequest
from fondasi.server.serving import note_guard, serve_model
from fondasi.server.state import Route, ServerState
from fondasi.types import Chunk, GenerateOptions

router = APIRouter()
Make = Callable[[GenerateOptions], AsyncIterator[Chunk]]  # one answer's stream for its options


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatRequest, request: Request, key: Caller) -> Any:
    """Answer a conversation (OpenAI chat completions)."""
    state, call = state_of(request), request.state.call
    call.model, call.stream = body.model, bool(body.stream)
    turns = messages(body)
    cap, wanted = state.config.max_tokens_cap, body.max_completion_tokens or body.max_tokens
    opts = options(body, cap, wanted, chat_dialect(body))
    served, route = await serve_model(state, call, body.model, key)
    if not served.can(Capability.CHAT):
        raise bad(f"{served.ref} has no chat template: use /v1/completions", "model")
    check_images(turns, served, state.config.allow_image_urls)
    if state.config.log_text:
        call.prompt_text = log_messages(turns, state.redact)

    def make(choice: GenerateOptions) -> AsyncIterator[Chunk]:
        return served.handle.astream(turns, options=choice)

    choices = per_choice(opts, body.n or 1)
    if body.stream:
        opened = await open_stream(state, call, served, make, choices)
        usage = bool(body.stream_options and body.stream_options.include_usage)
        return respond(_chat_events(state, call, route, opened, usage), call, opened)
    answers = await gather(state, call, served, make, choices)
    finish(state, call, route, answers)
    return {
        **envelope(call, "chat.completion"),
        "choices": [_chat_choice(i, a, opts.logprobs) for i, a in enumerate(answers)],
        "usage": usage_json(summed([a.usage for a in answers])),
    }


def per_choice(opts: GenerateOptions, n: int) -> list[GenerateOptions]:
    """The options of each of ``n`` answers: a given seed moves on by one per answer."""
    if opts.seed is None:
        return [opts] * n
    return [opts.model_copy(update={"seed": (opts.seed + i) % 2**63}) for i in range(n)]


async def _tagged(make: Make, choices: list[GenerateOptions]) -> AsyncIterator[tuple[int, Chunk]]:
    # The model's async stream: a hosted API's async client on the loop, or a local model
    # on a worker thread (``fondasi.models.aio``).
    for index, choice in enumerate(choices):
        chunks = make(choice)
        try:
            async for chunk in chunks:
                yield index, chunk
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]


async def gather(
    state: ServerState, call: CallLog, served: Served, make: Make, choices: list[GenerateOptions]
) -> list[Gathered]:
    """Every answer whole, one after another in one slot of the model's lane."""

    answers = [Gathered() for _ in choices]
    # Nobody reads these answers piece by piece: an API that can answer in one response
    # is asked to (fewer bytes and no event per token on either side).
    async with served.lane.slot():
        try:
            with whole_answers():
                async for index, chunk in within(_tagged(make, choices), state.config.timeout_s):
                    if chunk.text or chunk.tool_calls:
                        call.first()
                    answers[index].add(chunk)
        except FondasiError as exc:
            note_guard(call, exc)
            raise
    for answer in answers:
        answer.usage  # noqa: B018  (a stream without usage is an error, raised here)
    return answers


def finish(state: ServerState, call: CallLog, route: Route, answers: list[Gathered]) -> None:
    """Log who answered (the model's own account), the route, tokens, cost and answers."""
    finals = [a.final for a in answers if a.final is not None]
    usage = summed([a.usage for a in answers])
    call.prompt_tokens, call.completion_tokens = usage.prompt_tokens, usage.completion_tokens
    call.version = (finals[0].model if finals else None) or route.ref
    call.decision = (
        "; ".join(part for part in (route.decision, finals[0].route if finals else None) if part)
        or None
    )
    costs = [f.cost_usd for f in finals]
    call.cost_usd = None if None in costs or not costs else sum(c for c in costs if c is not None)
    if state.config.log_text:
        texts = [a.logged() for a in answers]
        joined = (
            texts[0] if len(texts) == 1 else "\n\n".join(f"[{i}] {t}" for i, t in enumerate(texts))
        )
        call.response_text = state.redact(joined)


def envelope(call: CallLog, kind: str) -> dict[str, Any]:
    """What every chat and text completion object starts with."""
    return {
        "id": call.id,
        "object": kind,
        "created": int(call.ts),
        "model": call.version,
        "system_fingerprint": None,
    }


def _chat_choice(index: int, answer: Gathered, logprobs: bool) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.text if answer.text or not answer.tool_calls else None,
        "refusal": None,
    }
    if answer.tool_calls:
        message["tool_calls"] = [tool_call_json(call) for call in answer.tool_calls]
    return {
        "index": index,
        "message": message,
        "finish_reason": answer.finish_reason,
        "logprobs": _logprobs(answer.logprobs or []) if logprobs else None,
    }


def _logprobs(items: list[Any]) -> dict[str, Any]:
    return {"content": [token_json(item) for item in items], "refusal": None}


@dataclass
class Opened:
    """A stream of tagged chunks that has produced its first one (or ended)."""

    first: tuple[int, Chunk] | None
    rest: AsyncIterator[tuple[int, Chunk]]
    ticket: Ticket
    logprobs: bool
    count: int  # answers in the stream

    async def items(self) -> AsyncIterator[tuple[int, Chunk]]:
        """Every tagged chunk, the first included."""
        if self.first is not None:
            yield self.first
        async for item in self.rest:
            yield item


async def open_stream(
    state: ServerState, call: CallLog, served: Served, make: Make, choices: list[GenerateOptions]
) -> Opened:
    """Start streaming; failures before the first chunk (a guard block, a model error) still
    get their own status instead of an error inside a 200 stream."""
    ticket = await served.lane.acquire()
    call.cleanups.append(ticket.release)
    chunks = within(_tagged(make, choices), state.config.timeout_s)
    call.cleanups.append(chunks.aclose)
    try:
        first: tuple[int, Chunk] | None = await anext(chunks)
    except StopAsyncIteration:
        first = None
    except FondasiError as exc:
        note_guard(call, exc)
        raise
    if first is not None and first[1].model:
        call.version = first[1].model  # the first chunk names the model that is answering
    return Opened(first, chunks, ticket, choices[0].logprobs, len(choices))


def respond(
    events: AsyncIterator[bytes],
    call: CallLog,
    opened: Opened,
    error_event: Callable[[APIError], bytes] | None = None,
) -> StreamingResponse:
    """An SSE response over ``events``; a failure after the 200 is reported inside it."""

    async def guarded() -> AsyncIterator[bytes]:
        try:
            async for event in events:
                yield event
        except (APIError, FondasiError) as exc:
            error = exc if isinstance(exc, APIError) else from_fondasi(exc)
            note_guard(call, exc)
            call.error = f"{error.code or error.type}: {error.message}"[:2000]
            yield error_event(error) if error_event else sse(error.body())
        except Exception as exc:  # the stream is already a 200: report inside it, then stop
            call.error = f"internal error: {type(exc).__name__}: {exc}"[:2000]
            error = APIError(500, f"internal error: {type(exc).__name__}", "server_error")
            yield error_event(error) if error_event else sse(error.body())
        finally:
            await opened.rest.aclose()  # type: ignore[attr-defined]
            opened.ticket.release()

    return StreamingResponse(
        guarded(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


async def gathered_stream(opened: Opened) -> AsyncIterator[tuple[int, Chunk, list[Gathered]]]:
    """Each tagged chunk with the answers gathered so far (for the log at the end)."""
    answers = [Gathered() for _ in range(opened.count)]
    async for index, chunk in opened.items():
        answers[index].add(chunk)
        yield index, chunk, answers


async def _chat_events(
    state: ServerState, call: CallLog, route: Route, opened: Opened, include_usage: bool
) -> AsyncIterator[bytes]:
    def chunk_event(choice: dict[str, Any]) -> bytes:
        return sse({**envelope(call, "chat.completion.chunk"), "choices": [choice]})

    def delta(index: int, fields: dict[str, Any], logprobs: Any = None) -> bytes:
        choice = {"index": index, "delta": fields, "finish_reason": None, "logprobs": logprobs}
        return chunk_event(choice)

    started: set[int] = set()
    answers: list[Gathered] = []
    count = 0
    async for index, chunk, answers in gathered_stream(opened):
        count = len(answers)
        if index not in started:
            started.add(index)
            yield delta(index, {"role": "assistant", "content": ""})
        if chunk.text or chunk.logprobs:
            call.first()
            shown = _logprobs(chunk.logprobs or []) if opened.logprobs else None
            yield delta(index, {"content": chunk.text} if chunk.text else {}, shown)
        done = len(answers[index].tool_calls) - len(chunk.tool_calls)
        for number, tool_call in enumerate(chunk.tool_calls, start=done):
            call.first()
            head = tool_call_json(tool_call)
            head["function"] = {"name": tool_call.name, "arguments": ""}
            yield delta(index, {"tool_calls": [{"index": number, **head}]})
            arguments = {"index": number, "function": {"arguments": tool_call.arguments}}
            yield delta(index, {"tool_calls": [arguments]})
        if chunk.final:
            reason = answers[index].finish_reason
            yield chunk_event(
                {"index": index, "delta": {}, "finish_reason": reason, "logprobs": None}
            )
    if count == 0 or any(a.final is None for a in answers):
        raise FondasiError("the model ended its answer without usage")
    finish(state, call, route, answers)
    if include_usage:
        usage = usage_json(summed([a.usage for a in answers]))
        yield sse({**envelope(call, "chat.completion.chunk"), "choices": [], "usage": usage})
    yield sse("[DONE]")


__all__ = ["envelope", "finish", "gather", "open_stream", "per_choice", "respond", "router"]
