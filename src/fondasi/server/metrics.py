"""Prometheus metrics at ``/metrics``, in a registry of the app's own (no module globals)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from fondasi.monitor.records import RequestRecord
from fondasi.server.auth import check_key, state_of

router = APIRouter()

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


UNKNOWN = "unknown"  # the model label of every name the server does not serve


class Metrics:
    """Counters and histograms the recorder updates once per request.

    Label values come only from the server's own vocabulary: a model label is a served
    name (or alias) and ``unknown`` otherwise, since the ``model`` field of a refused
    request is whatever the client sent, and every new label value is a new series kept
    for the life of the process. Routes come from the recorder's fixed table, statuses,
    guard filters and actions from fondasi's code.
    """

    def __init__(self, known: Callable[[str], bool] = lambda name: False) -> None:
        self.known = known  # whether a model name is served here (set by the app)
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "fondasi_requests", "Requests answered.", ["route", "model", "status"], registry=r
        )
        self.latency = Histogram(
            "fondasi_request_seconds",
            "Arrival to last byte.",
            ["route", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "fondasi_time_to_first_token_seconds",
            "Arrival to first generated text.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "fondasi_tokens", "Tokens read and written.", ["model", "kind"], registry=r
        )
        self.cost = Counter(
            "fondasi_cost_usd", "API price or hardware time.", ["model"], registry=r
        )
        self.guard = Counter(
            "fondasi_guard_events", "Guard findings.", ["model", "filter", "action"], registry=r
        )
        self.feedback = Counter("fondasi_feedback", "Feedback received.", ["rating"], registry=r)
        self.in_flight = Gauge("fondasi_in_flight", "Requests being answered.", registry=r)

    def watch(self, name: str, doc: str, read: Callable[[], float]) -> None:
        """A gauge read when scraped (queue depths, log backlog)."""
        Gauge(name, doc, registry=self.registry).set_function(read)

    def observe(self, record: RequestRecord) -> None:
        """Count one finished request."""
        model = record.model if self.known(record.model) else UNKNOWN
        self.requests.labels(record.route, model, str(record.status)).inc()
        self.latency.labels(record.route, model).observe(record.latency_ms / 1000)
        if record.ttft_ms is not None:
            self.ttft.labels(model).observe(record.ttft_ms / 1000)
        if record.prompt_tokens:
            self.tokens.labels(model, "prompt").inc(record.prompt_tokens)
        if record.completion_tokens:
            self.tokens.labels(model, "completion").inc(record.completion_tokens)
        if record.cost_usd:
            self.cost.labels(model).inc(record.cost_usd)
        for event in record.guard_events:
            self.guard.labels(model, event.filter, event.action).inc()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text format; needs a key when keys exist, unless ``metrics_public``."""
    state = state_of(request)
    if not state.config.metrics_public:
        await check_key(request)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
