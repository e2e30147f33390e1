"""Traces over OTLP when the environment asks for them, and JSON log lines that name them.

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) set, the
server exports spans over OTLP/HTTP in batches to that collector — Jaeger, Grafana Tempo,
Langfuse, Phoenix or an OpenTelemetry Collector take them unchanged. Each request to the
API is a SERVER span (FastAPI's own telemetry, named by method and route template), child
of the caller's W3C ``traceparent`` when one came; each model call under it is a CLIENT
span with the GenAI attributes (``fondasi.models.tracing``), and the hosted API called
receives the trace in its own ``traceparent``. ``OTEL_SERVICE_NAME`` names the service
(``fondasi`` by default); the SDK's other ``OTEL_*`` variables (headers, timeouts,
sampling) apply as documented. Without the variables nothing is set up, and requests pay
nothing for tracing.

With ``trace_text`` (and ``log_text``) the request's span also carries the prompt and the
answer as events, as the log keeps them: redacted by the guard policy, or PII-masked.

With ``log_format = "json"`` every log line of the server is one JSON object carrying the
request id (``x-request-id``) and the trace and span ids, so a log search and a trace view
meet on the same request.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import MutableMapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
UNTRACED = frozenset({"/health", "/metrics"})  # probes and scrapes, every few seconds


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in UNTRACED


# FastAPI makes the SERVER span from the global provider that ``configure`` sets; it must
# not add exporters of its own (FASTAPI_OTEL_AUTO_CONFIGURE would export every span twice),
# and its per-operation spans (dependencies, endpoint) would sit between a request and its
# model calls without saying anything the two do not.
FASTAPI_TELEMETRY: TelemetryConfig = {
    "auto_configure": False,
    "operation_spans": False,
    "exclude": _untraced,
}
TEXT_LIMIT = 16_000  # characters of a prompt or answer put on a span: collectors cap spans
SECRET = re.compile(r"\b((?:fsk|sk)-)[A-Za-z0-9_\-]{6,}|(\bBearer\s+)\S+", re.IGNORECASE)
TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


def wanted() -> bool:
    """Whether the environment names an OTLP endpoint to send traces to."""
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def configure() -> Any:
    """The process's tracer provider, exporting over OTLP/HTTP; set as the global one."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    service = os.environ.get("OTEL_SERVICE_NAME") or "fondasi"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def add_texts(prompt: str | None, answer: str | None) -> None:
    """The request's prompt and answer (already redacted) as events of the current span."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    # The GenAI conventions' content events, by the names trace viewers read them under.
    if prompt is not None:
        span.add_event("gen_ai.content.prompt", {"gen_ai.prompt": prompt[:TEXT_LIMIT]})
    if answer is not None:
        span.add_event("gen_ai.content.completion", {"gen_ai.completion": answer[:TEXT_LIMIT]})


@dataclass(frozen=True)
class RequestIds:
    """What every log line written while a request is answered says about it."""

    request_id: str
    traceparent: str | None  # the caller's, for a trace id when no span records


_request: ContextVar[RequestIds | None] = ContextVar("fondasi_request", default=None)


def begin(request_id: str, traceparent: str | None) -> Token[RequestIds | None]:
    """Mark the log lines of the running request (until ``end``)."""
    return _request.set(RequestIds(request_id, traceparent))


def end(token: Token[RequestIds | None]) -> None:
    """Stop marking log lines with the request ``begin`` named."""
    _request.reset(token)


def ids() -> dict[str, str | None]:
    """The current request id, trace id and span id (None where there is none)."""
    request = _request.get()
    found: dict[str, str | None] = {
        "request_id": request.request_id if request else None,
        "trace_id": None,
        "span_id": None,
    }
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        found["trace_id"] = trace.format_trace_id(context.trace_id)
        found["span_id"] = trace.format_span_id(context.span_id)
    elif request is not None and request.traceparent:
        # Not exporting: the caller's trace id still joins these lines to its own trace.
        match = TRACEPARENT.match(request.traceparent.strip().lower())
        if match and match.group(1) != "0" * 32:
            found["trace_id"] = match.group(1)
    return found


def scrub(text: str) -> str:
    """``text`` without anything shaped like an API key or a bearer token."""
    return SECRET.sub(lambda m: (m.group(1) or m.group(2)) + "****", text)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request and trace ids."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
            **ids(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for name, value in fields.items():
                if name not in entry:  # a client's text (a path, a model name) may hold a key
                    entry[name] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_config() -> dict[str, Any]:
    """logging's dictConfig for ``log_format = "json"``: every line on stderr, as JSON.

    uvicorn's own access log stays off: the recorder writes one access line per request
    when it ends, with its duration and the ids above (``fondasi.server.access``).
    """
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"json": handler},
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "fondasi": {"handlers": ["json"], "level": "INFO", "propagate": False},
        },
        "root": {"handlers": ["json"], "level": "WARNING"},
    }
