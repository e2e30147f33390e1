"""Google's Gemini API (Google AI Studio keys) through the official google-genai SDK."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fondasi.backends.base import Capability, ModelSpec, Prompt, Purpose
from fondasi.backends.gemini_wire import Signatures, contents_for, dialect, logprobs_of
from fondasi.backends.hosted import (
    Endpoint,
    HostedFactory,
    HostedModel,
    key_refused,
    nothing_to_embed,
)
from fondasi.backends.hosted_dialect import finish_for, limit_calls
from fondasi.backends.remote import RETRYABLE_STATUS, ProviderError
from fondasi.backends.stops import StopScanner
from fondasi.catalog.schema import Modality
from fondasi.errors import BadInputError
from fondasi.types import Chunk, GenerateOptions, ToolCall, Usage

if TYPE_CHECKING:
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
        # A generator: the request is made, and fails, on the first next() in _read.
        events = self.client.models.generate_content_stream(
            model=self.model, contents=contents, config=config
        )
        prompt_text = "\n".join(
            [system or "", *(p.text or "" for c in contents for p in c.parts or [])]
        )
        scanner = StopScanner(options.stop[MAX_STOPS:])
        return self._read(events, prompt_text, scanner, options)

    def _read(
        self,
        events: Iterator[types.GenerateContentResponse],
        prompt: str,
        scanner: StopScanner,
        options: GenerateOptions,
    ) -> Iterator[Chunk]:
        from google.genai import types

        parts: list[str] = []
        calls: list[ToolCall] = []
        length = False
        usage: types.GenerateContentResponseUsageMetadata | None = None
        started = False
        try:
            for event in events:
                started = True
                usage = event.usage_metadata or usage
                feedback = event.prompt_feedback
                if feedback is not None and feedback.block_reason is not None:
                    raise ProviderError(
                        self.provider, f"the prompt was blocked ({feedback.block_reason.value})"
                    )
                candidate = event.candidates[0] if event.candidates else None
                if candidate is None:
                    continue
                shown, made = "", []
                for part in (candidate.content.parts if candidate.content else None) or []:
                    if part.function_call is not None:
                        made.append(self.signatures.seen(part))
                    elif part.text and not part.thought:  # thought summaries are not the answer
                        parts.append(part.text)
                        shown += scanner.feed(part.text)
                made = limit_calls([*calls, *made], options)[len(calls) :]
                calls.extend(made)
                logprobs = logprobs_of(candidate.logprobs_result)
                if shown or made or logprobs:
                    yield Chunk(text=shown, tool_calls=made, logprobs=logprobs)
                if candidate.finish_reason == types.FinishReason.MAX_TOKENS:
                    length = True
                if scanner.stopped:
                    length = False
                    break
        except ProviderError:
            raise
        except Exception as exc:
            error = translate(self.provider, exc, self.key_env)
            if not started:  # nothing streamed yet: the caller may retry
                raise error from exc
            detail = str(error).removeprefix(f"{self.provider}: ")
            raise ProviderError(self.provider, f"the stream broke off: {detail}") from exc
        if scanner.stopped and hasattr(events, "close"):
            events.close()  # stop reading: the rest is past a stop sequence
        if shown := scanner.flush():
            yield Chunk(text=shown)
        usage_seen = self._usage(usage, prompt, "".join(parts))
        yield Chunk(usage=usage_seen, finish_reason=finish_for(calls, length))

    def embed(self, texts: Sequence[str], purpose: Purpose = None) -> npt.NDArray[np.float32]:
        """Embeddings in batches of 100, L2-normalised float32."""
        from google.genai import types

        nothing_to_embed(texts)
        config: types.EmbedContentConfig | None = None
        if PREFIXED_EMBEDDERS in self.model:
            prefix = {"query": QUERY_PREFIX, "passage": PASSAGE_PREFIX}.get(purpose or "", "")
            texts = [prefix + text for text in texts]
        elif purpose is not None:
            config = types.EmbedContentConfig(task_type=TASK_TYPES[purpose])
        rows: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            # One Content per text: a list of strings would become one multi-part Content,
            # which gemini-embedding-2 embeds as a single vector.
            batch = [
                types.Content(parts=[types.Part(text=t)])
                for t in texts[start : start + EMBED_BATCH]
            ]
            try:
                response = self.client.models.embed_content(
                    model=self.model, contents=batch, config=config
                )
            except Exception as exc:
                raise translate(self.provider, exc, self.key_env) from exc
            rows.extend(list(e.values or []) for e in response.embeddings or [])
        return self.normalised_rows(rows, len(texts))

    def _usage(
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
        client = genai.Client(
            enterprise=False,  # the Gemini API, whatever GOOGLE_GENAI_USE_VERTEXAI says
            api_key=endpoint.api_key(),
            http_options=types.HttpOptions(
                base_url=url,
                timeout=int(endpoint.timeout_s * 1000),  # milliseconds
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )
        return GeminiModel(
            client, spec.extra["model"], endpoint, capabilities_for(spec), url or DEFAULT_URL
        )
