"""Many workers and replicas: `fondasi serve --workers 2` twice, on one PostgreSQL store and
one Redis. Every answered request is logged once, a key's rate limit holds in total across
all four processes, and a revoked key is refused by every one of them."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from fondasi.errors import BadInputError
from fondasi.monitor import KeyStore, Store
from fondasi.server.errors import APIError
from fondasi.server.redis_limits import RedisRateLimiter, reachable
from fondasi.settings import Settings

from .conftest import Cli
from .fakes.openai_server import KEY, FakeState, running
from .fakes.serve import free_port
from .serving import Postgres, postgres_cluster, redis_server, serve_process

MODEL = "fake:gpt-test"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """One Redis for the module."""
    with redis_server() as url:
        yield url


def test_the_bucket_in_redis_is_shared_by_every_limiter_pointed_at_it(redis_url: str) -> None:
    async def scenario() -> tuple[list[bool], APIError]:
        first, second = RedisRateLimiter(redis_url), RedisRateLimiter(redis_url)
        await first.start()
        await second.start()
        taken = []
        for limiter in (first, second, first):  # three processes' worth of one key's calls
            await limiter.check("key-shared", 3)
            taken.append(True)
        with pytest.raises(APIError) as refused:
            await second.check("key-shared", 3)
        await first.check("key-other", 3)  # another key has its own bucket
        await first.close()
        await second.close()
        return taken, refused.value

    taken, refused = asyncio.run(scenario())
    assert taken == [True, True, True]
    assert refused.status == 429 and refused.code == "rate_limit_exceeded"
    assert int(refused.headers["Retry-After"]) >= 1


def test_a_redis_that_goes_away_leaves_limits_per_process_not_none() -> None:
    async def scenario() -> APIError:
        with ExitStack() as stack:
            limiter = RedisRateLimiter(stack.enter_context(redis_server()))
            await limiter.start()
            await limiter.check("key-a", 2)  # one taken in Redis
        # Redis is gone: the process's own bucket answers, still limiting.
        await limiter.check("key-a", 2)
        await limiter.check("key-a", 2)
        with pytest.raises(APIError) as refused:
            await limiter.check("key-a", 2)
        await limiter.close()
        return refused.value

    assert asyncio.run(scenario()).status == 429


def test_an_unreachable_redis_is_one_clear_error_without_its_password(cli: Cli) -> None:
    dead = f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0"
    with pytest.raises(BadInputError, match=r"cannot reach Redis at redis://:\*\*\*\*@") as error:
        reachable(dead)
    assert "s3cret-pw" not in str(error.value)
    with pytest.raises(BadInputError, match="bad Redis URL"):
        reachable("http://127.0.0.1:1/")
    result = cli("serve", "--models", MODEL, "--redis", dead, "--port", "0")
    assert result.returncode != 0
    assert "cannot reach Redis" in result.stderr and "s3cret-pw" not in result.stderr


def _home(tmp_path: Path, upstream: str) -> Path:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(
        f'[providers.fake]\nadapter = "openai"\nbase_url = "{upstream}"\napi_key = "{KEY}"\n',
        encoding="utf-8",
    )
    return home


def _children(pid: int) -> list[int]:
    """Server workers whose parent is ``pid`` (from /proc): spawned processes, not, say,
    multiprocessing's resource tracker."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) != pid:
                continue
            if any("spawn_main" in part for part in _cmdline(int(entry))):
                found.append(int(entry))
    return found


def _ask(url: str, secret: str, n: int) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": f"halo {n}"}]}
    headers = {"Authorization": f"Bearer {secret}"}
    # A new connection each time, so the kernel spreads them over the workers.
    return httpx.post(url + "/v1/chat/completions", json=body, headers=headers, timeout=120)


def _spread(urls: list[str], secret: str, count: int) -> list[httpx.Response]:
    """``count`` requests over the replicas, eight at a time (a load balancer's round robin)."""
    targets = list(itertools.islice(itertools.cycle(urls), count))
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(_ask, targets, [secret] * count, range(count)))


def test_two_replicas_of_two_workers_share_one_store_and_one_redis(
    tmp_path: Path, redis_url: str
) -> None:
    upstream = FakeState()
    with postgres_cluster() as pg, running(upstream) as base:
        db = Postgres.create_database(pg, "fleet")
        store = Store.open(Settings.load(home=tmp_path / "home"), db)
        keys = KeyStore(store)
        _, busy = keys.create("beban")
        _, limited = keys.create("terbatas", rate_per_minute=20)
        home = _home(tmp_path, base)
        options = ("--models", MODEL, "--workers", "2", "--db", db, "--redis", redis_url)
        with (
            serve_process(home, tmp_path / "a.log", *options) as first,
            serve_process(home, tmp_path / "b.log", *options) as second,
        ):
            urls = [first, second]
            answered = _spread(urls, busy, 60)
            assert [r.status_code for r in answered] == [200] * 60

            started = time.monotonic()
            tries = _spread(urls, limited, 60)
            minutes = (time.monotonic() - started) / 60
            ok = [r for r in tries if r.status_code == 200]
            refused = [r for r in tries if r.status_code == 429]
            assert len(ok) + len(refused) == 60
            # 20 a minute in total: the burst plus what refilled while the test ran, not
            # 20 per process (which would let up to 80 through).
            assert 20 <= len(ok) <= 20 + int(minutes * 20) + 1
            assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)

            keys.revoke("beban")
            time.sleep(1.5)  # every worker re-reads keys at most a second after its last look
            after = _spread(urls, busy, 16)
            assert [r.status_code for r in after] == [401] * 16
            served = [answered, ok]
            workers = {url: _children(_server_pid(url)) for url in urls}
        # SIGTERM drained both replicas: every answered request is in the store, once.
        ids = [r.headers["fondasi-response-id"] for batch in served for r in batch]
        assert len(set(ids)) == len(ids) == 60 + len(ok)
        logged = store.requests(ids=ids, limit=1000)
        assert sorted(row.id for row in logged) == sorted(ids)
        assert all(row.status == 200 and row.model == MODEL for row in logged)
        assert store.count_requests() == 60 + 60 + 16  # refusals are logged as well
        store.close()
    assert all(len(pids) >= 2 for pids in workers.values()), workers
    assert upstream.calls[MODEL.split(":", 1)[1]] == 60 + len(ok)


def _server_pid(url: str) -> int:
    """The pid of the `fondasi serve` process listening at ``url`` (the supervisor)."""
    port = url.rsplit(":", 1)[1]
    found = [
        pid
        for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
        if _cmdline(pid)[-2:] == ["--port", port]
    ]
    assert len(found) == 1, found
    return found[0]


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")[:-1]
    except OSError:
        return []


def test_a_worker_that_cannot_start_stops_the_server_with_its_error(
    cli: Cli, tmp_path: Path
) -> None:
    result = cli(
        "serve",
        "--models",
        "no-such-model-xyz",
        "--workers",
        "2",
        "--port",
        "0",
        "--db",
        str(tmp_path / "logs.db"),
    )
    assert result.returncode != 0
    assert "failed to start" in result.stderr
    assert "no-such-model-xyz" in result.stderr


def test_a_killed_worker_is_replaced_and_the_port_keeps_answering(tmp_path: Path) -> None:
    upstream = FakeState()
    with running(upstream) as base:
        home = _home(tmp_path, base)
        options = ("--models", MODEL, "--workers", "2", "--db", str(tmp_path / "logs.db"))
        with serve_process(home, tmp_path / "serve.log", *options) as url:
            supervisor = _server_pid(url)
            before = _children(supervisor)
            assert len(before) >= 2
            os.kill(before[0], signal.SIGKILL)
            deadline = time.monotonic() + 120  # a guard against hangs, not a speed check
            while True:
                now = _children(supervisor)
                if before[0] not in now and len(now) >= len(before):
                    break
                assert time.monotonic() < deadline, f"no replacement for {before[0]}: {now}"
                time.sleep(0.2)
            answered = [_ask(url, "no-keys-here", n).status_code for n in range(20)]
    assert answered == [200] * 20
