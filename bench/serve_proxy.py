"""fondasi serve as a proxy in front of an OpenAI-compatible upstream, next to a bare
pass-through and LiteLLM's proxy.

    make bench-serve        # builds .venv-bench (LiteLLM with its proxy extra), then runs:
    .venv-bench/bin/python bench/serve_proxy.py [--clients 1,16] [--seconds 8] [--rounds 3]

LiteLLM is not a fondasi dependency: it lives only in ``.venv-bench``. The upstream is the
test fake (``tests/fakes/openai_server.py``, answering at once) in its own process. Five
targets get the same chat request (16 tokens at most) from each number of concurrent
clients in ``--clients`` for ``--seconds``, rounds rotating the order so background load
hits all alike: the upstream itself (the anchor); a **bare pass-through** (FastAPI and one
pooled ``httpx.AsyncClient`` forwarding the body and streaming the answer back: no keys,
no logging — the practical limit for a Python proxy on this machine); ``fondasi serve``
with the upstream as a provider (``fake:gpt-test``, an API key, retries and breaker on,
every request logged to SQLite), once more with a guard policy masking personal data
in prompts and answers; and ``litellm --config`` with the upstream as
``openai/gpt-test`` and a master key (no database).

Per target and client count: requests/s and its ratio to the bare pass-through's, p50 and
p95 latency, p50 added over the upstream's, and the target's own CPU time per request
(its process tree, from psutil). Then, at one client, the time to the first byte of a
streamed answer. For fondasi: seconds from start to a healthy ``/health``, and resident
memory once ready and after the load (no local model loaded).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.fakes.openai_server import KEY  # noqa: E402
from tests.fakes.serve import free_port  # noqa: E402

UPSTREAM = (
    "import sys, uvicorn\n"
    "from tests.fakes.openai_server import FakeState, build_app\n"
    "uvicorn.run(build_app(FakeState()), host='127.0.0.1', port=int(sys.argv[1]),"
    " log_level='warning', access_log=False)\n"
)
BARE = (
    "import sys, httpx, uvicorn\n"
    "from fastapi import FastAPI, Request\n"
    "from fastapi.responses import StreamingResponse\n"
    "from starlette.background import BackgroundTask\n"
    "upstream, key = sys.argv[2], sys.argv[3]\n"
    "pool = httpx.Limits(max_connections=256, max_keepalive_connections=256)\n"
    "client = httpx.AsyncClient(base_url=upstream, limits=pool, timeout=60)\n"
    "app = FastAPI()\n"
    "@app.get('/health')\n"
    "async def health(): return {'status': 'ok'}\n"
    "@app.post('/v1/chat/completions')\n"
    "async def chat(request: Request):\n"
    "    headers = {'content-type': 'application/json', 'authorization': 'Bearer ' + key}\n"
    "    asked = client.build_request('POST', '/chat/completions', content=await request.body(),"
    " headers=headers)\n"
    "    answer = await client.send(asked, stream=True)\n"
    "    return StreamingResponse(answer.aiter_raw(), status_code=answer.status_code,"
    " media_type=answer.headers.get('content-type'), background=BackgroundTask(answer.aclose))\n"
    "uvicorn.run(app, host='127.0.0.1', port=int(sys.argv[1]), log_level='warning',"
    " access_log=False)\n"
)
BODY = {
    "model": "gpt-test",
    "messages": [{"role": "user", "content": "Bagaimana cuaca di Jakarta hari ini?"}],
    "max_tokens": 16,
}
console = Console(width=140)  # the tables stay whole in logs and pipes


def wait(url: str, process: subprocess.Popen[bytes], seconds: float = 180) -> float:
    """Seconds until ``url`` answers (the process must stay up meanwhile)."""
    began = time.monotonic()
    while time.monotonic() < began + seconds:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the process exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return time.monotonic() - began
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up in {seconds:g} s")


@dataclass
class Target:
    """One server under test: where it answers, with what key and model name."""

    base: str
    key: str
    model: str
    process: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float:
        """User and system CPU of the target's process tree so far."""
        root = psutil.Process(self.process.pid)
        tree = [root, *root.children(recursive=True)]
        total = 0.0
        for process in tree:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def rss_mib(self) -> float:
        """Resident memory of the target's process tree, MiB."""
        root = psutil.Process(self.process.pid)
        tree = [root, *root.children(recursive=True)]
        return float(sum(p.memory_info().rss for p in tree)) / 2**20


def start_all(folder: Path) -> tuple[dict[str, Target], dict[str, float]]:
    """The upstream, the bare pass-through, fondasi and LiteLLM, all answering."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    up_port, bare_port, fondasi_port, litellm_port = (free_port() for _ in range(4))
    python = sys.executable
    upstream = subprocess.Popen([python, "-c", UPSTREAM, str(up_port)], cwd=ROOT, env=env, **quiet)
    base = f"http://127.0.0.1:{up_port}/v1"
    wait(base + "/models", upstream)
    bare = subprocess.Popen([python, "-c", BARE, str(bare_port), base, KEY], env=env, **quiet)
    home = folder / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'[providers.fake]\nadapter = "openai"\nbase_url = "{base}"\napi_key = "{KEY}"\n'
        # The guard a team puts on a hosted model: personal data masked both ways.
        '[guard.policies.pii]\ninput = { pii = "mask" }\noutput = { pii = "mask" }\n',
        encoding="utf-8",
    )
    db = str(folder / "logs.db")
    fondasi_env = {**env, "FONDASI_HOME": str(home)}
    # Both proxies check a key, as a team would run them.
    made = subprocess.run(
        [python, "-m", "fondasi", "keys", "create", "bench", "--db", db],
        env=fondasi_env,
        capture_output=True,
        text=True,
        check=True,
    )
    fondasi_key = made.stdout.strip().splitlines()[-1]
    serve = [python, "-m", "fondasi", "serve", "--models", "fake:gpt-test"]
    fondasi = subprocess.Popen(
        [*serve, "--port", str(fondasi_port), "--db", db], env=fondasi_env, **quiet
    )
    fondasi_ready = wait(f"http://127.0.0.1:{fondasi_port}/health", fondasi)
    guarded_port = free_port()
    guarded = subprocess.Popen(
        [*serve, "--guard", "pii", "--port", str(guarded_port), "--db", db],
        env=fondasi_env,
        **quiet,
    )
    wait(f"http://127.0.0.1:{guarded_port}/health", guarded)
    master = "sk-" + secrets.token_hex(32)
    (folder / "litellm.yaml").write_text(
        "model_list:\n  - model_name: gpt-test\n    litellm_params:\n"
        f"      model: openai/gpt-test\n      api_base: {base}\n      api_key: {KEY}\n"
        "litellm_settings:\n  telemetry: false\n  drop_params: true\n",
        encoding="utf-8",
    )
    litellm_command = [str(Path(python).parent / "litellm"), "--config", "litellm.yaml"]
    litellm_command += ["--port", str(litellm_port), "--host", "127.0.0.1", "--num_workers", "1"]
    litellm = subprocess.Popen(
        litellm_command,
        cwd=folder,
        env={**env, "LITELLM_MASTER_KEY": master},
        **quiet,
    )
    processes = (upstream, bare, fondasi, guarded, litellm)
    try:
        wait(f"http://127.0.0.1:{bare_port}/health", bare)
        wait(f"http://127.0.0.1:{litellm_port}/health/liveliness", litellm)
    except BaseException:  # leave nothing running behind a failed start
        for process in processes:
            process.kill()
        raise
    targets = {
        "upstream (anchor)": Target(base, KEY, "gpt-test", upstream),
        "bare pass-through": Target(f"http://127.0.0.1:{bare_port}/v1", KEY, "gpt-test", bare),
        # fondasi serves the upstream under its provider-prefixed id.
        "fondasi serve": Target(
            f"http://127.0.0.1:{fondasi_port}/v1", fondasi_key, "fake:gpt-test", fondasi
        ),
        "fondasi serve, PII guard": Target(
            f"http://127.0.0.1:{guarded_port}/v1", fondasi_key, "fake:gpt-test", guarded
        ),
        "LiteLLM proxy": Target(f"http://127.0.0.1:{litellm_port}/v1", master, "gpt-test", litellm),
    }
    fondasi_facts = {"ready_s": fondasi_ready, "rss_ready_mib": targets["fondasi serve"].rss_mib()}
    return targets, fondasi_facts


@dataclass
class Run:
    """One target hammered by some clients for some seconds."""

    rate: float
    latencies: list[float]
    failures: int
    cpu_per_request: float


async def hammer(target: Target, clients: int, seconds: float, stream: bool = False) -> Run:
    """``clients`` loops sending the chat request; latency to the whole answer, or to the
    first byte of a streamed one."""
    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {target.key}"}
    body = {**BODY, "model": target.model, "stream": stream}
    url = target.base + "/chat/completions"

    async def one(http: httpx.AsyncClient, stop: float) -> None:
        nonlocal failures
        while time.monotonic() < stop:
            began = time.perf_counter()
            async with http.stream("POST", url, json=body, headers=headers) as response:
                first = None
                async for _ in response.aiter_raw():
                    first = first or time.perf_counter()
                if response.status_code == 200 and first is not None:
                    latencies.append((first if stream else time.perf_counter()) - began)
                else:
                    failures += 1

    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await http.post(url, json={**body, "stream": False}, headers=headers)  # warm up
        cpu = target.cpu_seconds()
        stop = time.monotonic() + seconds
        began = time.perf_counter()
        await asyncio.gather(*(one(http, stop) for _ in range(clients)))
        wall = time.perf_counter() - began
        used = target.cpu_seconds() - cpu
    done = max(len(latencies), 1)
    return Run(len(latencies) / wall, latencies, failures, used / done)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(
    results: dict[tuple[str, int], list[Run]], clients: list[int], title: str, first_byte: bool
) -> Table:
    """One table: each target at each client count, against the anchor and the bare proxy."""
    table = Table(title=title, title_justify="left")
    columns = ["target", "clients", "req/s", "x bare", "p50", "p95", "added p50"]
    columns += ["CPU/req", "x bare CPU", "failed"]
    for column in columns:
        table.add_column(column, justify="left" if column == "target" else "right")
    for count in clients:
        runs = {name: r for (name, c), r in results.items() if c == count}
        rate = {name: median([r.rate for r in rs]) for name, rs in runs.items()}
        p50 = {name: median([median(r.latencies) for r in rs]) for name, rs in runs.items()}
        cpu = {name: median([r.cpu_per_request for r in rs]) for name, rs in runs.items()}
        for name, rs in runs.items():
            p95 = median(
                [sorted(r.latencies)[int(0.95 * len(r.latencies))] for r in rs if r.latencies]
            )
            table.add_row(
                name,
                str(count),
                f"{rate[name]:.0f}",
                f"{rate[name] / rate['bare pass-through']:.2f}",
                f"{p50[name] * 1000:.2f} ms",
                f"{p95 * 1000:.2f} ms",
                f"{(p50[name] - p50['upstream (anchor)']) * 1000:+.2f} ms",
                f"{cpu[name] * 1000:.2f} ms",
                f"{cpu[name] / cpu['bare pass-through']:.2f}",
                str(sum(r.failures for r in rs)),
            )
    if first_byte:
        table.columns[4].header = "p50 first byte"
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,16", help="client counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3, choices=range(1, 11), metavar="1-10")
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    if not all(1 <= c <= 128 for c in clients):
        parser.error("--clients: each count must be 1-128")
    folder = Path(tempfile.mkdtemp(prefix="fondasi-proxy-"))
    console.print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores)")
    targets, facts = start_all(folder)
    results: dict[tuple[str, int], list[Run]] = {}
    streamed: dict[tuple[str, int], list[Run]] = {}
    try:
        names = list(targets)
        for round_ in range(args.rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                for count in clients:
                    run = hammer(targets[name], count, args.seconds)
                    results.setdefault((name, count), []).append(asyncio.run(run))
                run = hammer(targets[name], 1, args.seconds / 2, stream=True)
                streamed.setdefault((name, 1), []).append(asyncio.run(run))
        facts["rss_after_mib"] = targets["fondasi serve"].rss_mib()
    finally:
        for target in targets.values():
            target.process.send_signal(signal.SIGTERM)
        for target in targets.values():
            try:
                target.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                target.process.kill()
    rounds = f"{args.rounds} rounds of {args.seconds:g} s, chat, 16 tokens, medians over rounds"
    console.print(report(results, clients, f"Not streamed; {rounds}", first_byte=False))
    console.print(report(streamed, [1], f"Streamed, time to first byte; {rounds}", True))
    console.print(
        f"fondasi serve: healthy {facts['ready_s']:.2f} s after start; resident memory "
        f"{facts['rss_ready_mib']:.0f} MiB when ready, {facts['rss_after_mib']:.0f} MiB "
        "after the load (no local model loaded)"
    )
    console.print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
