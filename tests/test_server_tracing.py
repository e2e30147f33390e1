"""Traces of `fondasi serve` reach an OTLP receiver: a SERVER span per request under the
caller's traceparent, a CLIENT span per model call with GenAI attributes, and the trace
carried on to the hosted API."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .fakes import otlp_receiver
from .fakes.openai_server import KEY, FakeState, running
from .fakes.serve import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_a_request_shows_up_in_an_otlp_receiver_with_genai_attributes(tmp_path: Path) -> None:
    upstream = FakeState()
    received = otlp_receiver.Received()
    with running(upstream) as base, otlp_receiver.running(received) as collector:
        home = tmp_path / "home"
        home.mkdir()
        (home / "config.toml").write_text(
            f'[providers.fake]\nadapter = "openai"\nbase_url = "{base}"\napi_key = "{KEY}"\n',
            encoding="utf-8",
        )
        port = free_port()
        env = {
            **os.environ,
            "FONDASI_HOME": str(home),
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector,
            "OTEL_SERVICE_NAME": "fondasi-test",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        command = [sys.executable, "-m", "fondasi", "serve", "--models", "fake:gpt-test"]
        log = tmp_path / "serve.log"
        with log.open("wb") as stderr:
            server = subprocess.Popen(
                [*command, "--port", str(port), "--db", str(tmp_path / "logs.db")],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120  # a guard against hangs, not a speed check
            while True:
                assert server.poll() is None, log.read_text(encoding="utf-8", errors="replace")
                try:
                    httpx.get(url + "/health", timeout=1)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the server did not come up"
                    time.sleep(0.2)
            trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)
            body = {
                "model": "fake:gpt-test",
                "messages": [{"role": "user", "content": "Cuaca Jakarta?"}],
                "max_tokens": 16,
            }
            answer = httpx.post(
                url + "/v1/chat/completions",
                json=body,
                headers={"traceparent": f"00-{trace_id}-{caller}-01"},
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
        finally:
            server.send_signal(signal.SIGTERM)  # shutting down flushes the last spans
            assert server.wait(timeout=60) == 0
        mine = {span.span_id: span for span in received.spans if span.trace_id == trace_id}
        [request] = [span for span in mine.values() if span.kind == 2]  # SERVER
        assert request.name == "POST /v1/chat/completions" and request.parent_id == caller
        assert request.attributes["http.response.status_code"] == 200
        assert request.service == "fondasi-test"
        [call] = [span for span in mine.values() if span.kind == 3]  # CLIENT
        assert call.name == "chat fake:gpt-test"
        ancestor = call
        while ancestor.parent_id in mine:  # the model call happened inside the request
            ancestor = mine[ancestor.parent_id]
        assert ancestor is request
        attributes = call.attributes
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == "openai"
        assert attributes["gen_ai.request.model"] == "fake:gpt-test"
        assert attributes["gen_ai.response.model"] == "fake:gpt-test"
        assert attributes["gen_ai.request.max_tokens"] == 16
        assert attributes["gen_ai.usage.input_tokens"] > 0
        assert attributes["gen_ai.usage.output_tokens"] > 0
        assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
        # The hosted API was called inside the model call's span, in the same trace.
        sent = [h["traceparent"] for h in upstream.headers if "traceparent" in h]
        assert sent and sent[-1].split("-")[1:3] == [trace_id, call.span_id]
        assert not any(KEY in str(span.attributes) for span in received.spans)
