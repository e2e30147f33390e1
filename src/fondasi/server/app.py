"""The FastAPI app: ``create_app`` builds it, ``run`` serves it with uvicorn.

Start-up opens the store (running its migrations), seeds aliases from the config, loads the
configured models and, with a guard policy, wraps them. Shutdown (SIGINT/SIGTERM): uvicorn
stops accepting, lets in-flight requests finish (``graceful_timeout_s``), then the worker
threads finish and the log writer drains its queue into the store before the process ends.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from uvicorn.config import LOGGING_CONFIG

from fondasi.monitor.store import Store
from fondasi.monitor.versions import Versions
from fondasi.monitor.writer import LogWriter
from fondasi.server import (
    admin,
    errors,
    feedback,
    metrics,
    tracing,
    ui,
    v1_audio,
    v1_chat,
    v1_classify,
    v1_completions,
    v1_embeddings,
    v1_models,
    v1_moderations,
    v1_responses,
)
from fondasi.server.config import ServeConfig
from fondasi.server.limits import Limiter, RateLimiter
from fondasi.server.metrics import Metrics
from fondasi.server.pool import ModelPool
from fondasi.server.recorder import Recorder
from fondasi.server.runner import Runner
from fondasi.server.state import ServerState
from fondasi.settings import Settings
from fondasi.version import __version__

log = logging.getLogger(__name__)

ROUTERS = [
    v1_chat.router,
    v1_completions.router,
    v1_responses.router,
    v1_moderations.router,
    v1_classify.router,
    v1_embeddings.router,
    v1_audio.router,
    v1_models.router,
    feedback.router,
    metrics.router,
    admin.router,
    ui.router,
]


def load_policy(settings: Settings, name: str | None) -> Any:
    """The named guard policy, or None."""
    if name is None:
        return None
    from fondasi.guard import load_policy as load  # type: ignore[attr-defined,unused-ignore]

    policy = load(settings, name)
    if policy is not None:
        # Every filter loads now (its package, its model): a missing extra is an error at
        # start, not a 500 on each request, and the first request does not wait for it.
        policy.scan("fondasi")
    return policy


def build_state(
    config: ServeConfig,
    settings: Settings,
    loader: Callable[[str], Any] | None = None,
) -> ServerState:
    """Open the store, start the writer and worker threads; load nothing yet."""
    store = Store.open(settings, config.db)
    versions = Versions(store)
    existing = versions.all()
    for name, target in config.aliases.items():
        if name not in existing:  # the store wins: CLI and admin changes survive restarts
            versions.point(name, target)
    policy = load_policy(settings, config.guard)
    pool = ModelPool(settings, config, policy, loader)
    state = ServerState(
        config=config,
        settings=settings,
        store=store,
        writer=LogWriter(store),
        pool=pool,
        runner=Runner(config.threads, max(config.embed_batch * 2, 16)),
        metrics=Metrics(),
        limiter=limiter(config),
    )
    state.metrics.known = state.serves  # labels only from served names: bounded series
    state.metrics.watch(
        "fondasi_log_pending", "Log records waiting to be written.", lambda: state.writer.pending
    )
    state.metrics.watch(
        "fondasi_log_dropped", "Log records given up on.", lambda: state.writer.dropped
    )
    return state


def limiter(config: ServeConfig) -> Limiter:
    """Rate limits in Redis when the config names one, else in this process."""
    if config.redis_url is None:
        return RateLimiter()
    from fondasi.server.redis_limits import RedisRateLimiter

    return RedisRateLimiter(config.redis_url)


def create_app(state: ServerState, preload: bool = True) -> FastAPI:
    """The server app over a built state."""

    traces = tracing.configure() if tracing.wanted() else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.limiter.start()
        if preload:
            for ref in state.config.models:
                await state.pool.aget(ref, state.runner.run)
        state.refresh(force=True)
        try:
            yield
        finally:
            await state.limiter.close()
            await state.pool.aclose()
            state.runner.close()
            state.pool.close()
            state.writer.close()
            state.store.close()
            if traces is not None:
                traces.shutdown()  # the last spans go out before the process ends

    app = FastAPI(
        title="fondasi",
        version=__version__,
        description="OpenAI-compatible serving of fondasi models, with logs and feedback.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry=tracing.FASTAPI_TELEMETRY,
    )
    app.state.fondasi = state
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": state.pool.loaded}

    # Added last = outermost: the recorder sees every response, its own 413s too.
    if state.config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=state.config.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["authorization", "content-type", "x-api-key", "x-request-id"],
            expose_headers=["fondasi-model-version", "fondasi-response-id", "x-request-id"],
        )
    app.add_middleware(Recorder, state=state, limit=state.config.max_body_bytes)
    return app


class _Server(uvicorn.Server):
    """uvicorn's server, except that after a graceful stop on SIGINT/SIGTERM the process ends
    normally (exit 0, last words printed) instead of re-raising the signal at itself."""

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def run(
    config: ServeConfig, settings: Settings, on_ready: Callable[[str], None] | None = None
) -> None:
    """Serve until SIGINT/SIGTERM, then finish in-flight requests and flush the log."""
    json_logs = config.log_format == "json"
    options: dict[str, Any] = {
        "log_level": "info" if json_logs else "warning",
        "log_config": tracing.log_config() if json_logs else LOGGING_CONFIG,
        "timeout_graceful_shutdown": int(config.graceful_timeout_s) or None,
        "access_log": False,  # the recorder writes the JSON format's access lines
    }
    if config.workers > 1:
        from fondasi.server.processes import run_workers

        run_workers(config, settings, options, on_ready)
        return
    state = build_state(config, settings)
    try:
        # Load before binding: a bad model id is one clear error, not a failed start-up.
        for ref in config.models:
            state.pool.get(ref)
    except BaseException:
        state.runner.close()
        state.writer.close()
        state.store.close()
        raise
    app = create_app(state, preload=False)
    server = _Server(uvicorn.Config(app, host=config.host, port=config.port, **options))
    if on_ready is not None:
        original = server.startup

        async def startup(sockets: Any = None) -> None:
            await original(sockets)
            bound = [s.getsockname() for srv in server.servers for s in srv.sockets]
            host, port = bound[0][:2] if bound else (config.host, config.port)
            on_ready(f"http://{host}:{port}")

        server.startup = startup  # type: ignore[method-assign]
    server.run()
