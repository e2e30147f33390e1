"""The Gemini API's shape of a conversation: contents and parts, tools, schemas, logprobs.

Gemini differs from the OpenAI dialect in three ways that matter here: a tool's result is
a ``functionResponse`` part (in a user turn) that names the function rather than the
call, the API may give its calls no ids (fondasi makes them up, and never sends a
made-up id back), and Gemini 3 models sign each call with a ``thoughtSignature`` that
must come back with it in the next request (``Signatures`` keeps them by call id).
"""

from __future__ import annotations

import mimetypes
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fondasi.backends.base import Prompt
from fondasi.backends.hosted_dialect import (
    arguments,
    as_json,
    call_id,
    choice,
    images_of,
    result_object,
    tool_names,
    turns,
)
from fondasi.errors import BadInputError
from fondasi.types import GenerateOptions, Message, Role, TokenLogprob, ToolCall, TopLogprob

if TYPE_CHECKING:
    from google.genai import types

MAX_INLINE_BYTES = 20 * 1024 * 1024  # the API's limit on a request's inline data
REMEMBERED = 4096  # calls whose id origin and signature are kept, per model
MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "named": "ANY"}


class Signatures:
    """What fondasi knows of the calls Gemini made: whose id it is, and its signature."""

    def __init__(self) -> None:
        self._calls: OrderedDict[str, tuple[bool, bytes | None]] = OrderedDict()

    def seen(self, part: types.Part) -> ToolCall:
        """A ``functionCall`` part as a ToolCall, its id (made up if none) remembered."""
        called = part.function_call
        assert called is not None  # the caller checked
        issued = bool(called.id)
        call = ToolCall(
            id=called.id or call_id(), name=called.name or "", arguments=as_json(called.args)
        )
        self._calls[call.id] = (issued, part.thought_signature)
        while len(self._calls) > REMEMBERED:
            self._calls.popitem(last=False)
        return call

    def issued(self, id: str | None) -> str | None:
        """The id as Gemini gave it, or None for ids it never saw (made up, or foreign)."""
        return id if id is not None and self._calls.get(id, (False, None))[0] else None

    def signature(self, id: str) -> bytes | None:
        """The thought signature Gemini gave the call, if any."""
        return self._calls.get(id, (False, None))[1]


def contents_for(
    prompt: Prompt, images: Sequence[Any] = (), signatures: Signatures | None = None
) -> tuple[str | None, list[types.Content]]:
    """The system instruction and the user/model turns the API expects."""
    from google.genai import types

    known = signatures or Signatures()
    messages = turns(prompt, images)
    names = tool_names(messages)
    system = "\n\n".join(m.content for m in messages if m.role is Role.SYSTEM) or None
    contents: list[types.Content] = []
    for message in messages:
        if message.role is Role.SYSTEM:
            continue
        if message.role is Role.TOOL:
            part = _response_part(message, names, known)
            previous = contents[-1] if contents else None
            if previous is not None and any(p.function_response for p in previous.parts or []):
                previous.parts = [*(previous.parts or []), part]  # one turn answers one round
            else:
                contents.append(types.Content(role="user", parts=[part]))
            continue
        role = "model" if message.role is Role.ASSISTANT else "user"
        contents.append(types.Content(role=role, parts=_parts(message, known)))
    if not contents:
        raise BadInputError("Gemini needs a user message, not only a system prompt")
    return system, contents


def _parts(message: Message, known: Signatures) -> list[types.Part]:
    from google.genai import types

    parts: list[types.Part] = []
    if message.content or not (message.images or message.tool_calls):
        parts.append(types.Part(text=message.content))
    for image in images_of(message, MAX_INLINE_BYTES):
        if image.url:
            kind = mimetypes.guess_type(image.url)[0] or "image/jpeg"
            parts.append(types.Part.from_uri(file_uri=image.url, mime_type=kind))
        else:
            parts.append(types.Part.from_bytes(data=image.data, mime_type=image.media_type))
    for call in message.tool_calls:
        called = types.FunctionCall(id=known.issued(call.id), name=call.name, args=arguments(call))
        parts.append(types.Part(function_call=called, thought_signature=known.signature(call.id)))
    return parts


def _response_part(message: Message, names: dict[str, str], known: Signatures) -> types.Part:
    from google.genai import types

    name = message.name or names.get(message.tool_call_id or "")
    if not name:
        raise BadInputError(
            f"Gemini needs the function's name for the tool turn {message.tool_call_id}: "
            "set name on the message, or keep the call that asked for it in the conversation"
        )
    response = types.FunctionResponse(
        id=known.issued(message.tool_call_id), name=name, response=result_object(message.content)
    )
    return types.Part(function_response=response)


def dialect(options: GenerateOptions) -> dict[str, Any]:
    """Tools, tool config, structured output and logprobs as GenerateContentConfig fields."""
    from google.genai import types

    fields: dict[str, Any] = {}
    if options.tools:
        declarations = [
            types.FunctionDeclaration(
                name=tool.name,
                description=tool.description or None,
                parameters_json_schema=tool.parameters,
            )
            for tool in options.tools
        ]
        fields["tools"] = [types.Tool(function_declarations=declarations)]
        kind, name = choice(options)
        config = types.FunctionCallingConfig(
            mode=types.FunctionCallingConfigMode(MODES[kind]),
            allowed_function_names=[name] if name else None,
        )
        fields["tool_config"] = types.ToolConfig(function_calling_config=config)
    if options.json_schema is not None:
        fields["response_mime_type"] = "application/json"
        fields["response_json_schema"] = options.json_schema.schema_
    elif options.json_mode:
        fields["response_mime_type"] = "application/json"
    if options.logprobs or options.top_logprobs:
        fields["response_logprobs"] = True
        if options.top_logprobs:
            fields["logprobs"] = options.top_logprobs
    return fields


def logprobs_of(result: types.LogprobsResult | None) -> list[TokenLogprob] | None:
    """An event's ``logprobsResult``: chosen tokens, each with the top candidates."""
    if result is None or not result.chosen_candidates:
        return None
    tops = result.top_candidates or []
    out: list[TokenLogprob] = []
    for step, chosen in enumerate(result.chosen_candidates):
        others = tops[step].candidates or [] if step < len(tops) else []
        out.append(
            TokenLogprob(
                token=chosen.token or "",
                logprob=chosen.log_probability or 0.0,
                top_logprobs=[
                    TopLogprob(token=c.token or "", logprob=c.log_probability or 0.0)
                    for c in others
                ],
            )
        )
    return out
