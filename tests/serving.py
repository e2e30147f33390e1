"""Run a real fondasi server (uvicorn on 127.0.0.1) in tests, over session-loaded models."""

from __future__ import annotations

import functools
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from fondasi.server import ServeConfig, build_state, create_app
from fondasi.server.state import ServerState
from fondasi.settings import Settings

from .fakes.serve import free_port, serve

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Running:
    """A started server: its base URL (``.../v1`` is the OpenAI base) and its state."""

    url: str
    state: ServerState

    @property
    def v1(self) -> str:
        """The base URL an OpenAI client takes."""
        return self.url + "/v1"

    def flush(self) -> None:
        """Wait until every answered request is logged and its record is in the store."""
        deadline = time.monotonic() + 30  # a guard against hangs, not a speed check
        while self.state.metrics.in_flight._value.get() > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.state.writer.flush(timeout=30)


def loader_for(settings: Settings, loaded: dict[str, Any]) -> Callable[[str], Any]:
    """Models already loaded by the session fixtures, anything else loaded for real."""

    def load(ref: str) -> Any:
        if ref in loaded:
            return loaded[ref]
        from fondasi.models.load import load as load_plain

        return load_plain(ref, settings)

    return load


@contextmanager
def running(settings: Settings, loaded: dict[str, Any], **config: Any) -> Iterator[Running]:
    """A real server on a free port until the block ends (then it shuts down cleanly)."""
    state = build_state(ServeConfig(**config), settings, loader_for(settings, loaded))
    with serve(create_app(state)) as url:
        yield Running(url, state)


def pg_ctl() -> Path | None:
    """The newest installed PostgreSQL's pg_ctl (Debian keeps them per version)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[4]))
    return found[-1] if found else None


@dataclass
class Postgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1."""

    port: int
    user: str = "fondasi"

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for one of its databases."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # a test-chosen name, not user input
        return self.url(name)


@contextmanager
def postgres_cluster() -> Iterator[Postgres]:
    """initdb in a temp folder and start it, as the ``postgres`` user when run as root
    (PostgreSQL refuses to run as root); stop it and delete the folder afterwards."""
    binary = pg_ctl()
    if binary is None:
        raise RuntimeError("PostgreSQL is not installed: run `make postgres` (Debian postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="fondasi-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres" if _user_exists("postgres") else "nobody")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        prefix = ["runuser", "-u", owner.pw_name, "--"]
    data, port = folder / "data", free_port()
    run = functools.partial(subprocess.run, check=True, capture_output=True, text=True)
    run([*prefix, str(binary.parent / "initdb"), "-D", str(data), "-A", "trust", "-U", "fondasi"])
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = [*prefix, str(binary), "-D", str(data), "-o", options, "-l", str(folder / "log")]
    run([*start, "-w", "start"])
    try:
        yield Postgres(port)
    finally:
        subprocess.run(
            [*prefix, str(binary), "-D", str(data), "-m", "fast", "-w", "stop"], check=False
        )
        shutil.rmtree(folder, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway Redis (Debian's redis-server) on 127.0.0.1, nothing saved; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("Redis is not installed: run `make redis` (Debian redis-server)")
    folder = Path(tempfile.mkdtemp(prefix="fondasi-redis-"))
    port = free_port()
    options = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [binary, *options, "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(port=port)
        deadline = time.monotonic() + 30  # a guard against hangs, not a speed check
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert process.poll() is None, "redis-server exited"
                assert time.monotonic() < deadline, "redis-server did not come up"
                time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def serve_process(
    home: Path, log: Path, *options: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """`fondasi serve` in its own process on a free port; yields its URL. Its stderr goes to
    ``log``. Stopped with SIGTERM, which drains requests and flushes logs and spans; it must
    then exit 0."""
    port = free_port()
    command = [sys.executable, "-m", "fondasi", "serve", *options, "--port", str(port)]
    with log.open("wb") as stderr:
        server = subprocess.Popen(
            command,
            env={**os.environ, "FONDASI_HOME": str(home), **(env or {})},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300  # a guard against hangs, not a speed check
        while True:
            assert server.poll() is None, log.read_text(encoding="utf-8", errors="replace")
            try:
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.2)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=120) == 0, log.read_text(encoding="utf-8", errors="replace")
