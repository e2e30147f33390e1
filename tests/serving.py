"""Run a real fondasi server (uvicorn on 127.0.0.1) in tests, over session-loaded models."""

from __future__ import annotations

import functools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fondasi.server import ServeConfig, build_state, create_app
from fondasi.server.state import ServerState
from fondasi.settings import Settings

from .fakes.serve import free_port, serve


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
