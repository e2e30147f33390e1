"""Google's Gemini API (Google AI Studio keys) through the official google-genai SDK."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fondasi.backends.base import Capability, ModelSpec, Prompt, Purpose
from fondasi.backends.gemini_wire import Signatures, contents_for, dialect, logprobs_of
from fondasi.backends.hosted import (
    Endpoint,
    HostedFactory,
    HostedModel,
    key_refused,
    nothing_to_embed,
    trace_headers,
)
from fondasi.backends.hosted_dialect import finish_for, limit_calls
from fondasi.backends.remote import RETRYABLE_STATUS, ProviderError
from fondasi.backends.stops import StopScanner
from fondasi.catalog.schema import Modality
from fondasi.errors import BadInputError
from fondasi.types import Chunk, GenerateOptions, ToolCall, Usage

if TYPE_CHECKING:
    import httpx
    import numpy as np
    import numpy.typing as npt
    from google import genai
    from google.genai import errors, types

DEFAULT_URL = "https://generativelanguage.googleapis.com/"
BASE_URL_ENV = "GOOGLE_GEMINI_BASE_URL"  # the SDK's own override; read here to name the endpoint
MAX_STOPS = 5  # the API refuses more stop sequences; any others are cut here as text streams
EMBED_BATCH = 100  # batchEmbedContents takes at most 100 texts per request
AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "CONSUMER_SUSPENDED"})
# gemini-embedding-2 takes the task as a prefix of the text, not as taskType (the SDK
# tells the two families apart by this same substring).
PREFIXED_EMBEDDERS = "gemini-embedding-2"
QUERY_PREFIX, PASSAGE_PREFIX = "task: search result | query: ", "title: none | text: "
TASK_TYPES = {"query": "RETRIEVAL_QUERY", "passage": "RETRIEVAL_DOCUMENT"}


def translate(provider: str, exc: Exception, key_env: Sequence[str]) -> ProviderError:
    """A google-genai failure as a ProviderError; never echoes the key."""
    from google.genai import errors

    if isinstance(exc, errors.APIError):
        return _api_error(provider, exc, key_env)
    # The SDK runs on httpx or its fork httpx2: same exception names, different classes.
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "TimeoutException" in names:
        return ProviderError(provider, "the request timed out", retryable=True)
    if "ConnectError" in names:
        return ProviderError(provider, f"cannot reach the server ({exc})", retryable=True)
    if "TransportError" in names:
        return ProviderError(provider, f"the connection failed ({exc})", retryable=True)
    if isinstance(exc, ValueError):  # UnknownApiResponseError, pydantic's ValidationError
        return ProviderError(provider, f"returned a response fondasi cannot read: {exc}")
    return ProviderError(provider, f"{type(exc).__name__}: {exc}")


def _api_error(provider: str, exc: errors.APIError, key_env: Sequence[str]) -> ProviderError:
    body = exc.details if isinstance(exc.details, dict) else {}
    error = body.get("error", body)
    listed = error.get("details") if isinstance(error, dict) else None
    details = [d for d in listed if isinstance(d, dict)] if isinstance(listed, list) else []
    reason = next((str(d["reason"]) for d in details if d.get("reason")), None)
    if exc.code in (401, 403) or reason in AUTH_REASONS:
        # Google's own text is not passed on: some of it (CONSUMER_SUSPENDED) quotes the key.
        return key_refused(
            provider, key_env, why=reason or exc.status or "refused", status=exc.code
        )
    return ProviderError(
        provider,
        exc.message or f"{exc.status or 'error'} with no message",
        status=exc.code,
        retryable=exc.code in RETRYABLE_STATUS,
        retry_after=_retry_after(exc, details),
    )


def _retry_after(exc: errors.APIError, details: list[dict[str, Any]]) -> float | None:
    """Seconds to wait: the Retry-After header, else Google's RetryInfo (``"7s"``)."""
    headers = getattr(exc.response, "headers", None)
    candidates = [headers.get("retry-after") if headers is not None else None]
    candidates += [str(d.get("retryDelay", "")).removesuffix("s") for d in details]
    for text in filter(None, candidates):
        try:
            return float(text)
        except ValueError:  # an HTTP date, which Google does not send
            continue
    return None


class GeminiModel(HostedModel):
    """A Gemini model behind the Gemini API."""

    client: genai.Client

    native_json = True  # response_mime_type="application/json"
    native_tools = True
    native_schema = True  # responseJsonSchema
    native_logprobs = True  # responseLogprobs, logprobs
    native_images = True
    # A new client on the same endpoint (the factory's), with an async HTTP client or none.
    make_client: Callable[[httpx.AsyncClient | None], genai.Client]
    timeout_s: float

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.signatures = Signatures()

    def stream(self, prompt: Prompt, options: GenerateOptions) -> Iterator[Chunk]:
        """Generate over server-sent events; usage from the last event's usageMetadata."""
        system, contents = contents_for(prompt, (), self.signatures)
        return self._generate(system, contents, options)

    def stream_vision(
        self, prompt: Prompt, images: Sequence[Any], options: GenerateOptions
    ) -> Iterator[Chunk]:
        """The same, with images (links by URI, files inline as PNG) in the last user turn."""
        if not images:
            raise BadInputError("no images given")
        system, contents = contents_for(prompt, images, self.signatures)
        return self._generate(system, contents, options)

    def _generate(
        self, system: str | None, contents: list[types.Content], options: GenerateOptions
    ) -> Iterator[Chunk]:
        config, reader = self._prepare(system, contents, options)
        # A generator: the request is made, and fails, on the first next() in _read.
        events = self.client.models.generate_content_stream(
            model=self.model, contents=contents, config=config
        )
        return self._read(events, reader)

    def _prepare(
        self, system: str | None, contents: list[types.Content], options: GenerateOptions
    ) -> tuple[types.GenerateContentConfig, _Reader]:
        """The request's config and the reader of its answer (the same for sync and async)."""
        from google.genai import types

        config = types.GenerateContentConfig(
            system_instruction=system,
            max_output_tokens=options.max_tokens,
            temperature=options.temperature,
            top_p=options.top_p,
            stop_sequences=options.stop[:MAX_STOPS] or None,
            seed=options.seed,
            **dialect(options),
        )
        prompt_text = "\n".join(
            [system or "", *(p.text or "" for c in contents for p in c.parts or [])]
        )
        return config, _Reader(self, prompt_text, options)

    def _read(
        self, events: Iterator[types.GenerateContentResponse], reader: _Reader
    ) -> Iterator[Chunk]:
        try:
            for event in events:
                yield from reader.feed(event)
                if reader.scanner.stopped:
                    break
        except ProviderError:
            raise
        except Exception as exc:
            raise reader.failed(exc) from exc
        if reader.scanner.stopped and hasattr(events, "close"):
            events.close()  # stop reading: the rest is past a stop sequence
        yield from reader.last()

    async def astream(self, prompt: Prompt, options: GenerateOptions) -> AsyncIterator[Chunk]:
        """Like ``stream``, on the SDK's async client (one per event loop, same endpoint)."""
        system, contents = contents_for(prompt, (), self.signatures)
        config, reader = self._prepare(system, contents, options)
        try:
            events = await self.async_client().aio.models.generate_content_stream(
                model=self.model, contents=contents, config=config
            )
            async for event in events:
                for chunk in reader.feed(event):
                    yield chunk
                if reader.scanner.stopped:
                    await events.aclose()  # the rest is past a stop sequence
                    break
        except ProviderError:
            raise
        except Exception as exc:
            raise reader.failed(exc) from exc
        for chunk in reader.last():
            yield chunk

    def open_async(self) -> Any:
        """A client of its own for this event loop, on httpx as the sync one is (the SDK
        would pick aiohttp when installed); its async side is ``.aio``."""
        import httpx

        http = httpx.AsyncClient(timeout=self.timeout_s, event_hooks={"request": [trace_headers]})
        return _LoopClient(self.make_client(http), http)

    async def close_async(self, client: Any) -> None:
        """Close both sides of a per-loop client, and the HTTP client given to it."""
        await client.aio.aclose()
        client.client.close()
        await client.http.aclose()  # the SDK leaves a client it was given open

    def embed(self, texts: Sequence[str], purpose: Purpose = None) -> npt.NDArray[np.float32]:
        """Embeddings in batches of 100, L2-normalised float32."""
        rows: list[list[float]] = []
        for batch, config in self._embed_batches(texts, purpose):
            try:
                response = self.client.models.embed_content(
                    model=self.model, contents=batch, config=config
                )
            except Exception as exc:
                raise translate(self.provider, exc, self.key_env) from exc
            rows.extend(list(e.values or []) for e in response.embeddings or [])
        return self.normalised_rows(rows, len(texts))

    async def aembed(
        self, texts: Sequence[str], purpose: Purpose = None
    ) -> npt.NDArray[np.float32]:
        """Like ``embed``, on the SDK's async client."""
        rows: list[list[float]] = []
        for batch, config in self._embed_batches(texts, purpose):
            client = self.async_client()
            try:
                response = await client.aio.models.embed_content(
                    model=self.model, contents=batch, config=config
                )
            except Exception as exc:
                raise translate(self.provider, exc, self.key_env) from exc
            rows.extend(list(e.values or []) for e in response.embeddings or [])
        return self.normalised_rows(rows, len(texts))

    def _embed_batches(
        self, texts: Sequence[str], purpose: Purpose
    ) -> Iterator[tuple[list[types.Content], types.EmbedContentConfig | None]]:
        """The embed requests for ``texts``: batches of contents, and their config."""
        from google.genai import types

        nothing_to_embed(texts)
        config: types.EmbedContentConfig | None = None
        if PREFIXED_EMBEDDERS in self.model:
            prefix = {"query": QUERY_PREFIX, "passage": PASSAGE_PREFIX}.get(purpose or "", "")
            texts = [prefix + text for text in texts]
        elif purpose is not None:
            config = types.EmbedContentConfig(task_type=TASK_TYPES[purpose])
        for start in range(0, len(texts), EMBED_BATCH):
            # One Content per text: a list of strings would become one multi-part Content,
            # which gemini-embedding-2 embeds as a single vector.
            yield (
                [
                    types.Content(parts=[types.Part(text=t)])
                    for t in texts[start : start + EMBED_BATCH]
                ],
                config,
            )

    def usage_of(
        self,
        metadata: types.GenerateContentResponseUsageMetadata | None,
        prompt: str,
        answer: str,
    ) -> Usage:
        if metadata is None or metadata.prompt_token_count is None:
            return self.estimated_usage(prompt, answer)
        # Thinking tokens are billed as output and count against maxOutputTokens.
        output = (metadata.candidates_token_count or 0) + (metadata.thoughts_token_count or 0)
        return Usage(prompt_tokens=metadata.prompt_token_count, completion_tokens=output)


@dataclass(frozen=True)
class _LoopClient:
    """One event loop's client and the async HTTP client it was given."""

    client: genai.Client
    http: httpx.AsyncClient

    @property
    def aio(self) -> Any:
        """The client's async side."""
        return self.client.aio


class _Reader:
    """One streamed answer read event by event (the same for the sync and async clients)."""

    def __init__(self, model: GeminiModel, prompt: str, options: GenerateOptions) -> None:
        self.model = model
        self.prompt = prompt
        self.options = options
        self.scanner = StopScanner(options.stop[MAX_STOPS:])
        self.parts: list[str] = []
        self.calls: list[ToolCall] = []
        self.length = False
        self.usage: types.GenerateContentResponseUsageMetadata | None = None
        self.started = False

    def feed(self, event: types.GenerateContentResponse) -> Iterator[Chunk]:
        """The chunks one event makes; a blocked prompt is an error."""
        from google.genai import types

        self.started = True
        self.usage = event.usage_metadata or self.usage
        feedback = event.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            raise ProviderError(
                self.model.provider, f"the prompt was blocked ({feedback.block_reason.value})"
            )
        candidate = event.candidates[0] if event.candidates else None
        if candidate is None:
            return
        shown, made = "", []
        for part in (candidate.content.parts if candidate.content else None) or []:
            if part.function_call is not None:
                made.append(self.model.signatures.seen(part))
            elif part.text and not part.thought:  # thought summaries are not the answer
                self.parts.append(part.text)
                shown += self.scanner.feed(part.text)
        made = limit_calls([*self.calls, *made], self.options)[len(self.calls) :]
        self.calls.extend(made)
        logprobs = logprobs_of(candidate.logprobs_result)
        if shown or made or logprobs:
            yield Chunk(text=shown, tool_calls=made, logprobs=logprobs)
        if candidate.finish_reason == types.FinishReason.MAX_TOKENS:
            self.length = True
        if self.scanner.stopped:
            self.length = False

    def failed(self, exc: Exception) -> ProviderError:
        """A failure as the error to raise: retryable only before anything streamed."""
        provider = self.model.provider
        error = translate(provider, exc, self.model.key_env)
        if not self.started:  # nothing streamed yet: the caller may retry
            return error
        detail = str(error).removeprefix(f"{provider}: ")
        return ProviderError(provider, f"the stream broke off: {detail}")

    def last(self) -> Iterator[Chunk]:
        """What the stop scanner held back, then usage and finish."""
        if shown := self.scanner.flush():
            yield Chunk(text=shown)
        usage = self.model.usage_of(self.usage, self.prompt, "".join(self.parts))
        yield Chunk(usage=usage, finish_reason=finish_for(self.calls, self.length))


def capabilities_for(spec: ModelSpec) -> frozenset[Capability]:
    """From the card when there is one; else from the model name."""
    card = spec.card
    if card is not None:
        embeds = Modality.EMBEDDING in card.outputs
    else:
        embeds = "embedding" in spec.extra.get("model", "").lower()
    if embeds:
        return frozenset({Capability.EMBED})
    # Gemini models read images; a card without image input says otherwise.
    if card is not None and Modality.IMAGE not in card.inputs:
        return frozenset({Capability.GENERATE, Capability.CHAT})
    return frozenset({Capability.GENERATE, Capability.CHAT, Capability.VISION_CHAT})


class GeminiFactory(HostedFactory):
    """Builds clients for providers whose adapter is ``gemini``."""

    name = "gemini-api"
    adapter = "gemini"
    sdk = ("google.genai", "gemini", "Google's Gemini API")

    def connect(self, spec: ModelSpec, endpoint: Endpoint) -> GeminiModel:
        """A Gemini API client (never Vertex AI); the SDK does no retries of its own."""
        from google import genai
        from google.genai import types

        url = endpoint.base_url or os.environ.get(BASE_URL_ENV) or None

        def make(http_async: httpx.AsyncClient | None = None) -> genai.Client:
            return genai.Client(
                enterprise=False,  # the Gemini API, whatever GOOGLE_GENAI_USE_VERTEXAI says
                api_key=endpoint.api_key(),
                http_options=types.HttpOptions(
                    base_url=url,
                    timeout=int(endpoint.timeout_s * 1000),  # milliseconds
                    retry_options=types.HttpRetryOptions(attempts=1),
                    httpx_async_client=http_async,
                ),
            )

        model = GeminiModel(
            make(), spec.extra["model"], endpoint, capabilities_for(spec), url or DEFAULT_URL
        )
        model.timeout_s = endpoint.timeout_s
        model.make_client = make  # async clients are made per event loop
        return model
