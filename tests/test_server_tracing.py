"""Traces of `fondasi serve` reach an OTLP receiver: a SERVER span per request under the
caller's traceparent, a CLIENT span per model call with GenAI attributes, and the trace
carried on to the hosted API. With the JSON log format every log line is one object that
names the request and the trace."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from fondasi.errors import BadInputError
from fondasi.monitor import KeyStore, Store
from fondasi.server import ServeConfig
from fondasi.settings import Settings

from .fakes import otlp_receiver
from .fakes.openai_server import KEY, FakeState, running
from .serving import serve_process

ROOT = Path(__file__).resolve().parents[1]
MODEL = "fake:gpt-test"


@contextmanager
def serving(
    tmp_path: Path, upstream: str, env: dict[str, str], *options: str
) -> Iterator[tuple[str, Path]]:
    """`fondasi serve` in its own process over the fake OpenAI upstream; yields its URL and
    the file its stderr goes to."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(
        f'[providers.fake]\nadapter = "openai"\nbase_url = "{upstream}"\napi_key = "{KEY}"\n',
        encoding="utf-8",
    )
    log = tmp_path / "serve.log"
    options = ("--models", MODEL, *options, "--db", str(tmp_path / "logs.db"))
    with serve_process(home, log, *options, env=env) as url:
        yield url, log


def ask(url: str, content: str, headers: dict[str, str]) -> httpx.Response:
    """One chat request."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 16}
    return httpx.post(url + "/v1/chat/completions", json=body, headers=headers, timeout=60)


def json_lines(log: Path) -> list[dict[str, Any]]:
    """Every line the server wrote, each parsed as JSON (a line that is not fails)."""
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines
    return [json.loads(line) for line in lines if line.strip()]


def test_a_request_shows_up_in_an_otlp_receiver_with_genai_attributes(tmp_path: Path) -> None:
    upstream = FakeState()
    received = otlp_receiver.Received()
    trace_id, caller, request_id = secrets.token_hex(16), secrets.token_hex(8), "req-abc.123"
    with running(upstream) as base, otlp_receiver.running(received) as collector:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector,
            "OTEL_SERVICE_NAME": "fondasi-test",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        options = ("--log-text", "--trace-text", "--log-format", "json")
        with serving(tmp_path, base, env, *options) as (url, log):
            headers = {"traceparent": f"00-{trace_id}-{caller}-01", "x-request-id": request_id}
            answer = ask(url, "Cuaca Jakarta? Balas ke budi.santoso@contoh.co.id", headers)
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-request-id"] == request_id
    mine = {span.span_id: span for span in received.spans if span.trace_id == trace_id}
    [request] = [span for span in mine.values() if span.kind == 2]  # SERVER
    assert request.name == "POST /v1/chat/completions" and request.parent_id == caller
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["http.route"] == "/v1/chat/completions"
    assert request.service == "fondasi-test"
    [call] = [span for span in mine.values() if span.kind == 3]  # CLIENT
    assert call.name == f"chat {MODEL}"
    assert call.parent_id == request.span_id  # the model call happened inside the request
    attributes = call.attributes
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == attributes["gen_ai.system"] == "openai"
    assert attributes["gen_ai.request.model"] == MODEL
    assert attributes["gen_ai.response.model"] == MODEL
    assert attributes["gen_ai.request.max_tokens"] == 16
    assert attributes["gen_ai.usage.input_tokens"] > 0
    assert attributes["gen_ai.usage.output_tokens"] > 0
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert "error.type" not in attributes
    # The hosted API was called inside the model call's span, in the same trace.
    sent = [h["traceparent"] for h in upstream.headers if "traceparent" in h]
    assert sent and sent[-1].split("-")[1:3] == [trace_id, call.span_id]
    # The texts, asked for, ride on the request's span as the log keeps them: PII masked.
    events = dict(request.events)
    prompt = events["gen_ai.content.prompt"]["gen_ai.prompt"]
    assert "Cuaca Jakarta?" in prompt and "[EMAIL]" in prompt
    assert "budi.santoso" not in str(received.spans)
    assert events["gen_ai.content.completion"]["gen_ai.completion"].startswith("Echo: Cuaca")
    assert not any(KEY in str(span.attributes) for span in received.spans)
    # One JSON access line names the request and the very span the trace view shows.
    lines = json_lines(log)
    [access] = [line for line in lines if line.get("path") == "/v1/chat/completions"]
    assert access["message"] == "POST /v1/chat/completions 200"
    assert access["request_id"] == request_id and access["status"] == 200
    assert (access["trace_id"], access["span_id"]) == (trace_id, request.span_id)
    assert access["model"] == MODEL and access["duration_ms"] > 0
    assert {"timestamp", "level"} <= access.keys() and access["level"] == "INFO"


def test_a_micro_batched_embedding_call_is_a_span_in_its_requests_trace(tmp_path: Path) -> None:
    upstream = FakeState()
    received = otlp_receiver.Received()
    embedder = "fake:text-embedding-test"
    trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)
    with running(upstream) as base, otlp_receiver.running(received) as collector:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector, "OTEL_BSP_SCHEDULE_DELAY": "100"}
        with serving(tmp_path, base, env, "--models", f"{MODEL},{embedder}") as (url, _):
            answer = httpx.post(
                url + "/v1/embeddings",
                json={"model": embedder, "input": ["Selamat pagi", "Apa kabar?"]},
                headers={"traceparent": f"00-{trace_id}-{caller}-01"},
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["data"]) == 2
    mine = [span for span in received.spans if span.trace_id == trace_id]
    [request] = [span for span in mine if span.kind == 2]  # SERVER
    [call] = [span for span in mine if span.kind == 3]  # CLIENT, made on the batch thread
    assert call.name == f"embeddings {embedder}" and call.parent_id == request.span_id
    assert call.attributes["gen_ai.operation.name"] == "embeddings"


def test_json_logs_carry_the_callers_trace_and_never_a_key(tmp_path: Path) -> None:
    upstream = FakeState()
    # A key on the store before start: the server then needs one.
    store = Store.open(Settings(home=tmp_path / "home"), str(tmp_path / "logs.db"))
    _, secret = KeyStore(store).create("ops")
    store.close()
    trace_id = secrets.token_hex(16)
    with (
        running(upstream) as base,
        serving(tmp_path, base, {}, "--log-format", "json") as (
            url,
            log,
        ),
    ):
        traced = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
        mine = {**traced, "Authorization": f"Bearer {secret}"}
        assert ask(url, "Halo", mine).status_code == 200
        wrong = {"Authorization": f"Bearer {secret[:-4]}zzzz"}
        assert ask(url, "Halo", wrong).status_code == 401
        pasted = {"model": secret, "messages": [{"role": "user", "content": "Halo"}]}
        chat = url + "/v1/chat/completions"
        assert httpx.post(chat, json=pasted, headers=mine, timeout=60).status_code == 404
        listed = httpx.get(url + "/v1/models", headers={"Authorization": f"Bearer {secret}"})
        assert listed.status_code == 200
    text = log.read_text(encoding="utf-8")
    assert secret not in text and secret[:-4] not in text and KEY not in text
    lines = json_lines(log)
    messages = [line["message"] for line in lines]
    assert any(m.startswith("fondasi serving fake:gpt-test at http://") for m in messages)
    assert "Application startup complete." in messages  # uvicorn's own lines too
    access = [line for line in lines if line["logger"] == "fondasi.server.access"]
    access = [line for line in access if line["path"] != "/health"]  # waiting for start-up
    assert [a["message"] for a in access] == [
        "POST /v1/chat/completions 200",
        "POST /v1/chat/completions 401",
        "POST /v1/chat/completions 404",
        "GET /v1/models 200",
    ]
    # Nothing exported here: the caller's trace id still joins the line to its trace.
    assert access[0]["trace_id"] == trace_id and access[0]["span_id"] is None
    assert access[0]["request_id"].startswith("chatcmpl-")
    assert access[2]["model"] == "fsk-****"  # a key pasted as a model name is masked too
    assert access[3]["request_id"].startswith("req-") and access[3]["trace_id"] is None


def test_texts_go_on_spans_only_with_the_log_keeping_them() -> None:
    with pytest.raises(ValueError, match="log_text"):
        ServeConfig(trace_text=True)
    with pytest.raises(BadInputError, match="turn on log_text too"):
        ServeConfig.load(None, trace_text=True)
    assert ServeConfig(trace_text=True, log_text=True, log_format="json").trace_text
