"""An OTLP/HTTP trace receiver on 127.0.0.1: what an OpenTelemetry Collector accepts at
``POST /v1/traces`` (protobuf ``ExportTraceServiceRequest``), parsed into plain spans."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from .serve import serve


@dataclass
class Span:
    """One received span, ids as hex as W3C trace context writes them."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int  # 2: SERVER, 3: CLIENT
    attributes: dict[str, Any]
    service: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Received:
    """Every span the receiver has taken."""

    spans: list[Span] = field(default_factory=list)


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


def _spans(body: bytes) -> Iterator[Span]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    for resource in request.resource_spans:
        about = {a.key: _value(a.value) for a in resource.resource.attributes}
        for scope in resource.scope_spans:
            for span in scope.spans:
                yield Span(
                    span.name,
                    span.trace_id.hex(),
                    span.span_id.hex(),
                    span.parent_span_id.hex(),
                    span.kind,
                    {a.key: _value(a.value) for a in span.attributes},
                    str(about.get("service.name")),
                    [(e.name, {a.key: _value(a.value) for a in e.attributes}) for e in span.events],
                )


def build_app(received: Received) -> FastAPI:
    """The receiver's app."""
    app = FastAPI()

    @app.post("/v1/traces")
    async def traces(request: Request) -> Response:
        received.spans.extend(_spans(await request.body()))
        answer = ExportTraceServiceResponse().SerializeToString()
        return Response(answer, media_type="application/x-protobuf")

    return app


@contextmanager
def running(received: Received) -> Iterator[str]:
    """The receiver on a free port; yields its base URL (the OTLP endpoint)."""
    with serve(build_app(received)) as url:
        yield url
