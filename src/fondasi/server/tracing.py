"""Traces over OTLP when the environment asks for them, as OpenTelemetry's own tools read it.

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) set, the
server exports spans over OTLP/HTTP in batches to that collector — Jaeger, Grafana Tempo,
Langfuse, Phoenix or an OpenTelemetry Collector take them unchanged. Each request to the
API is a SERVER span (FastAPI's own instrumentation, named by method and route), child of
the caller's W3C ``traceparent`` when one came; each model call under it is a CLIENT span
with the GenAI attributes (``fondasi.models.tracing``), and the hosted API called
receives the trace in its own ``traceparent``. ``OTEL_SERVICE_NAME``
names the service (``fondasi`` by default); the SDK's other ``OTEL_*`` variables (headers,
timeouts, sampling) apply as documented. Without the variables nothing is set up, and
requests pay nothing for tracing.
"""

from __future__ import annotations

import os
from typing import Any

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def wanted() -> bool:
    """Whether the environment names an OTLP endpoint to send traces to."""
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def configure() -> Any:
    """The process's tracer provider, exporting over OTLP/HTTP; set as the global one."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    service = os.environ.get("OTEL_SERVICE_NAME") or "fondasi"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider
