"""``fondasi serve`` as a user runs it, stopped with SIGTERM mid-stream; then logs, stats and
the feedback export that ``fondasi tune`` reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from fondasi.tune.data import check_rows, detect_task, read_rows

from .conftest import Cli
from .fakes.serve import free_port
from .hiding import hidden_env

SMOL = "smollm2-135m-instruct"


def _start(db: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "fondasi", "serve", "--port", str(port), "--db", str(db)]
    env = {**os.environ, "COLUMNS": "200"}
    process = subprocess.Popen(
        [*command, "--models", SMOL, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.communicate()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise AssertionError("the server did not start in 180 s")


def test_serve_stops_gracefully_then_logs_feed_a_dataset(cli: Cli, tmp_path: Path) -> None:
    db, port = tmp_path / "logs.db", free_port()
    server = _start(db, port, "--log-text")
    base = f"http://127.0.0.1:{port}/v1"
    try:
        with openai.OpenAI(base_url=base, api_key="x", max_retries=0) as sdk:
            liked = sdk.chat.completions.create(
                model=SMOL,
                messages=[{"role": "user", "content": "Apa ibu kota Prancis?"}],
                max_tokens=8,
            )
            disliked = sdk.chat.completions.create(
                model=SMOL,
                messages=[{"role": "user", "content": "Apa ibu kota Jepang?"}],
                max_tokens=8,
            )
            text = sdk.completions.create(
                model=SMOL, prompt="Ibu kota Indonesia adalah", max_tokens=4
            )
            for body in (
                {"response_id": liked.id, "rating": "up"},
                {"response_id": disliked.id, "rating": "down", "correction": "Tokyo."},
                {"response_id": text.id, "score": 0.8},
            ):
                assert httpx.post(base + "/feedback", json=body, timeout=30).status_code == 200
            stream = sdk.chat.completions.create(
                model=SMOL,
                messages=[{"role": "user", "content": "Tell me a long story about Bali."}],
                max_tokens=48,
                stream=True,
            )
            pieces = []
            for chunk in stream:
                if not pieces:
                    server.send_signal(signal.SIGTERM)  # mid-stream: it must still finish
                pieces.append(chunk)
        assert pieces[-1].choices[0].finish_reason in {"length", "stop"}
        out, err = server.communicate(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, err
    assert "stopped; every request is in the log" in out
    assert f"at http://127.0.0.1:{port}/v1" in out

    shown = cli("logs", "--db", str(db))
    assert shown.returncode == 0 and liked.id in shown.stdout and pieces[0].id in shown.stdout
    as_json = [
        json.loads(line) for line in cli("logs", "--db", str(db), "--json").stdout.splitlines()
    ]
    assert len(as_json) == 4 and {row["status"] for row in as_json} == {200}
    streamed = next(row for row in as_json if row["id"] == pieces[0].id)
    assert streamed["stream"] and streamed["completion_tokens"] > 0
    recent = cli("logs", "--db", str(db), "--since", "1h", "--model", SMOL, "--limit", "2")
    assert recent.stdout.count("chatcmpl-") + recent.stdout.count("cmpl-") >= 2
    stats = cli("stats", "--db", str(db))
    assert stats.returncode == 0 and SMOL in stats.stdout and "1/1" in stats.stdout

    dataset = tmp_path / "from-feedback.jsonl"
    exported = cli("logs", "export", "--feedback", "--out", str(dataset), "--db", str(db))
    assert exported.returncode == 0, exported.stderr
    assert "wrote 3 chat rows" in exported.stdout
    rows = read_rows(dataset)
    assert detect_task(rows, dataset) == "causal-lm"
    check_rows(rows, "causal-lm", dataset)  # what `fondasi tune` checks before training
    assert rows[1]["messages"][-1] == {"role": "assistant", "content": "Tokyo."}
    assert rows[2]["prompt"] == "Ibu kota Indonesia adalah"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["logs", "--since", "kemarin"], "--since 'kemarin'"),
        (["logs", "export", "--out", "x.jsonl"], "--feedback"),
        (["logs", "export", "--feedback", "--out", "x.jsonl", "--format", "csv"], "--format"),
        (["logs", "export", "--feedback", "--out", "x.jsonl"], "nothing to export"),
        (["serve", "--port", "99999"], "bad serve setting 'port'"),
        (["serve", "--config", "missing.toml"], "no such file"),
        (["serve", "--db", "mysql://x@127.0.0.1/y"], "unsupported database"),
        (["serve", "--models", "smollm2-135m-instrct", "--port", "0"], "Did you mean"),
    ],
)
def test_bad_input_is_one_clear_error(cli: Cli, args: list[str], message: str) -> None:
    done = cli(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("error: ")
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_guard_missing_its_package_stops_the_server_before_it_binds(
    cli: Cli, tmp_path: Path
) -> None:
    hidden = hidden_env(tmp_path / "site", "lokal")
    port = free_port()
    done = cli("serve", "--models", SMOL, "--guard", "standard", "--port", str(port), env=hidden)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert "pip install 'fondasi[guard]'" in done.stderr
    assert "fondasi serving" not in done.stdout
