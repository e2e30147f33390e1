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
from fondasi.server.limits import too_large

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
    "/v1/audio/transcriptions": ("transcriptions", "trsc-"),
    "/classify": ("classify", "classify-"),
}
UPLOADS = {"/v1/audio/transcriptions"}  # file uploads: their own, larger body limit
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


class Exchange:
    """One request's way in and out: a single send and a single receive wrapper doing what
    separate middlewares did (request id, response headers, body limit, what was sent), so
    every message crosses one layer instead of three."""

    __slots__ = (
        "_receive",
        "_send",
        "call",
        "finished",
        "limit",
        "marked",
        "refused",
        "scope",
        "seen",
        "status",
        "texts",
    )

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        call: CallLog | None,
        marked: bytes,
        limit: int,
        texts: bool,
    ) -> None:
        self.scope, self._receive, self._send = scope, receive, send
        self.call, self.marked, self.limit, self.texts = call, marked, limit, texts
        self.status = 0  # the status sent, once the response has started
        self.finished = False  # the last body message went out
        self.refused = False  # the body grew past the limit: a 413 was sent, nothing else goes
        self.seen = 0

    async def send(self, message: Message) -> None:
        """The response, with its ids; nothing after a 413 for an oversize body."""
        if self.refused:
            return
        kind = message["type"]
        if kind == "http.response.start":
            self.status = int(message["status"])
            headers = [h for h in message.get("headers", ()) if h[0].lower() != REQUEST_ID]
            headers.append((REQUEST_ID, self.marked))
            call = self.call
            if call is not None:
                headers.append((ID_HEADER, call.id.encode()))
                if call.version:
                    headers.append((VERSION_HEADER, call.version.encode("utf-8", "replace")))
            message = {**message, "headers": headers}
        elif kind == "http.response.body" and not message.get("more_body"):
            self.finished = True
            if self.texts and self.call is not None:  # while the request's span is open
                tracing.add_texts(self.call.prompt_text, self.call.response_text)
        await self._send(message)

    async def receive(self) -> Message:
        """The request body, counted: past the limit the app is told the client left."""
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                await self.refuse()
                return {"type": "http.disconnect"}
        return message

    def declared_too_large(self) -> bool:
        """Whether the request says up front that its body is over the limit."""
        declared = header(self.scope, b"content-length")
        return declared is not None and declared.isdigit() and int(declared) > self.limit

    async def refuse(self) -> None:
        """Answer 413 (logged like any answer); whatever the app answers later is dropped."""
        status, headers, body, error = too_large(self.limit)
        self.scope.setdefault("state", {})["error"] = error
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})
        self.refused = True


class Recorder:
    """ASGI middleware: a ``CallLog`` per model request, logged when the response ends; the
    request id on every response; request bodies over ``limit`` bytes refused with 413."""

    def __init__(self, app: ASGIApp, state: ServerState, limit: int) -> None:
        self.app = app
        self.state = state
        self.limit = limit
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
        limit = self.state.config.max_upload_bytes if scope["path"] in UPLOADS else self.limit
        exchange = Exchange(scope, receive, send, call, marked, limit, self.texts)
        if not self.access:
            await self._answer(exchange)
            return
        started = time.perf_counter()
        token = tracing.begin(marked.decode(), header(scope, b"traceparent"))
        try:
            await self._answer(exchange)
        finally:
            fields: dict[str, Any] = {
                "method": scope["method"],
                "path": scope["path"][:200],
                "status": call.status if call else exchange.status or 500,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            }
            if call is not None:
                fields["model"] = call.model[:200]  # what the client asked for
            line = f"{fields['method']} {fields['path']} {fields['status']}"
            access.info(line, extra={"fields": fields})
            tracing.end(token)

    async def _run(self, exchange: Exchange) -> None:
        if exchange.declared_too_large():
            await exchange.refuse()
            return
        await self.app(exchange.scope, exchange.receive, exchange.send)

    async def _answer(self, exchange: Exchange) -> None:
        call = exchange.call
        if call is None:
            await self._run(exchange)
            return
        self.state.metrics.in_flight.inc()
        try:
            await self._run(exchange)
        except BaseException as exc:
            if not exchange.status:
                exchange.status = 500
                call.error = f"internal error: {type(exc).__name__}: {exc}"[:2000]
            raise
        finally:
            for cleanup in call.cleanups:
                result = cleanup()
                if inspect.isawaitable(result):
                    await result
            status = exchange.status
            if status and not exchange.finished:
                call.error = call.error or "the client closed the connection mid-response"
                status = 499 if status < 400 else status
            error = call.error or exchange.scope["state"].get("error")
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
