"""Anthropic's Messages API (Claude) on the official SDK, streamed over server-sent events.

The SDK speaks API version 2026-10-21, which rejects ``temperature``, ``top_p`` and
``top_k`` at any value and has no seed: those options are not sent, and Claude samples
as it will. System messages go in the top-level ``system`` parameter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from fondasi.backends.base import Capability, ModelSpec, Prompt
from fondasi.backends.hosted import (
    Endpoint,
    HostedFactory,
    HostedModel,
    async_twin,
    key_refused,
)
from fondasi.backends.hosted_dialect import (
    CallAssembler,
    ImageRef,
    arguments,
    choice,
    finish_for,
    images_of,
)
from fondasi.backends.hosted_dialect import turns as dialect_turns
from fondasi.backends.remote import RETRYABLE_STATUS, ProviderError, parse_retry_after
from fondasi.errors import BadInputError
from fondasi.types import Chunk, GenerateOptions, Message, Role, Usage

if TYPE_CHECKING:
    import anthropic
    from anthropic.types import MessageParam, RawMessageStreamEvent

# An ``error`` event inside a stream comes after the HTTP 200; its type says if a retry helps.
RETRYABLE_TYPES = frozenset({"rate_limit_error", "overloaded_error", "api_error", "timeout_error"})
LENGTH_REASONS = frozenset({"max_tokens", "model_context_window_exceeded"})
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # Anthropic's documented limit per image
CHOICE_TYPES = {"auto": "auto", "none": "none", "required": "any", "named": "tool"}


def image_block(image: ImageRef) -> dict[str, Any]:
    """An image as a content block: a link by URL, bytes inline as base64."""
    if image.url:
        return {"type": "image", "source": {"type": "url", "url": image.url}}
    source = {"type": "base64", "media_type": image.media_type, "data": image.base64()}
    return {"type": "image", "source": source}


def blocks_for(message: Message) -> list[dict[str, Any]]:
    """A message's content blocks: images before text (as Anthropic advises), then calls."""
    if message.role is Role.TOOL:
        result = {"type": "tool_result", "tool_use_id": message.tool_call_id}
        return [result | {"content": message.content}]
    blocks = [image_block(i) for i in images_of(message, MAX_IMAGE_BYTES)]
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    blocks.extend(
        {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments(call)}
        for call in message.tool_calls
    )
    return blocks


def split_system(
    prompt: Prompt, images: Sequence[Any] = ()
) -> tuple[str | None, list[MessageParam]]:
    """The top-level system prompt, and the user and assistant turns.

    Tool results go in a user turn, all results of one round of calls in the same turn
    (with any user text that follows them), as the Messages API requires.
    """
    system: list[str] = []
    turns: list[MessageParam] = []
    for message in dialect_turns(prompt, images):
        if message.role is Role.SYSTEM:
            system.append(message.content)
            continue
        role = "assistant" if message.role is Role.ASSISTANT else "user"
        plain = not message.images and not message.tool_calls and message.role is not Role.TOOL
        content: Any = message.content if plain else blocks_for(message)
        previous = turns[-1] if turns else None
        if previous is not None and role == "user" and _holds_results(previous):
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            merged = [*cast("list[Any]", previous["content"]), *blocks]
            turns[-1] = cast("MessageParam", {"role": "user", "content": merged})
        else:
            turns.append(cast("MessageParam", {"role": role, "content": content}))
    return "\n\n".join(system) or None, turns


def _holds_results(turn: MessageParam) -> bool:
    content = turn["content"]
    return (
        turn["role"] == "user"
        and not isinstance(content, str)
        and any(cast("dict[str, Any]", block).get("type") == "tool_result" for block in content)
    )


def dialect(options: GenerateOptions) -> dict[str, Any]:
    """Tools, tool choice and structured output as Messages API fields (omitted: unset)."""
    import anthropic

    fields: dict[str, Any] = {}
    if options.tools:
        fields["tools"] = [
            {"name": t.name, "input_schema": t.parameters}
            | ({"description": t.description} if t.description else {})
            | ({"strict": True} if t.strict else {})
            for t in options.tools
        ]
        kind, name = choice(options)
        picked: dict[str, Any] = {"type": CHOICE_TYPES[kind]}
        if name is not None:
            picked["name"] = name
        if not options.parallel_tool_calls and kind != "none":
            picked["disable_parallel_tool_use"] = True
        fields["tool_choice"] = picked
    if options.json_schema is not None:
        # The SDK's own helper moves constraints structured outputs lack into descriptions.
        schema = anthropic.transform_schema(options.json_schema.schema_)
        fields["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    return fields


def translate(provider: str, exc: Exception, key_env: Sequence[str]) -> ProviderError:
    """An SDK or mid-stream transport failure as a ProviderError; never echoes the key."""
    import anthropic
    import httpx2

    if isinstance(exc, anthropic.AuthenticationError):
        return key_refused(provider, key_env)
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return ProviderError(provider, "the request timed out", retryable=True)
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderError(provider, f"cannot reach the server ({exc})", retryable=True)
    if isinstance(exc, httpx2.TransportError):  # the SDK wraps these only before the response
        return ProviderError(provider, f"the connection failed ({exc})", retryable=True)
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code if exc.status_code >= 400 else None
        return ProviderError(
            provider,
            exc.api_message or exc.message[:500],
            status=status,
            retryable=status in RETRYABLE_STATUS or exc.type in RETRYABLE_TYPES,
            retry_after=parse_retry_after(exc.response.headers),
        )
    if isinstance(
        exc, anthropic.APIResponseValidationError | ValueError | AttributeError | TypeError
    ):
        return ProviderError(provider, f"returned a response fondasi cannot read: {exc}")
    return ProviderError(provider, f"{type(exc).__name__}: {exc}")


# Every Claude model since Claude 3 reads images.
CAPABILITIES = frozenset({Capability.GENERATE, Capability.CHAT, Capability.VISION_CHAT})


class AnthropicModel(HostedModel):
    """A Claude model behind the Messages API (Claude's tokenizer is not published)."""

    client: anthropic.Anthropic
    native_tools = True
    native_schema = True  # output_config.format, Anthropic's structured outputs
    native_images = True

    def stream(self, prompt: Prompt, options: GenerateOptions) -> Iterator[Chunk]:
        """One message over server-sent events; usage from message_start and message_delta."""
        system, messages = split_system(prompt)
        return self._create(system, messages, options)

    def stream_vision(
        self, prompt: Prompt, images: Sequence[Any], options: GenerateOptions
    ) -> Iterator[Chunk]:
        """The same, with images (links, or files sent inline as PNG) in the last user turn."""
        if not images:
            raise BadInputError("no images given")
        system, messages = split_system(prompt, images)
        return self._create(system, messages, options)

    def _create(
        self, system: str | None, messages: list[MessageParam], options: GenerateOptions
    ) -> Iterator[Chunk]:
        try:
            events = self.client.messages.create(**self._request(system, messages, options))
        except Exception as exc:
            error = self._refused(exc)
            raise error from _cause(exc, error)
        return self._read(events, _Reader(self, system, messages))

    def _request(
        self, system: str | None, messages: list[MessageParam], options: GenerateOptions
    ) -> dict[str, Any]:
        """The Messages API call's arguments, the same for the sync and async clients."""
        from anthropic import omit

        return {
            "model": self.model,
            "max_tokens": options.max_tokens,
            "messages": messages,
            "system": system if system is not None else omit,
            "stop_sequences": options.stop or omit,
            "stream": True,
            **dialect(options),
        }

    def _refused(self, exc: Exception) -> ProviderError:
        return translate(self.provider, exc, self.key_env)

    def _read(
        self, events: anthropic.Stream[RawMessageStreamEvent], reader: _Reader
    ) -> Iterator[Chunk]:
        try:
            with events:
                for event in events:
                    yield from reader.feed(event)
        except Exception as exc:
            raise reader.broke_off(exc) from exc
        yield reader.last()

    async def astream(self, prompt: Prompt, options: GenerateOptions) -> AsyncIterator[Chunk]:
        """Like ``stream``, on the SDK's async client (one per event loop, same endpoint)."""
        system, messages = split_system(prompt)
        try:
            events = await self.async_client().messages.create(
                **self._request(system, messages, options)
            )
        except Exception as exc:
            error = self._refused(exc)
            raise error from _cause(exc, error)
        reader = _Reader(self, system, messages)
        try:
            async with events:
                async for event in events:
                    for chunk in reader.feed(event):
                        yield chunk
        except Exception as exc:
            raise reader.broke_off(exc) from exc
        yield reader.last()

    def open_async(self) -> Any:
        """An AsyncAnthropic client on the same endpoint; the SDK does no retries."""
        import anthropic

        return async_twin(self.client, anthropic.AsyncAnthropic, anthropic.DefaultAsyncHttpxClient)


def _cause(exc: Exception, error: ProviderError) -> Exception | None:
    """What to chain a translated error to: the SDK's own 401 error quotes the body, where
    providers echo part of the key, so that one is left out."""
    return None if error.status == 401 else exc


class _Reader:
    """One streamed message read event by event (the same for the sync and async clients)."""

    def __init__(
        self, model: AnthropicModel, system: str | None, messages: list[MessageParam]
    ) -> None:
        self.model = model
        self.prompt_text = "\n".join([system or ""] + [_text(m["content"]) for m in messages])
        self.parts: list[str] = []
        self.calls = CallAssembler(model.provider)
        self.length = False
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None

    def feed(self, event: RawMessageStreamEvent) -> Iterator[Chunk]:
        """The chunks one event makes (tool input is kept until its block ends)."""
        # Dispatch on the type string: the SDK builds unknown events without checking.
        if event.type == "message_start" and event.message.usage is not None:
            given = event.message.usage
            self.prompt_tokens = (
                given.input_tokens
                + (given.cache_creation_input_tokens or 0)
                + (given.cache_read_input_tokens or 0)
            )
        elif event.type == "content_block_start":
            block = event.content_block
            if block.type == "tool_use":
                self.calls.start(event.index, block.id, block.name)
        elif event.type == "content_block_delta" and event.delta.type == "text_delta":
            if event.delta.text:
                self.parts.append(event.delta.text)
                yield Chunk(text=event.delta.text)
        elif event.type == "content_block_delta":
            if event.delta.type == "input_json_delta":
                self.calls.add(event.index, event.delta.partial_json)
        elif event.type == "content_block_stop":
            if (call := self.calls.finish(event.index)) is not None:
                yield Chunk(tool_calls=[call])
        elif event.type == "message_delta":
            if event.delta.stop_reason in LENGTH_REASONS:
                self.length = True
            if event.usage is not None:  # cumulative counts: the last one wins
                self.completion_tokens = event.usage.output_tokens

    def broke_off(self, exc: Exception) -> ProviderError:
        """A failure mid-stream, as the error to raise."""
        error = translate(self.model.provider, exc, self.model.key_env)
        return ProviderError(
            self.model.provider,
            f"the stream broke off: {error}",
            retryable=error.retryable,  # Resilient retries only before the first chunk
            retry_after=error.retry_after,
        )

    def last(self) -> Chunk:
        """The final chunk: usage (counted here only where the stream said none), finish."""
        answer = "".join(self.parts)
        count = self.model.count_tokens
        usage = Usage(
            prompt_tokens=count(self.prompt_text)
            if self.prompt_tokens is None
            else self.prompt_tokens,
            completion_tokens=count(answer)
            if self.completion_tokens is None
            else self.completion_tokens,
        )
        return Chunk(usage=usage, finish_reason=finish_for(self.calls.done, self.length))


class AnthropicFactory(HostedFactory):
    """Builds clients for providers whose adapter is ``anthropic``."""

    name = "anthropic-api"
    adapter = "anthropic"
    sdk = ("anthropic", "anthropic", "Anthropic Claude")

    def connect(self, spec: ModelSpec, endpoint: Endpoint) -> AnthropicModel:
        """A Messages API client; the SDK does no retries of its own."""
        import anthropic

        client = anthropic.Anthropic(
            api_key=endpoint.api_key(),
            base_url=endpoint.base_url,
            timeout=endpoint.timeout_s,
            max_retries=0,
        )
        return AnthropicModel(
            client, spec.extra["model"], endpoint, CAPABILITIES, str(client.base_url)
        )


def _text(content: Any) -> str:
    """The text of a turn, without its image data (for counting tokens)."""
    if isinstance(content, str):
        return content
    said = (block.get("text") or block.get("content") or block.get("input") for block in content)
    return " ".join(str(part) for part in said if part)
