"""Reliability of ``fondasi serve``: load, kill -9 and restart, on the bundled models.

    .venv/bin/python bench/serve_load.py [--clients 64] [--seconds 60] [--kill-after 10]

1. Load: ``--clients`` concurrent clients (asyncio + httpx, 127.0.0.1 only) for
   ``--seconds``: 4 in 5 ask ``/v1/embeddings`` (multilingual-e5-small, one text), 1 in 5
   asks ``/v1/chat/completions`` (SmolLM2-135M, 8 tokens). Pass: no status other than 200
   and deliberate 429s, and after a clean shutdown the log holds exactly one row per answer.
   The anchor, measured in the same run: the same embedding model called directly in this
   process, one text per call, back to back — "x direct" is the server's embeddings/s over
   that (micro-batching against HTTP, JSON and logging costs).
2. Crash: the server is started again on the same database and put under the same load;
   a reader polls the rows committed so far; after ``--kill-after`` seconds the server gets
   SIGKILL. Pass: ``PRAGMA integrity_check`` is ok, every row the reader saw committed is
   still there, no row is for a request no client sent, and a restarted server opens the
   database (migrations included) and answers. Answers given in the last flush window
   (50 ms) before the kill may be missing from the log: the count is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

SMOL = "smollm2-135m-instruct"
E5 = "multilingual-e5-small"
WORDS = [
    "saya",
    "suka",
    "belajar",
    "tentang",
    "model",
    "bahasa",
    "dan",
    "embedding",
    "untuk",
    "pencarian",
    "dokumen",
]
console = Console()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(home: Path, db: Path, port: int) -> subprocess.Popen[bytes]:
    """``fondasi serve`` in its own process; returns once /health answers."""
    env = {**os.environ, "FONDASI_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "fondasi", "serve", "--port", str(port), "--db", str(db)]
    process = subprocess.Popen(
        [*command, "--models", f"{SMOL},{E5}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("the server did not start in 300 s")


@dataclass
class Tally:
    """What the clients saw."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    latency: dict[str, list[float]] = field(default_factory=lambda: {"embed": [], "chat": []})
    ids: set[str] = field(default_factory=set)
    failures: Counter[str] = field(default_factory=Counter)  # transport errors

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())


async def client(http: httpx.AsyncClient, base: str, stop: float, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    while time.monotonic() < stop:
        text = " ".join(rng.choices(WORDS, k=rng.randint(3, 12)))
        if rng.random() < 0.8:
            kind, path = "embed", "/v1/embeddings"
            body: dict[str, object] = {"model": E5, "input": text, "encoding_format": "float"}
        else:
            kind, path = "chat", "/v1/chat/completions"
            body = {"model": SMOL, "messages": [{"role": "user", "content": text}], "max_tokens": 8}
        began = time.perf_counter()
        try:
            response = await http.post(base + path, json=body)
        except httpx.HTTPError as exc:
            tally.failures[type(exc).__name__] += 1
            await asyncio.sleep(0.05)
            continue
        tally.statuses[(kind, response.status_code)] += 1
        rid = response.headers.get("fondasi-response-id")
        if rid:
            tally.ids.add(rid)
        if response.status_code == 200:
            tally.latency[kind].append(time.perf_counter() - began)
        elif response.status_code == 429:
            await asyncio.sleep(min(float(response.headers.get("retry-after", "1")), 2.0))


async def load(base: str, clients: int, seconds: float, tally: Tally) -> float:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        began = time.perf_counter()
        stop = time.monotonic() + seconds
        await asyncio.gather(*(client(http, base, stop, tally, n) for n in range(clients)))
        return time.perf_counter() - began


def direct_rate(seconds: float) -> float:
    """The anchor: the embedding model in this process, one text a call."""
    import fondasi

    model = fondasi.model(E5)
    rng = random.Random(0)
    model.embed(["pemanasan"])
    calls, stop = 0, time.monotonic() + seconds
    began = time.perf_counter()
    while time.monotonic() < stop:
        model.embed([" ".join(rng.choices(WORDS, k=rng.randint(3, 12)))])
        calls += 1
    return calls / (time.perf_counter() - began)


def rows(db: Path) -> set[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM requests")}


def pct(values: list[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1000:.0f} ms"


def report_load(tally: Tally, wall: float, anchor: float) -> bool:
    table = Table(title=f"load: {wall:.0f} s", title_justify="left")
    for column in ("route", "200", "429", "other", "req/s (200)", "p50", "p95", "p99"):
        table.add_column(column, justify="right")
    for kind in ("embed", "chat"):
        ok = tally.statuses[(kind, 200)]
        limited = tally.statuses[(kind, 429)]
        other = sum(n for (k, s), n in tally.statuses.items() if k == kind and s not in (200, 429))
        lat = tally.latency[kind]
        table.add_row(
            kind,
            str(ok),
            str(limited),
            str(other),
            f"{ok / wall:.1f}",
            pct(lat, 50),
            pct(lat, 95),
            pct(lat, 99),
        )
    console.print(table)
    rate = tally.statuses[("embed", 200)] / wall
    console.print(
        f"direct e5 (anchor, one text a call, in-process): {anchor:.1f} embeddings/s; "
        f"server: {rate:.1f}/s = {rate / anchor:.2f}x direct"
    )
    bad = {key: n for key, n in tally.statuses.items() if key[1] not in (200, 429)}
    if bad or tally.failures:
        console.print(f"[red]unexpected answers: {bad} transport failures: {dict(tally.failures)}")
    return not bad and not tally.failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64, choices=range(1, 257), metavar="1-256")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--kill-after", type=float, default=10.0)
    parser.add_argument("--anchor-seconds", type=float, default=10.0)
    args = parser.parse_args()
    if not 1 <= args.seconds <= 600 or not 1 <= args.kill_after <= 120:
        parser.error("--seconds must be 1..600 and --kill-after 1..120")

    home = Path(tempfile.mkdtemp(prefix="fondasi-load-"))
    db, port = home / "logs.db", free_port()
    base = f"http://127.0.0.1:{port}"
    anchor = direct_rate(args.anchor_seconds)

    console.rule(f"1. {args.clients} clients for {args.seconds:g} s")
    server = start(home, db, port)
    tally = Tally()
    wall = asyncio.run(load(base, args.clients, args.seconds, tally))
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=120)
    logged = rows(db)
    load_ok = report_load(tally, wall, anchor)
    same = logged == tally.ids and len(logged) == tally.answered
    console.print(
        f"answers {tally.answered}, log rows {len(logged)}, ids match: {logged == tally.ids} "
        f"-> {'PASS' if same and load_ok else 'FAIL'}"
    )

    console.rule(f"2. kill -9 after {args.kill_after:g} s under load")
    before = len(logged)
    server = start(home, db, port)
    crash = Tally()
    seen: set[str] = set()
    done = threading.Event()

    def reader() -> None:  # what the database had acknowledged (committed), as it happened
        while not done.is_set():
            seen.update(rows(db))
            time.sleep(0.2)

    watcher = threading.Thread(target=reader)
    watcher.start()

    def kill() -> None:
        time.sleep(args.kill_after)
        done.set()
        watcher.join()
        server.send_signal(signal.SIGKILL)

    killer = threading.Thread(target=kill)
    killer.start()
    asyncio.run(load(base, args.clients, args.kill_after + 3, crash))
    killer.join()
    server.wait(timeout=30)
    with sqlite3.connect(db) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    after = rows(db)
    kept = seen <= after
    unknown = after - logged - crash.ids
    lost = crash.ids - after
    console.print(
        f"integrity_check: {integrity}; rows seen committed before the kill: {len(seen) - before}"
        f", all kept: {kept}; rows for requests no client sent: {len(unknown)}; answers "
        f"in the last flush window missing from the log: {len(lost)} of {len(crash.ids)}"
    )
    server = start(home, db, port)
    answer = httpx.post(
        base + "/v1/embeddings", json={"model": E5, "input": "hidup lagi"}, timeout=60
    ).status_code
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)
    ok = integrity == "ok" and kept and not unknown and answer == 200
    console.print(f"restart on the same database answers {answer} -> {'PASS' if ok else 'FAIL'}")
    if not (ok and same and load_ok):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
