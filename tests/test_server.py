"""fondasi serve driven by the official openai SDK and raw HTTP, on the real bundled models."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from fondasi.monitor import Store
from fondasi.settings import Settings

from .serving import Running, running

SMOL = "smollm2-135m-instruct"
E5 = "multilingual-e5-small"


@pytest.fixture(scope="module")
def server(
    shared_settings: Settings, smol: Any, e5: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    db = tmp_path_factory.mktemp("serve") / "logs.db"
    with running(
        shared_settings,
        {SMOL: smol, E5: e5},
        models=[SMOL, E5],
        db=str(db),
        log_text=True,
        max_body_bytes=64 * 1024,
    ) as started:
        yield started


@pytest.fixture
def client(server: Running) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0) as sdk:
        yield sdk


def test_models_lists_what_is_served(client: openai.OpenAI) -> None:
    assert sorted(m.id for m in client.models.list()) == [E5, SMOL]
    assert client.models.retrieve(SMOL).id == SMOL
    with pytest.raises(openai.NotFoundError, match="Did you mean: smollm2-135m-instruct"):
        client.models.retrieve("smollm2-135m")


def test_chat_answers_like_openai(client: openai.OpenAI, server: Running, smol: Any) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=SMOL,
        messages=[
            {"role": "system", "content": "Answer in one short sentence."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        max_tokens=12,
    )
    answer = raw.parse()
    direct = smol.generate(
        "What is the capital of France?", system="Answer in one short sentence.", max_tokens=12
    )
    assert answer.choices[0].message.content == direct.text  # greedy: the same words
    assert answer.model == SMOL
    assert raw.headers["fondasi-model-version"] == SMOL
    assert raw.headers["fondasi-response-id"] == answer.id
    assert answer.id.startswith("chatcmpl-")
    assert answer.usage is not None
    assert answer.usage.completion_tokens == direct.usage.completion_tokens
    assert answer.usage.prompt_tokens == direct.usage.prompt_tokens
    assert answer.choices[0].finish_reason in {"stop", "length"}
    server.flush()
    row = server.state.store.request(answer.id)
    assert row is not None and row.status == 200 and row.version == SMOL
    assert row.ttft_ms is not None and row.latency_ms >= row.ttft_ms
    assert row.prompt_text is not None and "capital of France" in row.prompt_text


def test_chat_streams_over_sse_with_usage(client: openai.OpenAI, server: Running) -> None:
    stream = client.chat.completions.create(
        model=SMOL,
        messages=[{"role": "user", "content": "Sebutkan tiga buah."}],
        max_tokens=16,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    usage = chunks[-1].usage
    assert text.strip()
    assert finish == ["length"] or finish == ["stop"]
    assert usage is not None and usage.completion_tokens <= 16
    assert len({c.id for c in chunks}) == 1
    server.flush()
    row = server.state.store.request(chunks[0].id)
    assert row is not None and row.stream and row.response_text == text
    assert row.completion_tokens == usage.completion_tokens


def test_stop_and_temperature_are_honoured(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model=SMOL,
        messages=[{"role": "user", "content": "Count from one to ten in words, comma separated."}],
        max_tokens=40,
        stop=[","],
        temperature=0.7,
        seed=3,
    )
    assert "," not in (answer.choices[0].message.content or "")


def test_text_completion_continues_the_prompt(client: openai.OpenAI) -> None:
    answer = client.completions.create(model=SMOL, prompt="The capital of France is", max_tokens=4)
    assert answer.object == "text_completion"
    assert "Paris" in answer.choices[0].text
    streamed = client.completions.create(
        model=SMOL, prompt="The capital of France is", max_tokens=4, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == answer.choices[0].text


def test_embeddings_float_and_base64_match_the_model(client: openai.OpenAI, e5: Any) -> None:
    texts = ["Saya suka belajar tentang AI", "I like learning about AI"]
    expected = e5.embed(texts)
    floats = client.embeddings.create(model=E5, input=texts, encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1]
    np.testing.assert_allclose(np.array([d.embedding for d in floats.data]), expected, atol=1e-5)
    packed = client.embeddings.create(model=E5, input=texts)  # the SDK asks for base64
    np.testing.assert_allclose(np.array([d.embedding for d in packed.data]), expected, atol=1e-5)
    engine = e5.backend.engine  # usage counts the model's own tokens, not words
    assert floats.usage.prompt_tokens == sum(engine.token_count(text) for text in texts)
    one = client.embeddings.create(model=E5, input="satu teks")
    assert len(one.data) == 1 and len(one.data[0].embedding) == expected.shape[1]


def test_concurrent_embeddings_share_batches(server: Running, e5: Any) -> None:
    texts = [f"kalimat nomor {n}" for n in range(24)]
    results: dict[int, list[float]] = {}

    def ask(n: int) -> None:
        response = httpx.post(
            server.v1 + "/embeddings",
            json={"model": E5, "input": texts[n], "encoding_format": "float"},
            timeout=60,
        )
        results[n] = response.json()["data"][0]["embedding"]

    served = server.state.pool.get(E5)
    before = sum(b.batches for b in served.batchers.values())
    threads = [threading.Thread(target=ask, args=(n,)) for n in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batches = sum(b.batches for b in served.batchers.values()) - before
    assert len(results) == len(texts)
    assert batches < len(texts)  # several requests went through one encoder call
    np.testing.assert_allclose(
        np.array([results[n] for n in range(len(texts))]), e5.embed(texts), atol=1e-5
    )


@pytest.mark.parametrize(
    ("body", "status", "code", "fragment"),
    [
        ({"model": SMOL, "messages": []}, 400, "invalid_value", "messages"),
        ({"messages": [{"role": "user", "content": "x"}]}, 400, "invalid_value", "model"),
        (
            {"model": SMOL, "messages": [{"role": "user", "content": "x"}], "n": 9},
            400,
            "invalid_value",
            "n:",
        ),
        (
            {
                "model": SMOL,
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": {"type": "function", "function": {"name": "g"}},
            },
            400,
            "invalid_value",
            "tool_choice",
        ),
        (
            {"model": SMOL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 10**6},
            400,
            "invalid_value",
            "at most 4096",
        ),
        (
            {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
            404,
            "model_not_found",
            "not served",
        ),
        (
            {"model": E5, "messages": [{"role": "user", "content": "x"}]},
            400,
            "invalid_value",
            "chat template",
        ),
    ],
)
def test_bad_chat_requests_get_openai_errors(
    server: Running, body: dict[str, Any], status: int, code: str, fragment: str
) -> None:
    response = httpx.post(server.v1 + "/chat/completions", json=body, timeout=30)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["code"] == code
    assert fragment in error["message"]


def test_sdk_raises_the_matching_exceptions(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(
            model="smollm2-135m-instruc", messages=[{"role": "user", "content": "hi"}]
        )
    assert "Did you mean: smollm2-135m-instruct" in str(missing.value)
    with pytest.raises(openai.BadRequestError, match="token arrays"):
        client.embeddings.create(model=E5, input=[[1, 2, 3]])
    with pytest.raises(openai.BadRequestError, match="does not make embeddings"):
        client.embeddings.create(model=SMOL, input="x")
    with pytest.raises(openai.BadRequestError, match="does not draw images"):
        client.images.generate(model=SMOL, prompt="sawah")


def test_raw_http_edge_cases(server: Running) -> None:
    big = {"model": E5, "input": "x" * 70_000}
    too_big = httpx.post(server.v1 + "/embeddings", json=big, timeout=30)
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "request_too_large"

    def chunked() -> Iterator[bytes]:
        yield b'{"model": "multilingual-e5-small", "input": "'
        for _ in range(20):
            yield b"y" * 8192
        yield b'"}'

    streamed = httpx.post(server.v1 + "/embeddings", content=chunked(), timeout=30)
    assert streamed.status_code == 413
    broken = httpx.post(
        server.v1 + "/chat/completions",
        content=b"{not json",
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert broken.status_code == 400 and "error" in broken.json()
    nowhere = httpx.get(server.url + "/v1/nothing-here", timeout=30)
    assert nowhere.status_code == 404 and nowhere.json()["error"]["code"] == "not_found"
    wrong_method = httpx.get(server.v1 + "/chat/completions", timeout=30)
    assert wrong_method.status_code == 405


def test_feedback_is_linked_to_a_response(client: openai.OpenAI, server: Running) -> None:
    answer = client.chat.completions.create(
        model=SMOL, messages=[{"role": "user", "content": "Halo, apa kabar?"}], max_tokens=8
    )
    good = httpx.post(
        server.v1 + "/feedback",
        json={"response_id": answer.id, "rating": "up", "score": 0.9, "comment": "mantap"},
        timeout=30,
    )
    assert good.status_code == 200 and good.json()["rating"] == 1
    unknown = httpx.post(
        server.v1 + "/feedback", json={"response_id": "chatcmpl-nope", "rating": "up"}, timeout=30
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "response_not_found"
    empty = httpx.post(server.v1 + "/feedback", json={"response_id": answer.id}, timeout=30)
    assert empty.status_code == 400
    wrong = httpx.post(
        server.v1 + "/feedback", json={"response_id": answer.id, "rating": "meh"}, timeout=30
    )
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "rating"
    server.flush()
    (row,) = [f for f in server.state.store.feedback() if f.response_id == answer.id]
    assert (row.rating, row.score, row.comment, row.model) == (1, 0.9, "mantap", SMOL)


def test_metrics_count_requests(client: openai.OpenAI, server: Running) -> None:
    client.embeddings.create(model=E5, input="hitung aku")
    text = httpx.get(server.url + "/metrics", timeout=30).text
    assert (
        'fondasi_requests_total{model="multilingual-e5-small",route="embeddings",status="200"}'
        in text
    )
    assert "fondasi_request_seconds_bucket" in text
    assert "fondasi_log_pending" in text


def test_every_answered_request_is_one_row(server: Running) -> None:
    server.flush()
    before = server.state.store.count_requests()
    statuses = []
    for body in (
        {"model": E5, "input": "satu"},
        {"model": E5, "input": ""},
        {"model": "nope", "input": "dua"},
        {"model": E5, "input": "tiga", "encoding_format": "float"},
    ):
        statuses.append(httpx.post(server.v1 + "/embeddings", json=body, timeout=30).status_code)
    server.flush()
    assert statuses == [200, 400, 404, 200]
    assert server.state.store.count_requests() == before + len(statuses)
    rows = server.state.store.requests(limit=4)
    assert sorted(r.status for r in rows) == sorted(statuses)


def test_a_full_queue_answers_429_with_retry_after(
    shared_settings: Settings, smol: Any, tmp_path: Path
) -> None:
    with running(
        shared_settings, {SMOL: smol}, models=[SMOL], db=str(tmp_path / "q.db"), max_queue=0
    ) as busy:
        lane = busy.state.pool.get(SMOL).lane
        body = {"model": SMOL, "messages": [{"role": "user", "content": "Tell a story."}]}
        # The model decodes lane.capacity calls together: fill every slot.
        slow = [
            threading.Thread(
                target=httpx.post,
                args=(busy.v1 + "/chat/completions",),
                kwargs={"json": {**body, "max_tokens": 96}, "timeout": 120},
            )
            for _ in range(lane.capacity)
        ]
        for thread in slow:
            thread.start()
        deadline = time.monotonic() + 60
        while lane.running < lane.capacity and time.monotonic() < deadline:
            time.sleep(0.01)
        refused = httpx.post(busy.v1 + "/chat/completions", json=body, timeout=30)
        for thread in slow:
            thread.join()
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["type"] == "rate_limit_error"
        with openai.OpenAI(base_url=busy.v1, api_key="x", max_retries=0) as sdk:
            assert sdk.chat.completions.create(**body, max_tokens=2).choices  # free again
        busy.flush()
        assert busy.state.store.count_requests() == lane.capacity + 2


def test_logs_survive_shutdown(shared_settings: Settings, e5: Any, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with running(shared_settings, {E5: e5}, models=[E5], db=str(db)) as short:
        for n in range(30):
            httpx.post(short.v1 + "/embeddings", json={"model": E5, "input": f"t{n}"}, timeout=30)
    # No flush: closing the server drains the writer.
    store = Store(str(db))
    assert store.count_requests() == 30
    store.close()


def test_openapi_schema_describes_the_wire(server: Running) -> None:
    schema = httpx.get(server.url + "/openapi.json", timeout=30).json()
    assert {"/v1/chat/completions", "/v1/embeddings", "/v1/feedback"} <= set(schema["paths"])
    assert json.dumps(schema)  # serialisable, for schemathesis
    assert base64  # (imported for the embeddings test's sibling checks)


def test_serve_toml_with_command_line_values_on_top(tmp_path: Path) -> None:
    from fondasi.errors import BadInputError
    from fondasi.server import ServeConfig

    config = tmp_path / "serve.toml"
    config.write_text(
        'models = ["smollm2-135m-instruct"]\nlog_text = true\nmax_queue = 8\n'
        '[aliases]\nsupport-bot = "smollm2-135m-instruct"\n',
        encoding="utf-8",
    )
    loaded = ServeConfig.load(config, port=9001, host=None)
    assert (loaded.port, loaded.host, loaded.max_queue, loaded.log_text) == (
        9001,
        "127.0.0.1",
        8,
        True,
    )
    assert loaded.aliases == {"support-bot": SMOL}
    assert loaded.cors_origins == []  # CORS stays off unless asked for
    config.write_text("max_queeu = 8\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="bad serve setting 'max_queeu'"):
        ServeConfig.load(config)
    config.write_text("models = [\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="not valid TOML"):
        ServeConfig.load(config)


def test_a_client_leaving_mid_stream_frees_the_model(server: Running) -> None:
    body = {
        "model": SMOL,
        "messages": [{"role": "user", "content": "Write a long story about Jakarta."}],
        "max_tokens": 200,
        "stream": True,
    }
    with (
        httpx.Client(timeout=60) as http,
        http.stream("POST", server.v1 + "/chat/completions", json=body) as response,
    ):
        rid = response.headers["fondasi-response-id"]
        for line in response.iter_lines():
            if '"content"' in line:
                break  # leave after the first words
    lane = server.state.pool.get(SMOL).lane
    deadline = time.monotonic() + 60
    while (lane.running or not server.state.store.has_request(rid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lane.running == 0  # generation stopped; the slot is free
    row = server.state.store.request(rid)
    assert row is not None and row.status == 499
    assert row.error == "the client closed the connection mid-response"
