"""Anthropic's Messages API (Claude) on the official SDK, streamed over server-sent events.

The SDK speaks API version 2026-10-21, which rejects ``temperature``, ``top_p`` and
``top_k`` at any value and has no seed: those options are not sent, and Claude samples
as it will. System messages go in the top-level ``system`` parameter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from fondasi.backends.base import Capability, ModelSpec, Prompt
from fondasi.backends.hosted import Endpoint, HostedFactory, HostedModel, key_refused
from fondasi.backends.remote import RETRYABLE_STATUS, ProviderError, parse_retry_after
from fondasi.errors import BadInputError
from fondasi.types import Chunk, FinishReason, GenerateOptions, Role, Usage

if TYPE_CHECKING:
    import anthropic
    from anthropic.types import MessageParam, RawMessageStreamEvent

# An ``error`` event inside a stream comes after the HTTP 200; its type says if a retry helps.
RETRYABLE_TYPES = frozenset({"rate_limit_error", "overloaded_error", "api_error", "timeout_error"})
LENGTH_REASONS = frozenset({"max_tokens", "model_context_window_exceeded"})
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # Anthropic's documented limit per image


def split_system(prompt: Prompt) -> tuple[str | None, list[MessageParam]]:
    """The top-level system prompt, and the user and assistant turns."""
    if isinstance(prompt, str):
        return None, [{"role": "user", "content": prompt}]
    system: list[str] = []
    turns: list[MessageParam] = []
    for message in prompt:
        if message.role == Role.SYSTEM:
            system.append(message.content)
        elif message.role == Role.ASSISTANT:
            turns.append({"role": "assistant", "content": message.content})
        else:
            turns.append({"role": "user", "content": message.content})
    return "\n\n".join(system) or None, turns


def with_images(turns: list[MessageParam], images: Sequence[Any]) -> list[MessageParam]:
    """The last user turn carries the images before its text, as Anthropic recommends."""
    import base64

    from fondasi.backends.images import is_link, png_for_api

    blocks: list[dict[str, Any]] = []
    for image in images:
        if is_link(image):
            blocks.append({"type": "image", "source": {"type": "url", "url": image}})
        else:
            data = base64.b64encode(png_for_api(image, MAX_IMAGE_BYTES)).decode("ascii")
            source = {"type": "base64", "media_type": "image/png", "data": data}
            blocks.append({"type": "image", "source": source})
    last = max(i for i, turn in enumerate(turns) if turn["role"] == "user")
    text = turns[last]["content"]
    content = [*blocks, {"type": "text", "text": text}]
    turns[last] = cast("MessageParam", {"role": "user", "content": content})
    return turns


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
        system, messages = split_system(prompt)
        return self._create(system, with_images(messages, images), options)

    def _create(
        self, system: str | None, messages: list[MessageParam], options: GenerateOptions
    ) -> Iterator[Chunk]:
        from anthropic import omit

        try:
            events = self.client.messages.create(
                model=self.model,
                max_tokens=options.max_tokens,
                messages=messages,
                system=system if system is not None else omit,
                stop_sequences=options.stop or omit,
                stream=True,
            )
        except Exception as exc:
            error = translate(self.provider, exc, self.key_env)
            # The SDK's own 401 error quotes the body, where providers echo part of the key.
            raise error from (None if error.status == 401 else exc)
        said = [system or ""] + [_text(m["content"]) for m in messages]
        return self._read(events, "\n".join(said))

    def _read(
        self, events: anthropic.Stream[RawMessageStreamEvent], prompt_text: str
    ) -> Iterator[Chunk]:
        parts: list[str] = []
        finish: FinishReason = "stop"
        prompt_tokens: int | None = None
        completion_tokens: int | None = None
        try:
            with events:
                for event in events:
                    # Dispatch on the type string: the SDK builds unknown events without checking.
                    if event.type == "message_start" and event.message.usage is not None:
                        given = event.message.usage
                        prompt_tokens = (
                            given.input_tokens
                            + (given.cache_creation_input_tokens or 0)
                            + (given.cache_read_input_tokens or 0)
                        )
                    elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                        if event.delta.text:
                            parts.append(event.delta.text)
                            yield Chunk(text=event.delta.text)
                    elif event.type == "message_delta":
                        if event.delta.stop_reason in LENGTH_REASONS:
                            finish = "length"
                        if event.usage is not None:  # cumulative counts: the last one wins
                            completion_tokens = event.usage.output_tokens
        except Exception as exc:
            error = translate(self.provider, exc, self.key_env)
            raise ProviderError(
                self.provider,
                f"the stream broke off: {error}",
                retryable=error.retryable,  # Resilient retries only before the first chunk
                retry_after=error.retry_after,
            ) from exc
        answer = "".join(parts)
        usage = Usage(  # counted here only where the stream said nothing
            prompt_tokens=self.count_tokens(prompt_text)
            if prompt_tokens is None
            else prompt_tokens,
            completion_tokens=(
                self.count_tokens(answer) if completion_tokens is None else completion_tokens
            ),
        )
        yield Chunk(usage=usage, finish_reason=finish)


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
    return " ".join(str(block.get("text", "")) for block in content)
