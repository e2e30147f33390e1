"""fondasi serve as a proxy in front of an OpenAI-compatible upstream, next to LiteLLM's proxy.

    make bench-serve        # builds .venv-bench (LiteLLM with its proxy extra), then runs:
    .venv-bench/bin/python bench/serve_proxy.py [--clients 16] [--seconds 8] [--rounds 3]

LiteLLM is not a fondasi dependency: it lives only in ``.venv-bench``. The upstream is the
test fake (``tests/fakes/openai_server.py``, answering at once) in its own process. Three
targets get the same chat request (16 tokens at most, not streamed) from ``--clients``
concurrent clients for ``--seconds``, rounds rotating the order so background load hits all
alike: the upstream itself (the anchor); ``fondasi serve`` with the upstream as a provider
(``fake:gpt-test``, an API key, every request logged to SQLite); and ``litellm --config``
with the upstream as ``openai/gpt-test`` and a master key (no database). "x direct" is a
target's requests/s over the anchor's; "added p50" its median latency minus the anchor's.
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
from pathlib import Path

import httpx
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
BODY = {
    "model": "gpt-test",
    "messages": [{"role": "user", "content": "Bagaimana cuaca di Jakarta hari ini?"}],
    "max_tokens": 16,
}
console = Console()


def wait(url: str, process: subprocess.Popen[bytes], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the process exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not come up in {seconds:g} s")


def start_all(
    folder: Path,
) -> tuple[list[subprocess.Popen[bytes]], dict[str, tuple[str, str, str]]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    up_port, fondasi_port, litellm_port = free_port(), free_port(), free_port()
    upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(up_port)], cwd=ROOT, **quiet)
    base = f"http://127.0.0.1:{up_port}/v1"
    wait(base + "/models", upstream)
    home = folder / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'[providers.fake]\nadapter = "openai"\nbase_url = "{base}"\napi_key = "{KEY}"\n',
        encoding="utf-8",
    )
    # Both proxies check a key, as a team would run them.
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "fondasi",
            "keys",
            "create",
            "bench",
            "--db",
            str(folder / "logs.db"),
        ],
        env={**env, "FONDASI_HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    )
    fondasi_key = made.stdout.strip().splitlines()[-1]
    master = "sk-" + secrets.token_hex(32)
    fondasi = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fondasi",
            "serve",
            "--models",
            "fake:gpt-test",
            "--port",
            str(fondasi_port),
            "--db",
            str(folder / "logs.db"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**env, "FONDASI_HOME": str(home)},
    )
    (folder / "litellm.yaml").write_text(
        "model_list:\n  - model_name: gpt-test\n    litellm_params:\n"
        f"      model: openai/gpt-test\n      api_base: {base}\n      api_key: {KEY}\n"
        "litellm_settings:\n  telemetry: false\n  drop_params: true\n",
        encoding="utf-8",
    )
    litellm = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "litellm"),
            "--config",
            str(folder / "litellm.yaml"),
            "--port",
            str(litellm_port),
            "--host",
            "127.0.0.1",
            "--num_workers",
            "1",
        ],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**env, "LITELLM_MASTER_KEY": master},
    )
    try:
        wait(f"http://127.0.0.1:{fondasi_port}/health", fondasi)
        wait(f"http://127.0.0.1:{litellm_port}/health/liveliness", litellm)
    except BaseException:  # leave nothing running behind a failed start
        for process in (upstream, fondasi, litellm):
            process.kill()
        raise
    targets = {
        "upstream (anchor)": (base, KEY, "gpt-test"),
        # fondasi serves the upstream under its provider-prefixed id.
        "fondasi serve": (f"http://127.0.0.1:{fondasi_port}/v1", fondasi_key, "fake:gpt-test"),
        "LiteLLM proxy": (f"http://127.0.0.1:{litellm_port}/v1", master, "gpt-test"),
    }
    return [upstream, fondasi, litellm], targets


async def hammer(
    base: str, key: str, model: str, clients: int, seconds: float
) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    body = {**BODY, "model": model}

    async def one(http: httpx.AsyncClient, stop: float) -> None:
        nonlocal failures
        while time.monotonic() < stop:
            began = time.perf_counter()
            response = await http.post(base + "/chat/completions", json=body, headers=headers)
            if response.status_code == 200:
                latencies.append(time.perf_counter() - began)
            else:
                failures += 1

    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await http.post(base + "/chat/completions", json=body, headers=headers)  # warm up
        stop = time.monotonic() + seconds
        began = time.perf_counter()
        await asyncio.gather(*(one(http, stop) for _ in range(clients)))
        wall = time.perf_counter() - began
    return int(len(latencies) / wall), latencies, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16, choices=range(1, 129), metavar="1-128")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3, choices=range(1, 11), metavar="1-10")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="fondasi-proxy-"))
    processes, targets = start_all(folder)
    results: dict[str, list[tuple[int, list[float], int]]] = {name: [] for name in targets}
    try:
        names = list(targets)
        for round_ in range(args.rounds):
            order = names[round_ % 3 :] + names[: round_ % 3]
            for name in order:
                base, key, model = targets[name]
                run = hammer(base, key, model, args.clients, args.seconds)
                results[name].append(asyncio.run(run))
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    anchor_rate = statistics.median(r[0] for r in results["upstream (anchor)"])
    anchor_p50 = statistics.median(statistics.median(r[1]) for r in results["upstream (anchor)"])
    table = Table(
        title=f"{args.clients} clients, {args.rounds} rounds of {args.seconds:g} s, chat, "
        "16 tokens, not streamed (medians over rounds)",
        title_justify="left",
    )
    for column in ("target", "req/s", "x direct", "p50", "p95", "added p50", "failed"):
        table.add_column(column, justify="right")
    for name, runs in results.items():
        rate = statistics.median(r[0] for r in runs)
        p50 = statistics.median(statistics.median(r[1]) for r in runs)
        p95 = statistics.median(sorted(r[1])[int(0.95 * len(r[1]))] for r in runs)
        table.add_row(
            name,
            str(rate),
            f"{rate / anchor_rate:.2f}",
            f"{p50 * 1000:.1f} ms",
            f"{p95 * 1000:.1f} ms",
            f"{(p50 - anchor_p50) * 1000:+.1f} ms",
            str(sum(r[2] for r in runs)),
        )
    console.print(table)


if __name__ == "__main__":
    main()
