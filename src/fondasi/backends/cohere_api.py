"""Cohere's Command (chat) and Embed models, on the official SDK's v2 client."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fondasi.backends.base import Capability, ModelSpec, Prompt, Purpose
from fondasi.backends.cohere_wire import dialect, message_for
from fondasi.backends.hosted import (
    Endpoint,
    HostedFactory,
    HostedModel,
    key_refused,
    nothing_to_embed,
    trace_headers,
)
from fondasi.backends.hosted_dialect import (
    CallAssembler,
    finish_for,
    limit_calls,
    prompt_text,
    turns,
)
from fondasi.backends.remote import RETRYABLE_STATUS, ProviderError, parse_retry_after
from fondasi.backends.stops import StopScanner
from fondasi.catalog.schema import Modality
from fondasi.errors import BadInputError
from fondasi.types import Chunk, GenerateOptions, Message, Usage

if TYPE_CHECKING:
    import cohere
    import numpy as np
    import numpy.typing as npt
    from cohere import MessageEndV2ChatStreamResponse

MAX_STOPS = 5  # Cohere refuses more; the rest are cut here, as the stream passes
EMBED_BATCH = 96  # texts per /v2/embed call, the API's limit
AUTH_STATUS = frozenset({401, 498})  # 498: Cohere's "invalid token"
INPUT_TYPES = {"query": "search_query", "passage": "search_document"}


def translate(provider: str, exc: Exception, key_env: Sequence[str]) -> ProviderError:
    """A cohere SDK (or httpx) failure as a ProviderError; never echoes the key."""
    import httpx
    from cohere.core.api_error import ApiError
    from cohere.core.parse_error import ParsingError

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, ApiError) and exc.status_code in AUTH_STATUS:
        # Cohere's 401 body quotes part of the key: say where to look, show none of it.
        return key_refused(provider, key_env)
    if isinstance(exc, ApiError) and exc.status_code is not None:
        status = exc.status_code
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        return ProviderError(
            provider,
            _message(exc.body),
            status=status,
            retryable=status in RETRYABLE_STATUS,
            retry_after=parse_retry_after(headers),
        )
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(provider, "the request timed out", retryable=True)
    if isinstance(exc, httpx.ConnectError):
        return ProviderError(provider, f"cannot reach the server ({exc})", retryable=True)
    if isinstance(exc, httpx.TransportError):
        return ProviderError(provider, f"the connection failed ({exc})", retryable=True)
    if isinstance(exc, ParsingError | ValueError | TypeError | AttributeError):
        return ProviderError(provider, f"returned a response fondasi cannot read: {exc!r}")
    return ProviderError(provider, f"{type(exc).__name__}: {exc}")


def _message(body: Any) -> str:
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(body)[:300] or "no message"


class CohereModel(HostedModel):
    """A Command or Embed model on Cohere's API (or a server that speaks it)."""

    client: cohere.ClientV2

    native_json = True  # response_format={"type": "json_object"}
    native_tools = True
    native_schema = True  # response_format={"type": "json_object", "json_schema": ...}
    native_images = True  # image_url content parts (Command A Vision)
    make_async: Callable[[], cohere.AsyncClientV2]  # a new async client (the factory's)

    def stream(self, prompt: Prompt, options: GenerateOptions) -> Iterator[Chunk]:
        """v2 chat over server-sent events; usage and finish reason from message-end."""
        return self._start(turns(prompt), options)

    def stream_vision(
        self, prompt: Prompt, images: Sequence[Any], options: GenerateOptions
    ) -> Iterator[Chunk]:
        """The same, with images (links, files as data URLs) in the last user message."""
        if not images:
            raise BadInputError("no images given")
        return self._start(turns(prompt, images), options)

    def _start(self, said: list[Message], options: GenerateOptions) -> Iterator[Chunk]:
        messages = [message_for(m) for m in said]  # bad input fails here, before any request
        return self._read(messages, prompt_text(said), options)

    def _read(
        self, messages: list[cohere.ChatMessageV2], said: str, o: GenerateOptions
    ) -> Iterator[Chunk]:
        # The SDK's chat_stream is a generator: the request is made, and fails, on first next().
        events = self.client.chat_stream(**self._request(messages, o))
        reader = _Reader(self, said, o)
        try:
            for event in events:
                yield from reader.feed(event)
                if reader.scanner.stopped:
                    break
            reader.check_end()
        except Exception as exc:
            raise reader.failed(exc) from exc
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # a local stop leaves the HTTP stream open otherwise
        yield reader.last()

    def _request(self, messages: list[cohere.ChatMessageV2], o: GenerateOptions) -> dict[str, Any]:
        """The v2 chat call's arguments, the same for the sync and async clients."""
        # Only what is set: the SDK would send None as null, and Cohere's p must be below 1.
        optional: dict[str, Any] = {}
        if o.top_p < 1.0:
            optional["p"] = min(o.top_p, 0.99)
        if o.stop:
            optional["stop_sequences"] = o.stop[:MAX_STOPS]
        if o.seed is not None:
            optional["seed"] = o.seed
        optional.update(dialect(o))
        return {
            "model": self.model,
            "messages": messages,
            "max_tokens": o.max_tokens,
            "temperature": o.temperature,
            **optional,
        }

    async def astream(self, prompt: Prompt, options: GenerateOptions) -> AsyncIterator[Chunk]:
        """Like ``stream``, on the SDK's async client (one per event loop, same endpoint)."""
        said = turns(prompt)
        messages = [message_for(m) for m in said]  # bad input fails here, before any request
        events = self.async_client().chat_stream(**self._request(messages, options))
        reader = _Reader(self, prompt_text(said), options)
        try:
            async for event in events:
                for chunk in reader.feed(event):
                    yield chunk
                if reader.scanner.stopped:
                    break
            reader.check_end()
        except Exception as exc:
            raise reader.failed(exc) from exc
        finally:
            await events.aclose()  # a local stop leaves the HTTP stream open otherwise
        yield reader.last()

    def open_async(self) -> Any:
        """An async v2 client of its own for this event loop (set by the factory)."""
        return self.make_async()

    async def close_async(self, client: Any) -> None:
        """Close the async client's HTTP connections (the SDK closes them on exit)."""
        await client.__aexit__(None, None, None)

    def usage_of(
        self, end: MessageEndV2ChatStreamResponse | None, said: str, parts: list[str]
    ) -> Usage:
        usage = end.delta.usage if end is not None and end.delta else None
        # tokens are what the model saw (template included); billed_units may leave some out
        for counts in (usage.tokens, usage.billed_units) if usage else ():
            if counts and counts.input_tokens is not None and counts.output_tokens is not None:
                return Usage(
                    prompt_tokens=int(counts.input_tokens),
                    completion_tokens=int(counts.output_tokens),
                )
        return self.estimated_usage(said, "".join(parts))

    def embed(self, texts: Sequence[str], purpose: Purpose = None) -> npt.NDArray[np.float32]:
        """Embeddings, L2-normalised float32; the purpose picks Cohere's input_type."""
        rows: list[list[float]] = []
        for request in self._embed_requests(texts, purpose):
            try:
                response = self.client.embed(**request)
            except Exception as exc:
                raise translate(self.provider, exc, self.key_env) from exc
            rows.extend(self._floats(response, len(request["texts"])))
        return self.normalised_rows(rows, len(texts))

    async def aembed(
        self, texts: Sequence[str], purpose: Purpose = None
    ) -> npt.NDArray[np.float32]:
        """Like ``embed``, on the SDK's async client."""
        rows: list[list[float]] = []
        for request in self._embed_requests(texts, purpose):
            try:
                response = await self.async_client().embed(**request)
            except Exception as exc:
                raise translate(self.provider, exc, self.key_env) from exc
            rows.extend(self._floats(response, len(request["texts"])))
        return self.normalised_rows(rows, len(texts))

    def _embed_requests(self, texts: Sequence[str], purpose: Purpose) -> Iterator[dict[str, Any]]:
        """The /v2/embed calls' arguments, one batch of texts each."""
        nothing_to_embed(texts)
        input_type = INPUT_TYPES.get(purpose or "", "classification")
        for start in range(0, len(texts), EMBED_BATCH):
            yield {
                "model": self.model,
                "texts": list(texts[start : start + EMBED_BATCH]),
                "input_type": input_type,
                "embedding_types": ["float"],
            }

    def _floats(self, response: Any, asked: int) -> list[list[float]]:
        try:
            floats = response.embeddings.float_
        except AttributeError as exc:  # a response of another shape
            raise translate(self.provider, exc, self.key_env) from exc
        if not floats or len(floats) != asked:
            got = len(floats) if floats else 0
            raise ProviderError(self.provider, f"returned {got} float vectors for {asked} texts")
        return list(floats)


class _Reader:
    """One streamed answer read event by event (the same for the sync and async clients)."""

    def __init__(self, model: CohereModel, said: str, options: GenerateOptions) -> None:
        self.model = model
        self.said = said
        self.options = options
        self.scanner = StopScanner(options.stop)
        self.parts: list[str] = []
        self.calls = CallAssembler(model.provider)
        self.end: MessageEndV2ChatStreamResponse | None = None

    def feed(self, event: Any) -> Iterator[Chunk]:
        """The chunks one event makes (tool-call fragments are only kept)."""
        from cohere import (
            ContentDeltaV2ChatStreamResponse,
            MessageEndV2ChatStreamResponse,
            ToolCallDeltaV2ChatStreamResponse,
            ToolCallEndV2ChatStreamResponse,
            ToolCallStartV2ChatStreamResponse,
        )

        if isinstance(event, MessageEndV2ChatStreamResponse):
            self.end = event
        elif isinstance(event, ToolCallStartV2ChatStreamResponse) and event.delta:
            started = event.delta.message.tool_calls if event.delta.message else None
            if started is not None:
                function = started.function
                name, arguments = (function.name, function.arguments) if function else ("", "")
                self.calls.start(event.index or 0, started.id, name, arguments or "")
        elif isinstance(event, ToolCallDeltaV2ChatStreamResponse) and event.delta:
            more = event.delta.message.tool_calls if event.delta.message else None
            if more is not None and more.function is not None:
                self.calls.add(event.index or 0, more.function.arguments)
        elif isinstance(event, ToolCallEndV2ChatStreamResponse):
            call = self.calls.finish(event.index or 0)
            if call is not None and (self.options.parallel_tool_calls or len(self.calls.done) == 1):
                self.parts.append("")  # something was shown: a later failure is no retry
                yield Chunk(tool_calls=[call])
        elif isinstance(event, ContentDeltaV2ChatStreamResponse) and event.delta:
            content = event.delta.message.content if event.delta.message else None
            if content and content.text and (shown := self.scanner.feed(content.text)):
                self.parts.append(shown)
                yield Chunk(text=shown)

    def check_end(self) -> None:
        """The stream must end with message-end, and not with a failed generation."""
        end = self.end
        if end is None and not self.scanner.stopped:
            raise ProviderError(self.model.provider, "the stream ended without a message-end event")
        if end is not None and end.delta and end.delta.finish_reason in ("ERROR", "TIMEOUT"):
            why = end.delta.error or end.delta.finish_reason
            raise ProviderError(self.model.provider, f"generation failed: {why}", retryable=True)

    def failed(self, exc: Exception) -> ProviderError:
        """A failure as the error to raise: retryable only before anything was shown."""
        error = translate(self.model.provider, exc, self.model.key_env)
        if not self.parts:  # nothing shown yet: the error stays retryable for Resilient
            return error
        return ProviderError(self.model.provider, f"the stream broke off: {error}")

    def last(self) -> Chunk:
        """The final chunk: what the stop scanner held back, usage and finish."""
        tail = self.scanner.flush()
        self.parts.append(tail)
        end = self.end
        length = (
            end is not None and end.delta is not None and end.delta.finish_reason == "MAX_TOKENS"
        )
        finish = finish_for(limit_calls(self.calls.done, self.options), length)
        usage = self.model.usage_of(end, self.said, self.parts)
        return Chunk(text=tail, usage=usage, finish_reason=finish)


def capabilities_for(spec: ModelSpec) -> frozenset[Capability]:
    """From the card when there is one; else from the model name (embed-...)."""
    card = spec.card
    name = spec.extra.get("model", "").lower()
    if card is not None and Modality.EMBEDDING in card.outputs:
        return frozenset({Capability.EMBED})
    if card is None and name.startswith("embed"):
        return frozenset({Capability.EMBED})
    sees = Modality.IMAGE in card.inputs if card is not None else "vision" in name
    if sees:  # Command A Vision
        return frozenset({Capability.GENERATE, Capability.CHAT, Capability.VISION_CHAT})
    return frozenset({Capability.GENERATE, Capability.CHAT})


class CohereFactory(HostedFactory):
    """Builds clients for providers whose adapter is ``cohere``."""

    name = "cohere-api"
    adapter = "cohere"
    sdk = ("cohere", "cohere", "Cohere Command and Embed")

    def connect(self, spec: ModelSpec, endpoint: Endpoint) -> CohereModel:
        """A v2 client on its own HTTP client, closed with the model; no SDK retries."""
        import cohere
        import httpx  # a dependency of the cohere SDK

        http = httpx.Client(timeout=endpoint.timeout_s)
        client = cohere.ClientV2(
            api_key=endpoint.api_key(),
            base_url=endpoint.base_url,  # None: the SDK's production URL
            timeout=endpoint.timeout_s,
            max_retries=0,
            httpx_client=http,
            log_warning_experimental_features=False,
        )
        model = CohereModel(
            client,
            spec.extra["model"],
            endpoint,
            capabilities_for(spec),
            endpoint.base_url or cohere.ClientEnvironment.PRODUCTION.value,
        )
        # The SDK never closes its HTTP client (openai's does, on deletion): do it for it.
        weakref.finalize(model, http.close)

        def make_async() -> cohere.AsyncClientV2:
            return cohere.AsyncClientV2(
                api_key=endpoint.api_key(),
                base_url=endpoint.base_url,
                timeout=endpoint.timeout_s,
                max_retries=0,
                httpx_client=httpx.AsyncClient(
                    timeout=endpoint.timeout_s, event_hooks={"request": [trace_headers]}
                ),
                log_warning_experimental_features=False,
            )

        model.make_async = make_async  # async clients are made per event loop
        return model
