"""Every model request becomes one log row, written after its last byte is sent.

The ASGI middleware gives each request a ``CallLog`` (in ``request.state.call``) that the
route fills in — model, version, tokens, time to first token, texts, guard events — and
turns it into a ``RequestRecord`` when the response ends, whatever way it ends: an answer,
an error (status and message), or a client that left mid-stream (499). Refusals before a
route runs (401, 413, bad JSON) are logged too, so rows always equal answers. Every
response carries ``x-request-id``: the call's id, or the client's own if it sent a sane one.
With the JSON log format, every request (model route or not) also ends in one access line
(``fondasi.server.access``) that carries that id and the trace's (``server.tracing``).
"""

from __future__ import annotations

import inspect
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fondasi.monitor.records import GuardEventRecord, RequestRecord
from fondasi.server import tracing

if TYPE_CHECKING:
    from fondasi.server.state import ServerState

# Logged routes and the prefix of their response ids.
ROUTES = {
    "/v1/chat/completions": ("chat", "chatcmpl-"),
    "/v1/completions": ("completions", "cmpl-"),
    "/v1/embeddings": ("embeddings", "emb-"),
    "/v1/images/generations": ("images", "img-"),
    "/v1/classify": ("classify", "classify-"),
    "/v1/responses": ("responses", "resp_"),
    "/v1/moderations": ("moderations", "modr-"),
    "/classify": ("classify", "classify-"),
}
VERSION_HEADER = b"fondasi-model-version"
ID_HEADER = b"fondasi-response-id"
REQUEST_ID = b"x-request-id"
access = logging.getLogger("fondasi.server.access")  # JSON log format only
SANE_ID = re.compile(rb"^[A-Za-z0-9._:/+=-]{1,128}$")  # a client's own id, echoed if it is one


def header(scope: Scope, name: bytes) -> str | None:
    """A request header's value (the first, if sent twice), or None."""
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def request_id(scope: Scope, fallback: str) -> bytes:
    """The client's ``x-request-id`` when it is a short plain token, else ``fallback``."""
    for name, value in scope.get("headers", []):
        if name.lower() == REQUEST_ID and SANE_ID.match(value):
            return bytes(value)
    return fallback.encode()


def with_request_id(send: Send, value: bytes) -> Send:
    """``send`` with the ``x-request-id`` header added to the response."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [h for h in message.get("headers", []) if h[0].lower() != REQUEST_ID]
            message = {**message, "headers": [*headers, (REQUEST_ID, value)]}
        await send(message)

    return sending


@dataclass
class CallLog:
    """What a route learns about its request, for the log."""

    id: str
    route: str
    ts: float
    start: float
    model: str = "?"
    version: str | None = None
    decision: str | None = None
    key_id: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    first_token: float | None = None  # perf_counter at the first text
    stream: bool = False
    prompt_text: str | None = None
    response_text: str | None = None
    guard_blocked: bool = False
    guard_events: list[GuardEventRecord] = field(default_factory=list)
    error: str | None = None
    status: int = 0  # the status logged, once the response has ended
    # Run when the response ends however it ends: a stream's lane slot and model thread
    # must be released even if the client leaves before the stream starts.
    cleanups: list[Callable[[], Any]] = field(default_factory=list)

    def first(self) -> None:
        """Mark the first generated text."""
        if self.first_token is None:
            self.first_token = time.perf_counter()


class Recorder:
    """ASGI middleware: a ``CallLog`` per model request, logged when the response ends."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state
        self.access = state.config.log_format == "json"  # an access line per request
        self.texts = state.config.trace_text  # the logged texts as span events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        call = None
        if scope["path"] in ROUTES and scope["method"] == "POST":
            route, prefix = ROUTES[scope["path"]]
            call = CallLog(
                id=prefix + secrets.token_hex(12),
                route=route,
                ts=time.time(),
                start=time.perf_counter(),
            )
            scope.setdefault("state", {})["call"] = call
        marked = request_id(scope, call.id if call else "req-" + secrets.token_hex(12))
        send = with_request_id(send, marked)
        if not self.access:
            await self._answer(scope, receive, send, call)
            return
        started, sent = time.perf_counter(), 0
        token = tracing.begin(marked.decode(), header(scope, b"traceparent"))

        async def noted(message: Message) -> None:
            nonlocal sent
            if message["type"] == "http.response.start":
                sent = int(message["status"])
            await send(message)

        try:
            await self._answer(scope, receive, noted, call)
        finally:
            fields: dict[str, Any] = {
                "method": scope["method"],
                "path": scope["path"][:200],
                "status": call.status if call else sent or 500,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            }
            if call is not None:
                fields["model"] = call.model[:200]  # what the client asked for
            line = f"{fields['method']} {fields['path']} {fields['status']}"
            access.info(line, extra={"fields": fields})
            tracing.end(token)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, call: CallLog | None
    ) -> None:
        if call is None:
            await self.app(scope, receive, send)
            return
        status = 0
        finished = False

        async def watched(message: Message) -> None:
            nonlocal status, finished
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((ID_HEADER, call.id.encode()))
                if call.version:
                    headers.append((VERSION_HEADER, call.version.encode("utf-8", "replace")))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True
                if self.texts:  # while the request's span is open: it ends with this body
                    tracing.add_texts(call.prompt_text, call.response_text)
            await send(message)

        self.state.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, watched)
        except BaseException as exc:
            if not status:
                status, call.error = 500, f"internal error: {type(exc).__name__}: {exc}"[:2000]
            raise
        finally:
            for cleanup in call.cleanups:
                result = cleanup()
                if inspect.isawaitable(result):
                    await result
            if status and not finished:
                call.error = call.error or "the client closed the connection mid-response"
                status = 499 if status < 400 else status
            error = call.error or scope["state"].get("error")
            # In flight until logged: nothing in flight means every answered call is queued
            # for the store (a client can read the last byte before the log row exists).
            try:
                self._log(call, status or 499, error)
            finally:
                self.state.metrics.in_flight.dec()

    def _log(self, call: CallLog, status: int, error: str | None) -> None:
        now = time.perf_counter()
        call.status = status
        record = RequestRecord(
            id=call.id,
            ts=call.ts,
            route=call.route,
            key_id=call.key_id,
            model=call.model,
            version=call.version,
            decision=call.decision,
            status=status,
            error=error if status >= 400 or error else None,
            latency_ms=(now - call.start) * 1000,
            ttft_ms=(call.first_token - call.start) * 1000 if call.first_token else None,
            prompt_tokens=call.prompt_tokens,
            completion_tokens=call.completion_tokens,
            cost_usd=call.cost_usd,
            stream=call.stream,
            prompt_text=call.prompt_text,
            response_text=call.response_text,
            guard_blocked=call.guard_blocked,
            guard_events=call.guard_events,
        )
        if status < 400:
            self.state.remember(call.id, call.key_id)
        self.state.metrics.observe(record)
        self.state.writer.submit(record)
