"""OpenAI-wire providers against a local fake server, and the resilience layer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

import fondasi
from fondasi.backends import Capability
from fondasi.backends.hosted import whole_answers
from fondasi.backends.remote import CircuitBreaker, ProviderError, Resilient, RetryPolicy
from fondasi.errors import BadInputError, UnknownChoiceError
from fondasi.providers import ProviderConfig
from fondasi.settings import Settings
from fondasi.types import Chunk, GenerateOptions, Tool

from .conftest import Cli
from .fakes.openai_server import KEY, FakeState, running


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[str, FakeState]]:
    state = FakeState()
    with running(state) as url:
        yield url, state


def settings_for(url: str, tmp_path: Path, *, key: str = KEY, retries: int = 2) -> Settings:
    provider = ProviderConfig(adapter="openai", base_url=url, api_key=SecretStr(key), timeout_s=1.0)
    return Settings.load(home=tmp_path / "home", providers={"fake": provider}, retries=retries)


def test_chat_streams_with_usage(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, _ = fake
    model = fondasi.model("fake:gpt-test", settings_for(url, tmp_path))
    assert model.capabilities == {Capability.GENERATE, Capability.CHAT, Capability.VISION_CHAT}
    chunks = list(model.stream("halo dunia apa kabar", max_tokens=10))
    assert "".join(c.text for c in chunks) == "Echo: halo dunia apa kabar"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    cut = model.generate("satu dua tiga empat lima", max_tokens=3)
    assert cut.text == "Echo: satu dua" and cut.finish_reason == "length"


def test_system_prompt_and_auth_header(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, state = fake
    model = fondasi.model("fake:gpt-test", settings_for(url, tmp_path))
    answer = model.generate("halo", system="Jawab singkat.")
    assert answer.text == "Echo: halo"
    assert state.headers[-1]["authorization"] == f"Bearer {KEY}"


def test_missing_usage_is_counted_with_the_bundled_tokenizer(
    fake: tuple[str, FakeState], tmp_path: Path
) -> None:
    url, _ = fake
    answer = fondasi.model("fake:no-usage", settings_for(url, tmp_path)).generate("halo dunia")
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0


def test_embeddings_are_normalised(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, _ = fake
    model = fondasi.model("fake:text-embedding-test", settings_for(url, tmp_path))
    assert model.capabilities == {Capability.EMBED}
    vectors = model.embed(["a", "b", "a"])
    assert vectors.shape == (3, 8) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-6)
    assert np.allclose(vectors[0], vectors[2])


def test_429_is_retried_honouring_retry_after(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, state = fake
    model = fondasi.model("fake:flaky-429", settings_for(url, tmp_path, retries=3))
    assert model.generate("halo").text == "Echo: halo"
    assert state.calls["flaky-429"] == 3 and model.backend.attempts == 3


def test_500s_fail_after_the_retries(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, state = fake
    before = state.calls["always-500"]
    model = fondasi.model("fake:always-500", settings_for(url, tmp_path, retries=1))
    with pytest.raises(ProviderError, match=r"HTTP 500.*server had an error"):
        model.generate("halo")
    assert state.calls["always-500"] - before == 2


def test_a_stalled_server_times_out(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, _ = fake
    model = fondasi.model("fake:stall", settings_for(url, tmp_path, retries=0))
    start = time.monotonic()
    with pytest.raises(ProviderError, match="timed out"):
        model.generate("halo")
    assert time.monotonic() - start < 2.9  # the 1 s timeout, not the 3 s stall


def test_a_stream_broken_mid_way_ends_with_a_clear_error(
    fake: tuple[str, FakeState], tmp_path: Path
) -> None:
    url, _ = fake
    model = fondasi.model("fake:reset", settings_for(url, tmp_path))
    received: list[str] = []

    def read_all() -> None:
        received.extend(chunk.text for chunk in model.stream("satu dua tiga empat"))

    with pytest.raises(ProviderError, match="stream broke off"):
        read_all()
    assert "".join(received) == "Echo: satu"


def test_garbage_from_the_server_is_an_error(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, _ = fake
    with pytest.raises(ProviderError):
        fondasi.model("fake:garbage", settings_for(url, tmp_path)).generate("satu dua tiga")


def test_unknown_model_passes_the_providers_message_on(
    fake: tuple[str, FakeState], tmp_path: Path
) -> None:
    url, _ = fake
    with pytest.raises(ProviderError, match=r"HTTP 404.*`missing` does not exist"):
        fondasi.model("fake:missing", settings_for(url, tmp_path)).generate("halo")


def test_a_wrong_key_is_named_but_never_shown(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, _ = fake
    wrong = "sk-wrong-secret-key-98765"
    model = fondasi.model("fake:gpt-test", settings_for(url, tmp_path, key=wrong))
    with pytest.raises(ProviderError) as error:
        model.generate("halo")
    assert "refused" in str(error.value) and "765" not in str(error.value)
    assert wrong not in repr(error.value.__dict__)


def test_missing_key_says_which_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = Settings.load(home=tmp_path / "home")
    with pytest.raises(BadInputError, match="OPENAI_API_KEY"):
        fondasi.model("openai:gpt-4.1-mini", settings)
    with pytest.raises(UnknownChoiceError, match="Did you mean: openai"):
        fondasi.model("opneai:gpt-4", settings)


def test_catalog_ids_reach_the_provider_through_environment_variables(
    fake: tuple[str, FakeState], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = fake
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    settings = Settings.load(home=tmp_path / "home")
    model = fondasi.model("text-embedding-3-small", settings)  # a card with a live OpenAI offer
    assert model.spec.extra["model"] == "text-embedding-3-small"
    assert model.embed(["halo"]).shape == (1, 8)
    assert state.calls["text-embedding-3-small"] >= 1


def test_a_wrong_base_url_is_a_connection_error(tmp_path: Path) -> None:
    settings = settings_for("http://127.0.0.1:9/v1", tmp_path, retries=0)
    with pytest.raises(ProviderError, match="cannot reach"):
        fondasi.model("fake:gpt-test", settings).generate("halo")


def test_compat_servers_list_their_models(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, _ = fake
    server = ProviderConfig(
        adapter="openai", base_url=url, key_required=False, models=["llama-3-8b"]
    )
    settings = Settings.load(home=tmp_path / "home", providers={"myvllm": server})
    with pytest.raises(BadInputError, match="serves llama-3-8b"):
        fondasi.model("compat:myvllm/mistral", settings)
    model = fondasi.model("compat:myvllm/llama-3-8b", settings)
    with pytest.raises(ProviderError, match="refused"):  # the fake wants a key; we sent none
        model.generate("halo")


def test_run_cli_against_a_configured_server(
    cli: Cli, fake: tuple[str, FakeState], home: Path
) -> None:
    url, _ = fake
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'[providers.fake]\nadapter = "openai"\nbase_url = "{url}"\napi_key = "{KEY}"\n'
    )
    done = cli("run", "fake:gpt-test", "halo dari CLI", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["text"] == "Echo: halo dari CLI"
    assert KEY not in done.stdout + done.stderr


class Flaky:
    """A backend that fails a set number of times before answering."""

    capabilities = frozenset({Capability.GENERATE})

    def __init__(self, failures: int, retryable: bool = True) -> None:
        self.failures = failures
        self.retryable = retryable

    def stream(self, prompt: str, options: GenerateOptions) -> Iterator[Chunk]:
        if self.failures > 0:
            self.failures -= 1
            raise ProviderError("flaky", "boom", status=503, retryable=self.retryable)
        yield Chunk(text="ok")


def test_backoff_grows_and_respects_retry_after() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=10.0, jitter=0.0)
    assert [policy.delay(n, None) for n in range(5)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert policy.delay(0, 3.0) == 3.0 and policy.delay(0, 99.0) == 10.0
    jittery = RetryPolicy(base_delay_s=1.0, jitter=0.25)
    assert all(0.75 <= jittery.delay(0, None) <= 1.25 for _ in range(50))


def test_the_circuit_opens_fails_fast_and_closes_again() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=3, reset_s=30, clock=lambda: now[0])
    sleeps: list[float] = []
    dead = Resilient(
        Flaky(failures=100), "dead", RetryPolicy(max_retries=0), breaker, sleeps.append
    )
    for _ in range(3):
        with pytest.raises(ProviderError, match="boom"):
            list(dead.stream("x", GenerateOptions()))
    assert breaker.state == "open"
    calls_before = dead.attempts
    with pytest.raises(ProviderError, match="circuit open"):
        list(dead.stream("x", GenerateOptions()))
    assert dead.attempts == calls_before  # refused without calling the provider
    now[0] = 31.0
    assert breaker.state == "half-open"
    dead.backend.failures = 0  # the provider recovers
    assert [c.text for c in dead.stream("x", GenerateOptions())] == ["ok"]
    assert breaker.state == "closed"


def test_non_retryable_errors_are_not_retried() -> None:
    sleeps: list[float] = []
    wrapped = Resilient(Flaky(failures=1, retryable=False), "x", RetryPolicy(), sleep=sleeps.append)
    with pytest.raises(ProviderError):
        list(wrapped.stream("x", GenerateOptions()))
    assert wrapped.attempts == 1 and sleeps == []


def test_api_calls_cost_the_cards_price(
    fake: tuple[str, FakeState], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = fake
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    model = fondasi.model("gpt-4o-mini", Settings.load(home=tmp_path / "home"))
    answer = model.generate("halo dunia")
    price = model.spec.card.pricing  # type: ignore[union-attr]
    expected = (
        answer.usage.prompt_tokens * price.input_per_1m
        + answer.usage.completion_tokens * price.output_per_1m
    ) / 1e6
    assert answer.cost_usd == pytest.approx(expected)
    unknown = fondasi.model("fake:gpt-test", settings_for(url, tmp_path)).generate("halo")
    assert unknown.cost_usd is None  # no card, no price: unknown, not zero


def test_local_calls_cost_their_hardware_time(smol: Any) -> None:
    free = smol.generate("halo", max_tokens=3)
    assert free.cost_usd == 0.0  # hardware_usd_per_hour defaults to 0
    priced = fondasi.Model(smol.spec, smol.backend, smol.backend_name, usd_per_hour=3.6)
    answer = priced.generate("halo", max_tokens=3)
    assert answer.cost_usd == pytest.approx(3.6 * answer.seconds / 3600)


def test_images_go_as_data_urls_or_links(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    import skimage.data
    import skimage.io

    url, _ = fake
    model = fondasi.model("fake:gpt-test", settings_for(url, tmp_path))
    assert Capability.VISION_CHAT in model.capabilities
    photo = tmp_path / "cat.png"
    skimage.io.imsave(photo, skimage.data.chelsea())
    answer = model.generate("Apa ini?", images=[str(photo), skimage.data.coffee()])
    assert answer.text == "Echo: Apa ini? [2 images]"
    linked = model.generate("Dan ini?", images="https://example.org/cat.jpg")
    assert linked.text == "Echo: Dan ini? [1 image]"
    notes = tmp_path / "notes.png"
    notes.write_text("not pixels")
    with pytest.raises(BadInputError, match="not an image"):
        model.generate("Apa ini?", images=[str(notes)])
    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG" + b"\0" * (21 * 1024 * 1024))
    with pytest.raises(BadInputError, match="over 20 MB"):
        model.generate("Apa ini?", images=[str(huge)])
    embedder = fondasi.model("fake:text-embedding-test", settings_for(url, tmp_path))
    with pytest.raises(fondasi.CapabilityError, match="cannot vision-chat"):
        embedder.generate("x", images=[str(photo)])


def test_hosted_image_generation(
    fake: tuple[str, FakeState], tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = fake
    model = fondasi.model("fake:gpt-image-test", settings_for(url, tmp_path))
    assert model.capabilities == {Capability.IMAGE_GENERATE}
    images = model.imagine("sawah di Bali", count=2, width=1024, height=1024)
    assert len(images) == 2 and images[0].size == (16, 16)
    with pytest.raises(ProviderError, match="HTTP 404"):  # an image model the server lacks
        fondasi.model("fake:gpt-image-missing", settings_for(url, tmp_path)).imagine("x")
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    out = tmp_path / "sawah.png"
    done = cli("imagine", "gpt-image-2-6", "sawah di Bali", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:4] == b"\x89PNG" and state.calls["gpt-image-2.6-flare"] == 1


@pytest.mark.parametrize("name", ["always-500", "stall", "missing", "garbage", "wrong-key"])
def test_the_async_path_fails_as_the_sync_path_does(
    fake: tuple[str, FakeState], tmp_path: Path, name: str
) -> None:
    # The server's path posts with its own pooled httpx client, not the SDK's: a refusal,
    # a stall or garbage must still read exactly as the SDK's path reads it.
    url, _ = fake
    key = "sk-wrong-secret-key-98765" if name == "wrong-key" else KEY
    model_id = "fake:gpt-test" if name == "wrong-key" else f"fake:{name}"
    model = fondasi.model(model_id, settings_for(url, tmp_path, key=key, retries=0))
    with pytest.raises(ProviderError) as sync:
        model.generate("satu dua tiga")

    async def call() -> None:
        try:
            await model.agenerate("satu dua tiga")
        finally:
            await model.aclose()

    with pytest.raises(ProviderError) as async_:
        asyncio.run(call())
    assert str(async_.value) == str(sync.value)
    assert (async_.value.status, async_.value.retryable) == (
        sync.value.status,
        sync.value.retryable,
    )
    assert "98765" not in str(async_.value)


CUACA = Tool(
    name="cuaca",
    description="Cuaca sekarang di sebuah kota.",
    parameters={"type": "object", "properties": {"kota": {"type": "string"}}, "required": ["kota"]},
)
PASAR = Tool(
    name="pasar",
    description="Harga beras di pasar sebuah kota.",
    parameters={"type": "object", "properties": {"kota": {"type": "string"}}, "required": ["kota"]},
)


def _read(model: Any, options: GenerateOptions, *, whole: bool) -> list[Chunk]:
    async def read() -> list[Chunk]:
        try:
            with whole_answers() if whole else contextlib.nullcontext():
                return [chunk async for chunk in model.astream("satu dua tiga", options=options)]
        finally:
            await model.aclose()

    return asyncio.run(read())


def _said(chunks: list[Chunk]) -> dict[str, Any]:
    final = chunks[-1]
    return {
        "text": "".join(c.text for c in chunks),
        "logprobs": [item for c in chunks for item in c.logprobs or []],
        "calls": [(c.id, c.name, c.arguments) for c in final.tool_calls],
        "usage": final.usage,
        "finish": final.finish_reason,
    }


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("gpt-test", GenerateOptions(max_tokens=16)),
        ("gpt-test", GenerateOptions(max_tokens=2)),  # cut: finish "length"
        ("gpt-test", GenerateOptions(max_tokens=16, logprobs=True, top_logprobs=2)),
        ("no-usage", GenerateOptions(max_tokens=16)),  # usage counted here, the same way
        ("parallel-caller", GenerateOptions(tools=[CUACA, PASAR])),
    ],
)
def test_a_whole_answer_says_what_the_stream_says(
    fake: tuple[str, FakeState], tmp_path: Path, name: str, options: GenerateOptions
) -> None:
    # A non-streamed server request asks the upstream for one JSON answer instead of an
    # event per token; what the caller gets must not change.
    url, state = fake
    model = fondasi.model(f"fake:{name}", settings_for(url, tmp_path))
    streamed = _read(model, options, whole=False)
    assert state.bodies[-1]["stream"] is True
    whole = _read(model, options, whole=True)
    assert state.bodies[-1]["stream"] is False and "stream_options" not in state.bodies[-1]
    assert _said(whole) == _said(streamed)
    assert len(whole) < len(streamed) or len(streamed) <= 2


def test_a_whole_answer_that_is_not_json_is_a_provider_error(
    fake: tuple[str, FakeState], tmp_path: Path
) -> None:
    url, _ = fake
    model = fondasi.model("fake:garbage", settings_for(url, tmp_path, retries=0))
    with pytest.raises(ProviderError, match="cannot read") as failed:
        _read(model, GenerateOptions(max_tokens=8), whole=True)
    assert "broke off" not in str(failed.value)
