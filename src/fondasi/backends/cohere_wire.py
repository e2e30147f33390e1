"""Cohere's v2 chat wire: fondasi's messages, tools and structured output as its fields.

Kept apart from ``cohere_api`` (the client, streaming and errors) as ``gemini_wire`` is
from ``gemini_api``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fondasi.backends.hosted_dialect import choice, images_of
from fondasi.types import GenerateOptions, Message, Role

if TYPE_CHECKING:
    import cohere

MAX_IMAGE_BYTES = 20 * 1024 * 1024  # Cohere's documented limit per image


def message_for(message: Message) -> cohere.ChatMessageV2:
    """One v2 chat message: a system turn is a message of its own, not a parameter."""
    import cohere

    match message.role:
        case Role.SYSTEM:
            return cohere.SystemChatMessageV2(content=message.content)
        case Role.USER if message.images:
            parts: list[Any] = [cohere.TextContent(text=message.content)]
            parts.extend(
                cohere.ImageUrlContent(image_url=cohere.ImageUrl(url=image.data_url()))
                for image in images_of(message, MAX_IMAGE_BYTES)
            )
            return cohere.UserChatMessageV2(content=parts)
        case Role.USER:
            return cohere.UserChatMessageV2(content=message.content)
        case Role.ASSISTANT if message.tool_calls:
            calls = [
                cohere.ToolCallV2(
                    id=call.id,
                    type="function",
                    function=cohere.ToolCallV2Function(name=call.name, arguments=call.arguments),
                )
                for call in message.tool_calls
            ]
            return cohere.AssistantChatMessageV2(content=message.content or None, tool_calls=calls)
        case Role.ASSISTANT:
            return cohere.AssistantChatMessageV2(content=message.content)
        case _:
            return cohere.ToolChatMessageV2(
                tool_call_id=message.tool_call_id or "", content=message.content
            )


def dialect(options: GenerateOptions) -> dict[str, Any]:
    """Tools, tool choice and structured output as v2 chat fields (omitted: unset).

    Cohere's tool_choice has no named function: a named choice sends that tool alone,
    with REQUIRED, which holds the model to exactly that call.
    """
    import cohere

    fields: dict[str, Any] = {}
    kind, name = choice(options)
    tools = [t for t in options.tools if kind != "named" or t.name == name]
    if tools:
        fields["tools"] = [
            cohere.ToolV2(
                type="function",
                function=cohere.ToolV2Function(
                    name=t.name, description=t.description or None, parameters=t.parameters
                ),
            )
            for t in tools
        ]
        if all(t.strict for t in tools):
            fields["strict_tools"] = True
        if kind != "auto":
            fields["tool_choice"] = "NONE" if kind == "none" else "REQUIRED"
    if options.json_schema is not None:
        fields["response_format"] = cohere.JsonObjectResponseFormatV2(
            json_schema=options.json_schema.schema_
        )
    elif options.json_mode:
        fields["response_format"] = cohere.JsonObjectResponseFormatV2()
    return fields
