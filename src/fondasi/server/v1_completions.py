"""``POST /v1/completions``: continue texts verbatim, with ``echo`` and legacy ``logprobs``.

``echo=True, logprobs=k, max_tokens=0`` scores the prompt only (the handle's
``token_logprobs``), as lm-evaluation-harness asks for log-likelihoods; with
``max_tokens=1`` it reads ``token_logprobs[ctxlen:-1]``, so the generated token's entry
follows the prompt's. Several prompts give ``len(prompts) * n`` choices, prompt-major.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request

from fondasi.backends.base import Capability
from fondasi.errors import FondasiError
from fondasi.server.auth import Caller, state_of
from fondasi.server.generation import Gathered, bad, options, sse, summed, usage_json
from fondasi.server.pool import Served
from fondasi.server.recorder import CallLog
from fondasi.server.schemas import CompletionRequest
from fondasi.server.serving import note_guard, serve_model
from fondasi.server.state import Route, ServerState
from fondasi.server.v1_chat import (
    Opened,
    envelope,
    finish,
    gather,
    open_stream,
    per_choice,
    respond,
)
from fondasi.server.v1_chat import gathered_stream as tagged_answers
from fondasi.types import Chunk, GenerateOptions, TokenLogprob, Usage

router = APIRouter()
MAX_PROMPTS = 64
DEFAULT_MAX_TOKENS = 16


def _prompts(body: CompletionRequest) -> list[str]:
    raw = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    if not raw:
        raise bad("prompt is empty: send a text or a list of texts", "prompt")
    if not all(isinstance(p, str) for p in raw):
        raise bad(
            "token arrays are not served: send the prompt as text", "prompt", "unsupported_value"
        )
    if len(raw) > MAX_PROMPTS:
        raise bad(f"{len(raw)} prompts; send at most {MAX_PROMPTS} per request", "prompt")
    if any(not str(p).strip() for p in raw):
        raise bad("every prompt must be a non-empty string", "prompt")
    return [str(p) for p in raw]


@router.post("/v1/completions")
async def completions(body: CompletionRequest, request: Request, key: Caller) -> Any:
    """Continue texts (OpenAI legacy completions); local models continue them verbatim."""
    state, call = state_of(request), request.state.call
    call.model, call.stream = body.model, bool(body.stream)
    prompts = _prompts(body)
    if body.suffix:
        raise bad("suffix (insertion) is not served", "suffix", "unsupported_value")
    scoring = body.max_tokens == 0
    if scoring and not body.echo:
        raise bad("max_tokens 0 needs echo: true (score the prompt)", "max_tokens")
    if body.stream and (body.echo or len(prompts) > 1):
        raise bad("a stream continues one prompt without echo", "stream", "unsupported_value")
    top = body.logprobs
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    dialect = {"logprobs": True, "top_logprobs": top} if top is not None else {}
    wanted = 1 if scoring else body.max_tokens or DEFAULT_MAX_TOKENS
    opts = options(body, state.config.max_tokens_cap, wanted, dialect)
    served, route = await serve_model(state, call, body.model, key)
    if not served.can(Capability.GENERATE):
        raise bad(f"{served.ref} does not generate text", "model")
    if state.config.log_text:
        call.prompt_text = state.redact("\n\n".join(prompts))
    choices = per_choice(opts, body.n or 1)
    if body.stream:
        opened = await open_stream(state, call, served, _continuation(served, prompts[0]), choices)
        return respond(_events(state, call, route, opened, include_usage), call, opened)
    rows: list[dict[str, Any]] = []
    usages: list[Usage] = []
    made: list[Gathered] = []
    for prompt in prompts:
        if scoring:
            prompt_read = await _read(state, call, served, prompt, top or 0)
            shown_read = prompt_read if top is not None else None
            rows.append(_choice(prompt, "", "length", shown_read, 0))
            usages.append(Usage(prompt_tokens=len(prompt_read), completion_tokens=0))
            continue
        answers = await gather(state, call, served, _continuation(served, prompt), choices)
        made.extend(answers)
        usages.extend(a.usage for a in answers)
        shown, offset = (prompt, 0) if body.echo else ("", len(prompt))
        for answer in answers:
            read: list[TokenLogprob | None] | None = None
            if top is not None:
                read = await _scored(state, call, served, prompt, answer, top, bool(body.echo))
            rows.append(_choice(shown, answer.text, answer.finish_reason, read, offset))
    if made:
        finish(state, call, route, made)
    for index, row in enumerate(rows):
        row["index"] = index
    usage = summed(usages)
    call.prompt_tokens, call.completion_tokens = usage.prompt_tokens, usage.completion_tokens
    return {**envelope(call, "text_completion"), "choices": rows, "usage": usage_json(usage)}


def _continuation(served: Served, prompt: str) -> Any:
    # The text is continued as given: a chat model's template would otherwise wrap it.
    def make(choice: GenerateOptions) -> AsyncIterator[Chunk]:
        return served.handle.astream(prompt, options=choice, chat_template=False)

    return make


async def _read(
    state: ServerState, call: CallLog, served: Served, text: str, top: int
) -> list[TokenLogprob | None]:
    """Each token of ``text`` with its log-probability, in one slot of the model's lane."""
    async with served.lane.slot():
        try:
            read: list[TokenLogprob | None] = await state.runner.run(
                served.handle.token_logprobs, text, top, timeout=state.config.timeout_s
            )
        except FondasiError as exc:
            note_guard(call, exc)
            raise
    return read


async def _scored(
    state: ServerState,
    call: CallLog,
    served: Served,
    prompt: str,
    answer: Gathered,
    top: int,
    echo: bool,
) -> list[TokenLogprob | None]:
    """The answer's tokens (after the prompt's, with echo) with their log-probabilities."""
    made: list[TokenLogprob | None] = list(answer.logprobs or [])
    if answer.logprobs is None and answer.text:  # the model gave none: read them back
        whole = await _read(state, call, served, prompt + answer.text, top)
        own = await _read(state, call, served, prompt, top)
        made = whole[len(own) :]
    if not echo:
        return made
    return [*await _read(state, call, served, prompt, top), *made]


def _choice(
    shown: str, text: str, reason: str, read: list[TokenLogprob | None] | None, offset: int
) -> dict[str, Any]:
    logprobs = None if read is None else legacy(read, shown + text, offset)
    return {"index": 0, "text": shown + text, "finish_reason": reason, "logprobs": logprobs}


def legacy(read: list[TokenLogprob | None], text: str, offset: int = 0) -> dict[str, Any]:
    """The legacy ``logprobs`` object: tokens, their log-probs, top alternatives, offsets.

    A first token read without context has no entry of its own (``None``): its text is what
    the later tokens leave over at the start.
    """
    known = [item.token for item in read if item is not None]
    lead = text[: max(len(text) - len("".join(known)), 0)]
    tokens, logprobs, tops, offsets = [], [], [], []
    at = offset
    for item in read:
        token = item.token if item is not None else lead
        tokens.append(token)
        logprobs.append(item.logprob if item is not None else None)
        tops.append(
            None
            if item is None
            else {top.token: top.logprob for top in item.top_logprobs} or {item.token: item.logprob}
        )
        offsets.append(at)
        at += len(token)
    return {
        "tokens": tokens,
        "token_logprobs": logprobs,
        "top_logprobs": tops,
        "text_offset": offsets,
    }


async def _events(
    state: ServerState, call: CallLog, route: Route, opened: Opened, include_usage: bool
) -> AsyncIterator[bytes]:
    def event(choice: dict[str, Any]) -> bytes:
        return sse({**envelope(call, "text_completion"), "choices": [choice]})

    answers: list[Gathered] = []
    offsets = [0] * opened.count
    async for index, chunk, answers in tagged_answers(opened):
        if chunk.text or chunk.logprobs:
            call.first()
            shown = None
            if opened.logprobs:
                shown = legacy(list(chunk.logprobs or []), chunk.text, offsets[index])
            offsets[index] += len(chunk.text)
            yield event(
                {"index": index, "text": chunk.text, "finish_reason": None, "logprobs": shown}
            )
        if chunk.final:
            reason = answers[index].finish_reason
            yield event({"index": index, "text": "", "finish_reason": reason, "logprobs": None})
    if not answers or any(a.final is None for a in answers):
        raise FondasiError("the model ended its answer without usage")
    finish(state, call, route, answers)
    if include_usage:
        usage = usage_json(summed([a.usage for a in answers]))
        yield sse({**envelope(call, "text_completion"), "choices": [], "usage": usage})
    yield sse("[DONE]")
