"""Unauthenticated clients cannot grow the server's memory through /metrics: a label takes
only the server's own names, so thousands of made-up model names add no series."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fondasi.monitor import KeyStore
from fondasi.settings import Settings

from .serving import Running, running

E5 = "multilingual-e5-small"


@pytest.fixture
def locked(shared_settings: Settings, e5: Any, tmp_path: Path) -> Iterator[Running]:
    with running(shared_settings, {E5: e5}, models=[E5], db=str(tmp_path / "m.db")) as started:
        yield started


def series(server: Running, key: str) -> list[str]:
    """The sample lines of /metrics (one per series), comments left out."""
    text = httpx.get(
        server.url + "/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=30
    ).text
    return [line for line in text.splitlines() if line and not line.startswith("#")]


async def flood(url: str, bodies: list[dict[str, Any]], key: str | None) -> list[int]:
    """Send every body at once-ish (16 at a time); their status codes."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        gate = asyncio.Semaphore(16)

        async def one(body: dict[str, Any]) -> int:
            async with gate:
                response = await http.post(url, json=body, headers=headers)
                return response.status_code

        return list(await asyncio.gather(*(one(body) for body in bodies)))


def test_random_model_names_add_no_series(locked: Running) -> None:
    _, key = KeyStore(locked.state.store).create("ops")
    locked.state.refresh(force=True)  # the server re-reads its keys once a second
    url = locked.v1 + "/embeddings"

    def made_up(count: int) -> list[dict[str, Any]]:
        return [{"model": "m-" + secrets.token_hex(8), "input": "halo"} for _ in range(count)]

    # A few of every kind first, so each series that can exist does.
    assert set(asyncio.run(flood(url, made_up(5), None))) == {401}
    assert set(asyncio.run(flood(url, made_up(5), key))) == {404}
    assert asyncio.run(flood(url, [{"model": E5, "input": "halo"}], key)) == [200]
    locked.flush()
    before = series(locked, key)
    assert any(f'model="{E5}"' in line for line in before)
    assert any('model="unknown",route="embeddings",status="401"' in line for line in before), before

    names = made_up(3000)
    assert set(asyncio.run(flood(url, names, None))) == {401}
    assert set(asyncio.run(flood(url, made_up(300), key))) == {404}
    locked.flush()
    after = series(locked, key)
    labelled = [line.split(" ")[0] for line in after]
    assert len(after) == len(before)  # the same series, only their counts moved
    assert labelled == [line.split(" ")[0] for line in before]
    assert not any(name["model"] in line for name in names for line in labelled)
    # The log row of a refused request still holds the name it asked for, cut to 200.
    long_name = "x" * 500
    assert asyncio.run(flood(url, [{"model": long_name, "input": "halo"}], None)) == [401]
    locked.flush()
    newest = locked.state.store.requests(limit=1)[0]
    assert newest.status == 401 and newest.model == "x" * 200
    assert not any(long_name[:200] in line for line in series(locked, key))
