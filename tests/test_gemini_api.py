"""The Gemini adapter against a local fake of the Gemini API, through the real google-genai SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

import fondasi
from fondasi.backends import Capability
from fondasi.backends.remote import ProviderError
from fondasi.errors import BadInputError
from fondasi.providers import ProviderConfig
from fondasi.settings import Settings
from fondasi.types import Message, Role

from .fakes.gemini_server import KEY, SUSPENDED, FakeState, running


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[str, FakeState]]:
    state = FakeState()
    with running(state) as url:
        yield url, state


def settings_for(url: str, tmp_path: Path, *, key: str = KEY, retries: int = 2) -> Settings:
    provider = ProviderConfig(
        adapter="gemini",
        base_url=url,
        key_env=["GEMINI_API_KEY", "GOOGLE_API_KEY"],
        api_key=SecretStr(key),
        timeout_s=1.0,
    )
    return Settings.load(home=tmp_path / "home", providers={"google": provider}, retries=retries)


def test_chat_streams_with_usage(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, state = fake
    model = fondasi.model("google:gemini-test", settings_for(url, tmp_path))
    assert model.capabilities == {Capability.GENERATE, Capability.CHAT, Capability.VISION_CHAT}
    chunks = list(model.stream("halo dunia apa kabar", max_tokens=10))
    assert [c.text for c in chunks[:-1]] == ["Echo:", " halo", " dunia", " apa", " kabar"]
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (4, 5)
    assert chunks[-1].finish_reason == "stop"
    assert state.paths[-1].endswith("/models/gemini-test:streamGenerateContent?alt=sse")
    assert state.headers[-1]["x-goog-api-key"] == KEY
    assert "authorization" not in state.headers[-1]


def test_max_tokens_ends_with_length(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, state = fake
    model = fondasi.model("google:gemini-test", settings_for(url, tmp_path))
    cut = model.generate("satu dua tiga empat lima", max_tokens=3, temperature=0.5, seed=7)
    assert cut.text == "Echo: satu dua" and cut.finish_reason == "length"
    config = state.bodies[-1]["generationConfig"]
    assert config["maxOutputTokens"] == 3 and config["temperature"] == 0.5
    assert config["seed"] == 7 and config["topP"] == 1.0


def test_system_prompt_goes_in_system_instruction(
    fake: tuple[str, FakeState], tmp_path: Path
) -> None:
    url, state = fake
    model = fondasi.model("google:gemini-test", settings_for(url, tmp_path))
    conversation = [
        Message(role=Role.USER, content="siapa kamu"),
        Message(role=Role.ASSISTANT, content="asisten"),
        Message(role=Role.USER, content="halo"),
    ]
    assert model.generate(conversation, system="Jawab singkat.").text == "Echo: halo"
    body = state.bodies[-1]
    assert body["systemInstruction"]["parts"] == [{"text": "Jawab singkat."}]
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert all("Jawab" not in str(c) for c in body["contents"])


def test_stop_sequences_are_passed_on_and_the_rest_cut_here(
    fake: tuple[str, FakeState], tmp_path: Path
) -> None:
    url, state = fake
    model = fondasi.model("google:gemini-test", settings_for(url, tmp_path))
    answer = model.generate("satu dua tiga empat", stop=["tiga"])
    assert answer.text == "Echo: satu dua" and answer.finish_reason == "stop"
    assert state.bodies[-1]["generationConfig"]["stopSequences"] == ["tiga"]
    # The API takes five; a sixth is cut from the stream by fondasi.
    stops = ["a1", "a2", "a3", "a4", "a5", "empat"]
    answer = model.generate("satu dua tiga empat lima", stop=stops)
    assert answer.text == "Echo: satu dua tiga " and answer.finish_reason == "stop"
    assert state.bodies[-1]["generationConfig"]["stopSequences"] == stops[:5]


def test_missing_usage_is_counted_with_the_bundled_tokenizer(
    fake: tuple[str, FakeState], tmp_path: Path
) -> None:
    url, _ = fake
    answer = fondasi.model("google:no-usage", settings_for(url, tmp_path)).generate("halo dunia")
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0


def test_embeddings_are_normalised_and_batched(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, state = fake
    model = fondasi.model("google:text-embedding-test", settings_for(url, tmp_path))
    assert model.capabilities == {Capability.EMBED}
    before = state.calls["text-embedding-test"]
    texts = ["a", "b", "a", *(f"teks {i}" for i in range(147))]
    vectors = model.embed(texts)
    assert vectors.shape == (150, 8) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-6)
    assert np.allclose(vectors[0], vectors[2]) and not np.allclose(vectors[0], vectors[1])
    assert state.calls["text-embedding-test"] - before == 2  # 100 + 50: the API's batch limit
    assert state.paths[-1].endswith("/models/text-embedding-test:batchEmbedContents")
    model.embed(["halo"], purpose="query")
    assert state.bodies[-1]["requests"][0]["taskType"] == "RETRIEVAL_QUERY"


def test_gemini_embedding_2_takes_the_task_in_the_text(
    fake: tuple[str, FakeState], tmp_path: Path
) -> None:
    url, state = fake
    model = fondasi.model("google:gemini-embedding-2", settings_for(url, tmp_path))
    assert model.embed(["satu", "dua"], purpose="passage").shape == (2, 8)
    requests = state.bodies[-1]["requests"]
    assert [r["content"]["parts"] for r in requests] == [
        [{"text": "title: none | text: satu"}],
        [{"text": "title: none | text: dua"}],
    ]
    assert all("taskType" not in r for r in requests)


def test_429_is_retried_honouring_retry_after(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, state = fake
    model = fondasi.model("google:flaky-429", settings_for(url, tmp_path, retries=3))
    assert model.generate("halo").text == "Echo: halo"
    assert state.calls["flaky-429"] == 3 and model.backend.attempts == 3


def test_retry_delay_from_googles_retry_info(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, _ = fake
    model = fondasi.model("google:quota-429", settings_for(url, tmp_path, retries=0))
    with pytest.raises(ProviderError, match=r"HTTP 429.*exceeded your current quota") as error:
        model.generate("halo")
    assert error.value.retryable and error.value.retry_after == 7.0


def test_500s_fail_after_the_retries(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, state = fake
    before = state.calls["always-500"]
    model = fondasi.model("google:always-500", settings_for(url, tmp_path, retries=1))
    with pytest.raises(ProviderError, match=r"HTTP 500.*internal error"):
        model.generate("halo")
    assert state.calls["always-500"] - before == 2


def test_a_stalled_server_times_out(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, _ = fake
    model = fondasi.model("google:stall", settings_for(url, tmp_path, retries=0))
    start = time.monotonic()
    with pytest.raises(ProviderError, match="timed out") as error:
        model.generate("halo")
    assert error.value.retryable
    assert time.monotonic() - start < 2.9  # the 1 s timeout, not the 3 s stall


def test_a_stream_broken_mid_way_ends_with_a_clear_error(
    fake: tuple[str, FakeState], tmp_path: Path
) -> None:
    url, _ = fake
    model = fondasi.model("google:reset", settings_for(url, tmp_path))
    received: list[str] = []

    def read_all() -> None:
        received.extend(chunk.text for chunk in model.stream("satu dua tiga empat"))

    with pytest.raises(ProviderError, match="stream broke off"):
        read_all()
    assert "".join(received) == "Echo: satu"


def test_garbage_from_the_server_is_an_error(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, _ = fake
    model = fondasi.model("google:garbage", settings_for(url, tmp_path))
    with pytest.raises(ProviderError, match="cannot read") as error:
        model.generate("satu dua tiga")
    assert not error.value.retryable


def test_unknown_model_passes_the_providers_message_on(
    fake: tuple[str, FakeState], tmp_path: Path
) -> None:
    url, _ = fake
    with pytest.raises(ProviderError, match=r"HTTP 404.*models/missing is not found"):
        fondasi.model("google:missing", settings_for(url, tmp_path)).generate("halo")


@pytest.mark.parametrize(
    ("key", "why"),
    [("AIzaSy-wrong-secret-key-13579", "API_KEY_INVALID"), (SUSPENDED, "CONSUMER_SUSPENDED")],
)
def test_a_wrong_key_is_named_but_never_shown(
    fake: tuple[str, FakeState], tmp_path: Path, key: str, why: str
) -> None:
    url, state = fake
    model = fondasi.model("google:gemini-test", settings_for(url, tmp_path, key=key))
    with pytest.raises(ProviderError) as error:
        model.generate("halo")
    message = str(error.value)
    assert "refused" in message and why in message and "GEMINI_API_KEY" in message
    assert not error.value.retryable
    assert key not in repr(error.value.__dict__) and key[-5:] not in message
    assert state.headers[-1]["x-goog-api-key"] == key  # the fake did get, and echo, the key


def test_missing_key_says_which_variable(tmp_path: Path) -> None:
    settings = Settings.load(home=tmp_path / "home")
    with pytest.raises(BadInputError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        fondasi.model("google:gemini-3.8-flash", settings)


def test_catalog_ids_reach_the_provider_through_environment_variables(
    fake: tuple[str, FakeState], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = fake
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", url)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    settings = Settings.load(home=tmp_path / "home")
    embedder = fondasi.model("gemini-embedding-001", settings)  # a card with a live Google offer
    assert embedder.spec.extra["model"] == "gemini-embedding-001"
    assert embedder.embed(["halo"]).shape == (1, 8)
    assert state.calls["gemini-embedding-001"] >= 1
    chat = fondasi.model("gemini-3-8-flash", settings)
    assert chat.generate("halo").text == "Echo: halo"
    assert state.calls["gemini-3.8-flash"] >= 1


def test_a_wrong_base_url_is_a_connection_error(tmp_path: Path) -> None:
    settings = settings_for("http://127.0.0.1:9", tmp_path, retries=0)
    with pytest.raises(ProviderError, match="cannot reach") as error:
        fondasi.model("google:gemini-test", settings).generate("halo")
    assert error.value.retryable
