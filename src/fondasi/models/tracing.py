"""OpenTelemetry spans for model calls, following the GenAI semantic conventions.

A call is a CLIENT span named ``{operation} {model}`` with ``gen_ai.*`` attributes: the
operation, the provider, the requested and answering model, max tokens and temperature,
token usage and finish reasons. The span is current while the request is made, so a hosted
API receives its W3C ``traceparent`` (``backends.hosted.trace_into``).

Tracing costs nothing unless an OpenTelemetry SDK is configured (``fondasi serve`` does
that when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set): without one, the API hands out
non-recording spans and no attribute is computed. Without the ``opentelemetry-api``
package there is nothing to do at all.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from fondasi.types import Chunk, GenerateOptions

T = TypeVar("T")

try:
    from opentelemetry import trace
except ImportError:  # the core install has no OpenTelemetry: no spans
    trace = None  # type: ignore[assignment]
# Made once: until a provider is set this is a proxy, which follows the one set later
# (fondasi serve sets it at start-up), so no call pays for a tracer of its own.
_tracer = trace.get_tracer("fondasi") if trace is not None else None


def start(operation: str, model: str, provider: str, options: GenerateOptions | None) -> Any:
    """A started span for one model call, or None when no tracer records."""
    if trace is None or _tracer is None:
        return None
    span = _tracer.start_span(f"{operation} {model}", kind=trace.SpanKind.CLIENT)
    if not span.is_recording():
        return None
    span.set_attribute("gen_ai.operation.name", operation)
    span.set_attribute("gen_ai.provider.name", provider)
    span.set_attribute("gen_ai.system", provider)  # the older name some receivers read
    span.set_attribute("gen_ai.request.model", model)
    if options is not None:
        span.set_attribute("gen_ai.request.max_tokens", options.max_tokens)
        span.set_attribute("gen_ai.request.temperature", options.temperature)
    return span


def current(span: Any) -> AbstractContextManager[Any]:
    """Make ``span`` current for a block (the request is made inside it)."""
    if span is None or trace is None:
        return nullcontext()
    return trace.use_span(span, end_on_exit=False)


def finish(span: Any, chunk: Chunk | None, error: BaseException | None = None) -> None:
    """End ``span`` with the final chunk's usage and finish reason, or the error."""
    if span is None:
        return
    if chunk is not None:
        if chunk.model:
            span.set_attribute("gen_ai.response.model", chunk.model)
        if chunk.usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", chunk.usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", chunk.usage.completion_tokens)
        if chunk.finish_reason:
            span.set_attribute("gen_ai.response.finish_reasons", [chunk.finish_reason])
    if error is not None:
        span.set_attribute("error.type", type(error).__name__)
        span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)[:200]))
    span.end()


def traced(span: Any, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """Pass ``chunks`` on inside ``span``: current while the request is made (the first
    chunk), ended with the last chunk or the error."""
    if span is None:
        yield from chunks
        return
    last = None
    try:
        with current(span):
            first = next(chunks, None)  # the request is made, and fails, here
        if first is not None:
            last = first
            yield first
        for chunk in chunks:
            last = chunk
            yield chunk
    except BaseException as exc:
        finish(span, None, exc)
        raise
    finish(span, last if last is not None and last.final else None)


async def atraced(span: Any, chunks: AsyncIterator[Chunk]) -> AsyncGenerator[Chunk, None]:
    """``traced`` for an async stream."""
    if span is None:
        async for chunk in chunks:
            yield chunk
        return
    last = None
    try:
        with current(span):
            first = await anext(chunks, None)
        if first is not None:
            last = first
            yield first
        async for chunk in chunks:
            last = chunk
            yield chunk
    except BaseException as exc:
        finish(span, None, exc)
        raise
    finish(span, last if last is not None and last.final else None)


def around(span: Any, work: Callable[[], T]) -> T:
    """Run ``work`` inside ``span`` and end it (a call that is not a stream: embeddings)."""
    if span is None:
        return work()
    try:
        with current(span):
            result = work()
    except BaseException as exc:
        finish(span, None, exc)
        raise
    finish(span, None)
    return result
