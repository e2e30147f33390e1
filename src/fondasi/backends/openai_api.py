"""OpenAI's API and every server that speaks it (vLLM, Ollama, TGI, LM Studio, Groq ...)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fondasi.backends.base import Capability, ModelSpec, Prompt, Purpose
from fondasi.backends.hosted import (
    Endpoint,
    HostedFactory,
    HostedModel,
    async_twin,
    key_refused,
    nothing_to_embed,
    wants_whole,
)
from fondasi.backends.hosted_dialect import choice, image_ref, turns
from fondasi.backends.openai_wire import PATH, AsyncWire, Events, Reader, as_event, body_for
from fondasi.backends.remote import RETRYABLE_STATUS, ProviderError, parse_retry_after
from fondasi.catalog.schema import Modality
from fondasi.errors import BadInputError
from fondasi.extras import require
from fondasi.prompts.json_mode import INSTRUCTION
from fondasi.types import (
    Chunk,
    GenerateOptions,
    ImageOptions,
    Message,
    Role,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from fondasi.providers import ProviderConfig

SDK = ("openai", "openai", "OpenAI and OpenAI-compatible servers")  # for extras.require


MAX_IMAGE_BYTES = 20 * 1024 * 1024  # OpenAI's documented limit per image


def image_part(image: Any) -> dict[str, Any]:
    """An image as an OpenAI content part: links and data URLs pass, files become data URLs."""
    return {"type": "image_url", "image_url": {"url": image_ref(image, MAX_IMAGE_BYTES).data_url()}}


def message_for(message: Message) -> dict[str, Any]:
    """One message in the chat completions shape: images as parts, calls, tool turns."""
    if message.role is Role.TOOL:
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    content: Any = message.content
    if message.images:
        content = [{"type": "text", "text": message.content}]
        content.extend(image_part(image) for image in message.images)
    out: dict[str, Any] = {"role": message.role.value, "content": content}
    if message.tool_calls:
        out["content"] = content or None  # a turn of calls alone has no text
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    return out


def messages_for(prompt: Prompt, images: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """The chat messages the wire format expects (``images`` join the last user turn)."""
    return [message_for(m) for m in turns(prompt, images)]


def dialect(options: GenerateOptions) -> dict[str, Any]:
    """Tools, tool choice, structured output and log-probabilities, as request fields."""
    fields: dict[str, Any] = {}
    if options.tools:
        fields["tools"] = [tool.openai() for tool in options.tools]
        kind, name = choice(options)
        fields["tool_choice"] = (
            {"type": "function", "function": {"name": name}} if kind == "named" else kind
        )
        if not options.parallel_tool_calls:  # sent only when off: older servers lack it
            fields["parallel_tool_calls"] = False
    if options.json_schema is not None:
        schema = options.json_schema
        spec: dict[str, Any] = {"name": schema.name, "schema": schema.schema_}
        spec["strict"] = schema.strict
        if schema.description:
            spec["description"] = schema.description
        fields["response_format"] = {"type": "json_schema", "json_schema": spec}
    elif options.json_mode:
        fields["response_format"] = {"type": "json_object"}
    if options.logprobs or options.top_logprobs:
        fields["logprobs"] = True
        if options.top_logprobs:
            fields["top_logprobs"] = options.top_logprobs
    return fields


def translate(provider: str, exc: Exception, key_env: Sequence[str]) -> ProviderError:
    """An openai SDK failure as a ProviderError; never echoes the key."""
    import openai

    if isinstance(exc, openai.AuthenticationError):
        return key_refused(provider, key_env)
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError(provider, "the request timed out", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(provider, f"cannot reach the server ({exc})", retryable=True)
    if isinstance(exc, openai.APIStatusError):
        return status_error(
            provider,
            exc.status_code,
            getattr(exc, "body", None),
            exc.response.headers,
            key_env,
            message=_message(exc),
        )
    if isinstance(exc, openai.APIResponseValidationError | ValueError):
        return ProviderError(provider, f"returned a response fondasi cannot read: {exc}")
    return ProviderError(provider, f"{type(exc).__name__}: {exc}")


def status_error(
    provider: str,
    status: int,
    body: Any,
    headers: Any,
    key_env: Sequence[str],
    message: str | None = None,
) -> ProviderError:
    """A refused request (its status, body and headers) as a ProviderError."""
    if status == 401:
        return key_refused(provider, key_env)
    if message is None:
        error = body.get("error", body) if isinstance(body, dict) else body
        if isinstance(error, dict) and error.get("message"):
            message = str(error["message"])
        else:
            message = f"Error code: {status} - {body}"
    return ProviderError(
        provider,
        message,
        status=status,
        retryable=status in RETRYABLE_STATUS,
        retry_after=parse_retry_after(headers),
    )


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(getattr(exc, "message", exc))


def mention_json(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI refuses JSON mode unless a message says "JSON": add the ask when none does."""
    if any("json" in str(m.get("content", "")).lower() for m in messages):
        return messages
    return [{"role": "system", "content": INSTRUCTION}, *messages]


class OpenAIModel(HostedModel):
    """A model behind an OpenAI-wire endpoint."""

    native_json = True  # response_format={"type": "json_object"}
    native_tools = True
    native_schema = True  # response_format={"type": "json_schema", ...}
    native_logprobs = True
    native_images = True

    def stream(self, prompt: Prompt, options: GenerateOptions) -> Iterator[Chunk]:
        """Chat completion over server-sent events; usage from the final event."""
        return self._complete(messages_for(prompt), options)

    def stream_vision(
        self, prompt: Prompt, images: Sequence[Any], options: GenerateOptions
    ) -> Iterator[Chunk]:
        """The same, with images (links, files as data URLs) in the last user message."""
        if not images:
            raise BadInputError("no images given")
        return self._complete(messages_for(prompt, images), options)

    def _complete(
        self, messages: list[dict[str, Any]], options: GenerateOptions
    ) -> Iterator[Chunk]:
        request = self._request(messages, options)
        import httpx

        try:
            response = self.client.post(
                PATH, body=body_for(request), cast_to=httpx.Response, stream=True
            )
        except Exception as exc:
            raise translate(self.provider, exc, self.key_env) from exc
        return self._read(response, request["messages"])

    def _request(self, messages: list[dict[str, Any]], options: GenerateOptions) -> dict[str, Any]:
        """The chat completion's arguments, the same for the sync and async clients."""
        extra = dialect(options)
        if extra.get("response_format") == {"type": "json_object"}:
            messages = mention_json(messages)
        return {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "top_p": options.top_p,
            "stop": options.stop or None,
            "seed": options.seed,
            **extra,
        }

    def _read(self, response: Any, messages: list[dict[str, Any]]) -> Iterator[Chunk]:
        reader = Reader(self)
        try:
            for event in Events().read(response.iter_lines()):
                yield from reader.feed(event)
        except Exception as exc:
            raise reader.broke_off(exc) from exc
        finally:
            response.close()
        yield reader.last(messages)

    async def astream(self, prompt: Prompt, options: GenerateOptions) -> AsyncIterator[Chunk]:
        """Like ``stream``, posted by this event loop's pooled httpx client; inside
        ``whole_answers`` the answer is asked for in one response, not as events."""
        request = self._request(messages_for(prompt), options)
        wire: AsyncWire = self.async_client()
        if wants_whole():
            for chunk in await self._awhole(wire, request):
                yield chunk
            return
        response = await wire.post(body_for(request), self.provider, self.key_env)
        reader = Reader(self)
        try:
            async for event in Events().aread(response.aiter_lines()):
                for chunk in reader.feed(event):
                    yield chunk
        except Exception as exc:
            raise reader.broke_off(exc) from exc
        finally:
            await response.aclose()
        yield reader.last(request["messages"])

    async def _awhole(self, wire: AsyncWire, request: dict[str, Any]) -> list[Chunk]:
        """The answer asked for in one response, as the chunks its stream would fold to."""
        import httpx

        del request["stream_options"]  # only allowed on a stream; usage comes anyway
        body = body_for({**request, "stream": False})
        response = await wire.post(body, self.provider, self.key_env)
        reader = Reader(self)
        try:
            raw = await response.aread()
        except httpx.HTTPError as exc:
            why = str(exc) or type(exc).__name__
            broke = f"the connection broke off before the answer came ({why})"
            raise ProviderError(self.provider, broke, retryable=True) from None
        finally:
            await response.aclose()
        try:
            chunks = list(reader.feed(as_event(raw)))
        except Exception as exc:
            raise reader.broke_off(exc, whole=True) from exc
        return [*chunks, reader.last(request["messages"])]

    def open_async(self) -> AsyncWire:
        """The SDK's async client and a pooled httpx client, on the same endpoint and key."""
        import openai

        sdk = async_twin(self.client, openai.AsyncOpenAI, openai.DefaultAsyncHttpxClient)
        return AsyncWire.twin(self.client, sdk)

    def embed(self, texts: Sequence[str], purpose: Purpose = None) -> npt.NDArray[np.float32]:
        """Embeddings, L2-normalised float32."""
        nothing_to_embed(texts)
        try:
            response = self.client.embeddings.create(model=self.model, input=list(texts))
        except Exception as exc:
            raise translate(self.provider, exc, self.key_env) from exc
        return self._vectors(response, len(texts))

    async def aembed(
        self, texts: Sequence[str], purpose: Purpose = None
    ) -> npt.NDArray[np.float32]:
        """Like ``embed``, on the SDK's async client."""
        nothing_to_embed(texts)
        client = self.async_client().sdk
        try:
            response = await client.embeddings.create(model=self.model, input=list(texts))
        except Exception as exc:
            raise translate(self.provider, exc, self.key_env) from exc
        return self._vectors(response, len(texts))

    def _vectors(self, response: Any, texts: int) -> npt.NDArray[np.float32]:
        rows = sorted(response.data, key=lambda item: item.index)
        return self.normalised_rows([row.embedding for row in rows], texts)


class OpenAIImages(HostedModel):
    """Image generation through ``/v1/images/generations``."""

    def generate_images(
        self, prompt: str, options: ImageOptions, on_step: Callable[[int, int], None] | None = None
    ) -> list[Any]:
        """PIL images decoded from the base64 the API returns (steps do not apply)."""
        import base64

        from fondasi.backends.images import load_image

        size = f"{options.width}x{options.height}" if options.width and options.height else None
        try:
            response = self.client.images.generate(
                model=self.model,
                prompt=prompt,
                n=options.count,
                size=size,
                response_format="b64_json",
            )
        except Exception as exc:
            raise translate(self.provider, exc, self.key_env) from exc
        images = []
        for item in response.data or []:
            if not item.b64_json:
                raise ProviderError(self.provider, "returned an image without data")
            images.append(load_image(base64.b64decode(item.b64_json)))
        if not images:
            raise ProviderError(self.provider, "returned no image")
        if on_step is not None:
            on_step(options.steps, options.steps)
        return images


def capabilities_for(spec: ModelSpec) -> frozenset[Capability]:
    """From the card when there is one; else from the model name."""
    card = spec.card
    if card is not None:
        if Modality.AUDIO in card.inputs:
            return frozenset({Capability.TRANSCRIBE})
        if Modality.IMAGE in card.outputs:
            return frozenset({Capability.IMAGE_GENERATE})
        if Modality.EMBEDDING in card.outputs:
            return frozenset({Capability.EMBED})
        if Modality.IMAGE in card.inputs:
            return frozenset({Capability.GENERATE, Capability.CHAT, Capability.VISION_CHAT})
        return frozenset({Capability.GENERATE, Capability.CHAT})
    name = spec.extra.get("model", "").lower()
    if "embed" in name:
        return frozenset({Capability.EMBED})
    if name.startswith(("gpt-image", "dall-e")):
        return frozenset({Capability.IMAGE_GENERATE})
    if name.startswith("whisper") or "transcribe" in name:
        return frozenset({Capability.TRANSCRIBE})
    # Ad-hoc ids: most chat models served today read images; a text-only server says so
    # in its own error message if it is sent one.
    return frozenset({Capability.GENERATE, Capability.CHAT, Capability.VISION_CHAT})


def client_for(provider: ProviderConfig, name: str) -> Any:
    """An SDK client for a provider's config (cloud fine-tuning jobs use it too)."""
    return _client(Endpoint.of(name, provider))


def _client(endpoint: Endpoint) -> Any:
    """An SDK client with the endpoint's URL, key and timeout; retries are fondasi's."""
    openai = require(*SDK)
    return openai.OpenAI(
        api_key=endpoint.api_key(),
        base_url=endpoint.base_url,
        timeout=endpoint.timeout_s,
        max_retries=0,
    )


class OpenAIFactory(HostedFactory):
    """Builds clients for providers whose adapter is ``openai``."""

    name = "openai-api"
    adapter = "openai"
    sdk = SDK

    def connect(self, spec: ModelSpec, endpoint: Endpoint) -> HostedModel:
        """A chat/embedding, image or speech-to-text model, by the card or the model's name."""
        from fondasi.backends.openai_audio import OpenAITranscriber

        client = _client(endpoint)
        capabilities = capabilities_for(spec)
        kinds: dict[frozenset[Capability], type[HostedModel]] = {
            frozenset({Capability.IMAGE_GENERATE}): OpenAIImages,
            frozenset({Capability.TRANSCRIBE}): OpenAITranscriber,
        }
        kind = kinds.get(capabilities, OpenAIModel)
        return kind(client, spec.extra["model"], endpoint, capabilities, str(client.base_url))
