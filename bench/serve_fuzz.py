"""Fuzz ``fondasi serve``'s OpenAPI schema with schemathesis: no request may get a 5xx.

    .venv/bin/python bench/serve_fuzz.py [--examples 40] [--seed 1]

The server runs the bundled SmolLM2 and multilingual-e5-small (answers capped at 8 tokens
so that fuzzed requests stay quick) on 127.0.0.1. schemathesis generates valid and invalid
requests for every operation in ``/openapi.json`` (the OpenAI routes, feedback, admin
aliases) and checks ``not_a_server_error``. Afterwards the server's own log is read too:
the count of rows with status >= 500 must be zero, and every request it answered is there.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from serve_load import E5, SMOL, free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=40, choices=range(1, 1001), metavar="N")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="fondasi-fuzz-"))
    config = home / "serve.toml"
    config.write_text(
        f'models = ["{SMOL}", "{E5}"]\nmax_tokens_cap = 8\nlog_text = true\n'
        f'db = "{home / "logs.db"}"\n[aliases]\nbot = "{SMOL}"\n',
        encoding="utf-8",
    )
    port = free_port()
    env = {**os.environ, "FONDASI_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "fondasi", "serve", "--config", str(config), "--port"]
    server = subprocess.Popen([*command, str(port)], env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start") from None
            time.sleep(0.5)
    schemathesis = Path(sys.executable).parent / "schemathesis"
    began = time.perf_counter()
    fuzz = subprocess.run(
        [
            str(schemathesis),
            "run",
            base + "/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(args.examples),
            "--seed",
            str(args.seed),
            "--workers",
            "2",
            "--request-timeout",
            "120",
        ],
        check=False,
    )
    seconds = time.perf_counter() - began
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=120)
    with sqlite3.connect(home / "logs.db") as conn:
        total, errors = conn.execute("SELECT count(*), sum(status >= 500) FROM requests").fetchone()
        statuses = conn.execute(
            "SELECT status, count(*) FROM requests GROUP BY status ORDER BY status"
        ).fetchall()
    print(
        f"schemathesis exit {fuzz.returncode} in {seconds:.0f} s; model-route requests logged: "
        f"{total}, with status >= 500: {errors or 0}; by status: {dict(statuses)}"
    )
    if fuzz.returncode != 0 or errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
