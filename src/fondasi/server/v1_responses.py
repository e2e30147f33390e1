"""``POST /v1/responses``: the part of OpenAI's Responses API that maps onto chat.

``input`` (text, or message items with ``input_text``/``input_image`` parts, and
``function_call`` / ``function_call_output`` items), ``instructions``, function ``tools``
in the flat Responses shape, ``tool_choice``, ``text.format`` (json_object, json_schema),
``max_output_tokens``, ``temperature`` and ``top_p`` become one chat call. Output is
``message`` and ``function_call`` items; a stream sends the documented events, each with a
``sequence_number``. Nothing is stored: ``previous_response_id``, ``conversation`` and
``background`` are refused, as are built-in tools (web search, file search, ...).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError

from fondasi.backends.base import Capability
from fondasi.server.auth import Caller, state_of
from fondasi.server.errors import APIError
from fondasi.server.generation import (
    Gathered,
    bad,
    check_images,
    format_fields,
    log_messages,
    options,
    sse,
    tool_choice_of,
    tools_of,
)
from fondasi.server.recorder import CallLog
from fondasi.server.schemas import ResponsesRequest
from fondasi.server.serving import serve_model
from fondasi.server.state import Route, ServerState
from fondasi.server.v1_chat import Opened, finish, gather, gathered_stream, open_stream, respond
from fondasi.types import Chunk, GenerateOptions, Message, Role, ToolCall

router = APIRouter()
ROLES = {"system": Role.SYSTEM, "developer": Role.SYSTEM, "user": Role.USER}
ROLES["assistant"] = Role.ASSISTANT
PARTS = {"input_text": "text", "output_text": "text", "text": "text", "input_image": "image"}
PARAMS = {"max_tokens": "max_output_tokens", "json_schema": "text.format"}


def _parts(content: Any, where: str) -> list[dict[str, Any]] | str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad(f"{where} is text or a list of content parts", where)
    out: list[dict[str, Any]] = []
    for number, part in enumerate(content):
        kind = PARTS.get(str(part.get("type"))) if isinstance(part, dict) else None
        if kind == "text":
            out.append({"type": "text", "text": str(part.get("text") or "")})
        elif kind == "image" and isinstance(part.get("image_url"), str):
            out.append({"type": "image_url", "image_url": {"url": part["image_url"]}})
        else:
            got = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise bad(
                f"{where}[{number}]: content of type {got!r} is not served "
                "(input_text, input_image with an image_url)",
                f"{where}.{number}",
                "unsupported_value",
            )
    return out


def _turns(body: ResponsesRequest) -> list[Message]:
    """The conversation the input items describe, instructions first."""
    items = [{"role": "user", "content": body.input}] if isinstance(body.input, str) else body.input
    turns: list[Message] = []
    names: dict[str, str] = {}
    if body.instructions:
        turns.append(Message(role=Role.SYSTEM, content=body.instructions))
    for index, item in enumerate(items):
        where, kind = f"input.{index}", item.get("type", "message")
        try:
            if kind == "message" and item.get("role") in ROLES:
                content = _parts(item.get("content"), f"{where}.content")
                turns.append(Message(role=ROLES[item["role"]], content=content))
            elif kind == "function_call":
                call = ToolCall(
                    id=str(item.get("call_id")), name=item["name"], arguments=item["arguments"]
                )
                names[call.id] = call.name
                last = turns[-1] if turns else None
                if last is not None and last.role is Role.ASSISTANT and not last.content:
                    turns[-1] = last.model_copy(update={"tool_calls": (*last.tool_calls, call)})
                else:
                    turns.append(Message(role=Role.ASSISTANT, tool_calls=(call,)))
            elif kind == "function_call_output":
                output = item.get("output")
                text = output if isinstance(output, str) else _joined(_parts(output, where))
                call_id = str(item.get("call_id"))
                turns.append(
                    Message(
                        role=Role.TOOL, content=text, tool_call_id=call_id, name=names.get(call_id)
                    )
                )
            else:
                raise bad(
                    f"input[{index}]: item type {kind!r} (role {item.get('role')!r}) is not "
                    "served (message, function_call, function_call_output)",
                    where,
                    "unsupported_value",
                )
        except (KeyError, ValueError, ValidationError) as exc:
            raise bad(f"input[{index}]: {exc}", where) from None
    if not any(t.content.strip() or t.images for t in turns if t.role is Role.USER):
        raise bad("the input has no user message with text or an image", "input")
    return turns


def _joined(parts: list[dict[str, Any]] | str) -> str:
    if isinstance(parts, str):
        return parts
    return "".join(str(part.get("text", "")) for part in parts)


def _refuse(body: ResponsesRequest) -> None:
    for name in ("previous_response_id", "conversation"):
        if getattr(body, name):
            raise bad(
                f"{name} is not served: fondasi stores no responses; send the whole "
                "conversation as input items",
                name,
                "unsupported_value",
            )
    if body.background:
        raise bad("background responses are not served", "background", "unsupported_value")


@router.post("/v1/responses")
async def responses(body: ResponsesRequest, request: Request, key: Caller) -> Any:
    """Answer input items (OpenAI Responses), whole or as a stream of events."""
    state, call = state_of(request), request.state.call
    call.model, call.stream = body.model, bool(body.stream)
    _refuse(body)
    turns = _turns(body)
    dialect: dict[str, Any] = {}
    if body.tools:
        dialect["tools"] = tools_of(body.tools, "tools")
    choice = tool_choice_of(body.tool_choice, "tool_choice")
    if choice is not None:
        dialect["tool_choice"] = choice
    if body.parallel_tool_calls is not None:
        dialect["parallel_tool_calls"] = body.parallel_tool_calls
    dialect |= format_fields((body.text or {}).get("format"), "text.format")
    cap = state.config.max_tokens_cap
    opts = options(body, cap, body.max_output_tokens, dialect, PARAMS)
    served, route = await serve_model(state, call, body.model, key)
    if not served.can(Capability.CHAT):
        raise bad(f"{served.ref} has no chat template: use /v1/completions", "model")
    check_images(turns, served, state.config.allow_image_urls)
    if state.config.log_text:
        call.prompt_text = log_messages(turns, state.redact)

    def make(choice: GenerateOptions) -> AsyncIterator[Chunk]:
        return served.handle.astream(turns, options=choice)

    if body.stream:
        opened = await open_stream(state, call, served, make, [opts])
        events = _events(state, call, route, opened, body, opts)
        return respond(events, call, opened, _error_event)
    answers = await gather(state, call, served, make, [opts])
    finish(state, call, route, answers)
    return _response(call, body, opts, _items(answers[0]), answers[0])


def _message_item(item_id: str, text: str, done: bool) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "completed" if done else "in_progress",
        "content": content if done else [],
    }


def _call_item(item_id: str, call: ToolCall, done: bool) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments if done else "",
        "status": "completed" if done else "in_progress",
    }


def _items(answer: Gathered) -> list[dict[str, Any]]:
    items = [_message_item(_id("msg_"), answer.text, True)] if answer.text else []
    return items + [_call_item(_id("fc_"), call, True) for call in answer.tool_calls]


def _id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def _response(
    call: CallLog,
    body: ResponsesRequest,
    opts: GenerateOptions,
    output: list[dict[str, Any]],
    answer: Gathered | None,
) -> dict[str, Any]:
    """The Response object: in progress (no answer yet) or done."""
    cut = answer is not None and answer.finish_reason == "length"
    status = "in_progress" if answer is None else "incomplete" if cut else "completed"
    usage = None
    if answer is not None:
        used = answer.usage
        usage = {
            "input_tokens": used.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": used.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": used.total_tokens,
        }
    return {
        "id": call.id,
        "object": "response",
        "created_at": int(call.ts),
        "status": status,
        "model": call.version,
        "output": output,
        "instructions": body.instructions,
        "tools": [tool.openai()["function"] | {"type": "function"} for tool in opts.tools],
        "tool_choice": opts.tool_choice
        if opts.tool_choice in ("auto", "none", "required")
        else {"type": "function", "name": opts.tool_choice},
        "parallel_tool_calls": opts.parallel_tool_calls,
        "temperature": opts.temperature,
        "top_p": opts.top_p,
        "max_output_tokens": body.max_output_tokens,
        "text": {"format": (body.text or {}).get("format") or {"type": "text"}},
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "metadata": body.metadata or {},
        "usage": usage,
    }


def _error_event(error: APIError) -> bytes:
    payload = {"type": "error", "code": error.code, "message": error.message, "param": error.param}
    return sse({**payload, "sequence_number": 0}, "error")


async def _events(
    state: ServerState,
    call: CallLog,
    route: Route,
    opened: Opened,
    body: ResponsesRequest,
    opts: GenerateOptions,
) -> AsyncIterator[bytes]:
    sequence = 0
    output: list[dict[str, Any]] = []

    def event(kind: str, **fields: Any) -> bytes:
        nonlocal sequence
        sequence += 1
        return sse({"type": kind, "sequence_number": sequence - 1, **fields}, kind)

    text_id: str | None = None
    parts: list[str] = []

    def close_text() -> Iterator[bytes]:
        nonlocal text_id
        if text_id is None:
            return
        item = _message_item(text_id, "".join(parts), True)
        where = {"item_id": text_id, "output_index": len(output), "content_index": 0}
        yield event(
            "response.output_text.done", **where, text=item["content"][0]["text"], logprobs=[]
        )
        yield event("response.content_part.done", **where, part=item["content"][0])
        yield event("response.output_item.done", output_index=len(output), item=item)
        output.append(item)
        text_id = None

    yield event("response.created", response=_response(call, body, opts, [], None))
    yield event("response.in_progress", response=_response(call, body, opts, [], None))
    answer = Gathered()
    async for _, chunk, answers in gathered_stream(opened):
        answer = answers[0]
        if chunk.text:
            call.first()
            if text_id is None:
                text_id, parts = _id("msg_"), []
                item = _message_item(text_id, "", False)
                yield event("response.output_item.added", output_index=len(output), item=item)
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                where = {"item_id": text_id, "output_index": len(output), "content_index": 0}
                yield event("response.content_part.added", **where, part=part)
            parts.append(chunk.text)
            where = {"item_id": text_id, "output_index": len(output), "content_index": 0}
            yield event("response.output_text.delta", **where, delta=chunk.text, logprobs=[])
        for tool_call in chunk.tool_calls:
            call.first()
            for done in close_text():
                yield done
            item_id, index = _id("fc_"), len(output)
            added = _call_item(item_id, tool_call, False)
            yield event("response.output_item.added", output_index=index, item=added)
            where = {"item_id": item_id, "output_index": index}
            yield event(
                "response.function_call_arguments.delta", **where, delta=tool_call.arguments
            )
            yield event(
                "response.function_call_arguments.done", **where, arguments=tool_call.arguments
            )
            item = _call_item(item_id, tool_call, True)
            yield event("response.output_item.done", output_index=index, item=item)
            output.append(item)
    for done in close_text():
        yield done
    finish(state, call, route, [answer])
    final = _response(call, body, opts, output, answer)
    kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
    yield event(kind, response=final)
