"""``fondasi serve --workers N``: N server processes sharing one listening socket.

uvicorn's supervisor binds the socket once, spawns the workers and restarts one that dies.
Each worker is a whole server (its own models, lanes, writer and traces) built from the
config its parent hands down in the environment; what must be the same for all of them
lives outside: keys, aliases, budgets, feedback and the log in the store (PostgreSQL, so
replicas on other machines share it too), per-key rate limits in Redis (``redis_url``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from socket import socket
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from fondasi.errors import FondasiError
from fondasi.server.config import ServeConfig
from fondasi.settings import Settings

CONFIG_ENV = "FONDASI_SERVE_CONFIG"
READY_TIMEOUT_S = 600.0  # loading models in N processes on a small machine takes a while


def worker_app() -> FastAPI:
    """The app one worker serves (uvicorn calls this in each spawned process)."""
    from fondasi.server.app import build_state, create_app

    raw = os.environ.get(CONFIG_ENV)
    if raw is None:
        raise FondasiError(f"{CONFIG_ENV} is not set: start workers with `fondasi serve`")
    config = ServeConfig.model_validate_json(raw)
    return create_app(build_state(config, Settings.load()), preload=True)


class _Supervisor(Multiprocess):
    """uvicorn's supervisor, saying when every worker is ready, or that one failed to start."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket], on_ready: Any) -> None:
        super().__init__(config, sockets)
        self.on_ready: Callable[[], None] | None = on_ready
        self.failed = False

    def init_processes(self) -> None:
        super().init_processes()
        for process in self.processes:
            if process.wait_until_ready(READY_TIMEOUT_S, self.should_exit):
                continue
            if self.should_exit.is_set():
                return
            if process.exitcode is not None and process.exitcode != STARTUP_FAILURE:
                continue  # killed from outside while starting: the supervisor replaces it
            self.failed = True  # its app failed to start (or hung): so would every restart
            self.should_exit.set()
            return
        if self.on_ready is not None:
            self.on_ready()


def run_workers(
    config: ServeConfig,
    settings: Settings,
    options: dict[str, Any],
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve with ``config.workers`` processes until SIGINT/SIGTERM; each drains on the way out."""
    os.environ[CONFIG_ENV] = config.model_dump_json()
    os.environ["FONDASI_HOME"] = str(settings.home)  # the workers load the same settings
    server_config = uvicorn.Config(
        "fondasi.server.processes:worker_app",
        factory=True,
        workers=config.workers,
        host=config.host,
        port=config.port,
        **options,
    )
    sock = server_config.bind_socket()
    host, port = sock.getsockname()[:2]
    ready = None if on_ready is None else (lambda: on_ready(f"http://{host}:{port}"))
    supervisor = _Supervisor(server_config, [sock], ready)
    try:
        supervisor.run()
    finally:
        sock.close()
    if supervisor.failed:
        raise FondasiError("a server worker failed to start; its error is in the log above")


__all__ = ["CONFIG_ENV", "run_workers", "worker_app"]
