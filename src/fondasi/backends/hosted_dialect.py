"""The chat dialect the hosted adapters share: turns, images, tool calls and their ids.

Every adapter reads a prompt the same way (``turns``: a string, messages or OpenAI-style
dicts become ``Message`` objects, with any ``stream_vision`` images put on the last user
turn), splits an image the same way (``ImageRef``: a link, or bytes with a media type),
and assembles streamed tool-call fragments the same way (``CallAssembler``). What is left
in each provider module is only the provider's own shape.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from fondasi.backends.base import Prompt
from fondasi.backends.remote import ProviderError
from fondasi.errors import BadInputError
from fondasi.types import GenerateOptions, Message, Role, ToolCall

ChoiceKind = Literal["auto", "none", "required", "named"]


def call_id() -> str:
    """A made-up call id, for providers that give none (Gemini)."""
    return f"call_{secrets.token_hex(12)}"


def turns(prompt: Prompt, images: Sequence[Any] = ()) -> list[Message]:
    """The prompt as messages; ``images`` (any form ``load_image`` reads) join the last user turn.

    Images given this way may be PIL images, arrays or bytes, not only the strings a
    ``Message`` holds, so they are attached without validation.
    """
    if isinstance(prompt, str):
        messages = [Message(role=Role.USER, content=prompt)]
    else:
        messages = [m if isinstance(m, Message) else Message.model_validate(m) for m in prompt]
    if images:
        users = [i for i, m in enumerate(messages) if m.role is Role.USER]
        if not users:
            raise BadInputError("images need a user message to go with")
        last = messages[users[-1]]
        messages[users[-1]] = last.model_copy(update={"images": (*last.images, *images)})
    return messages


def prompt_text(messages: Sequence[Message]) -> str:
    """The text of a conversation, for counting tokens when the API reports none."""
    parts: list[str] = []
    for m in messages:
        parts.append(m.content)
        parts.extend(f"{call.name} {call.arguments}" for call in m.tool_calls)
    return "\n".join(parts)


def arguments(call: ToolCall) -> dict[str, Any]:
    """A call's arguments as a mapping (providers that take objects), or a clear error."""
    try:
        value = json.loads(call.arguments or "{}")
    except json.JSONDecodeError as exc:
        raise BadInputError(
            f"tool call {call.id} ({call.name}) has arguments that are not JSON: {exc}"
        ) from None
    if not isinstance(value, dict):
        raise BadInputError(f"tool call {call.id} ({call.name}): arguments must be an object")
    return value


def as_json(value: Any) -> str:
    """Arguments a provider sent as an object, as the JSON text a ``ToolCall`` holds."""
    return json.dumps(value if value is not None else {}, ensure_ascii=False)


def result_object(content: str) -> dict[str, Any]:
    """A tool's result as a JSON object (APIs that take objects): itself, or ``{"output": ...}``."""
    try:
        value = json.loads(content)
    except json.JSONDecodeError:
        return {"output": content}
    return value if isinstance(value, dict) else {"output": value}


def tool_names(messages: Sequence[Message]) -> dict[str, str]:
    """The function name of every call made in a conversation, by call id."""
    return {call.id: call.name for m in messages for call in m.tool_calls}


def choice(options: GenerateOptions) -> tuple[ChoiceKind, str | None]:
    """``tool_choice`` read: its kind, and the function's name when one is named."""
    picked = options.tool_choice
    if picked in ("auto", "none", "required"):
        return picked, None  # type: ignore[return-value]  # narrowed by the test above
    return "named", picked


def limit_calls(calls: list[ToolCall], options: GenerateOptions) -> list[ToolCall]:
    """At most one call when parallel calls are off, for APIs without that switch."""
    return calls if options.parallel_tool_calls else calls[:1]


def finish_for(calls: Sequence[ToolCall], length: bool) -> Literal["stop", "length", "tool_calls"]:
    """Why an answer ended: its calls, else the length limit, else a natural stop."""
    if calls:
        return "tool_calls"
    return "length" if length else "stop"


@dataclass
class _Pending:
    id: str
    name: str
    parts: list[str] = field(default_factory=list)


class CallAssembler:
    """Tool calls streamed in fragments (OpenAI, Anthropic, Cohere), assembled by index."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self._open: dict[int, _Pending] = {}
        self.done: list[ToolCall] = []

    def start(self, index: int, id: str | None, name: str | None, arguments: str = "") -> None:
        """A call begins: its id and name (a fresh id if the provider gives none)."""
        self._open[index] = _Pending(id or call_id(), name or "", [arguments] if arguments else [])

    def add(self, index: int, fragment: str | None, *, id: str | None = None) -> None:
        """More of a call's arguments; OpenAI's first fragment also starts the call."""
        pending = self._open.get(index)
        if pending is None:
            self.start(index, id, None)
            pending = self._open[index]
        if fragment:
            pending.parts.append(fragment)

    def name(self, index: int, name: str | None) -> None:
        """The function's name, where it comes in a fragment (OpenAI)."""
        if name and index in self._open:
            self._open[index].name += name

    def finish(self, index: int) -> ToolCall | None:
        """The whole call at ``index``, checked; None if no such call was open."""
        pending = self._open.pop(index, None)
        if pending is None:
            return None
        text = "".join(pending.parts).strip() or "{}"
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProviderError(
                self.provider, f"sent tool call {pending.name!r} with arguments not JSON: {exc}"
            ) from None
        if not pending.name:
            raise ProviderError(self.provider, "sent a tool call without a function name")
        call = ToolCall(id=pending.id, name=pending.name, arguments=text)
        self.done.append(call)
        return call

    def finish_all(self) -> list[ToolCall]:
        """Every call still open, in index order."""
        return [c for i in sorted(self._open) if (c := self.finish(i)) is not None]


@dataclass(frozen=True)
class ImageRef:
    """An image as APIs take it: a web link, or bytes and their media type."""

    url: str | None = None
    media_type: str = "image/png"
    data: bytes = b""

    def base64(self) -> str:
        """The bytes as base64 text."""
        return base64.b64encode(self.data).decode("ascii")

    def data_url(self) -> str:
        """The link, or the bytes as a ``data:`` URL."""
        return self.url or f"data:{self.media_type};base64,{self.base64()}"


def image_ref(image: Any, limit: int) -> ImageRef:
    """Links pass through; data URLs are split; files, bytes and arrays become PNG."""
    from fondasi.backends.images import is_link, png_for_api

    if is_link(image):
        return ImageRef(url=image)
    if isinstance(image, str) and image.startswith("data:"):
        header, _, encoded = image.partition(",")
        media_type = header[5:].split(";")[0]
        if not header.endswith(";base64") or not media_type.startswith("image/"):
            raise BadInputError("a data URL image must be data:image/<type>;base64,<data>")
        try:
            data = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise BadInputError(f"the data URL image is not valid base64: {exc}") from None
        if len(data) > limit:
            raise BadInputError(f"the image is over {limit // 2**20} MB, the API's limit")
        return ImageRef(media_type=media_type, data=data)
    return ImageRef(data=png_for_api(image, limit))


def images_of(message: Message, limit: int) -> Iterator[ImageRef]:
    """A message's images, each read (and refused before sending when bad)."""
    for image in message.images:
        yield image_ref(image, limit)
