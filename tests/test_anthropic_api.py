"""Anthropic's Messages API against a local fake server speaking its wire format."""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

import fondasi
from fondasi.backends import Capability
from fondasi.backends.remote import ProviderError
from fondasi.backends.remote import parse_retry_after as retry_after
from fondasi.errors import BadInputError
from fondasi.providers import ProviderConfig
from fondasi.settings import Settings
from fondasi.types import Message, Role

from .fakes.anthropic_server import KEY, FakeState, running


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[str, FakeState]]:
    state = FakeState()
    with running(state) as url:
        yield url, state


def settings_for(url: str, tmp_path: Path, *, key: str = KEY, retries: int = 2) -> Settings:
    provider = ProviderConfig(
        adapter="anthropic", base_url=url, api_key=SecretStr(key), timeout_s=1.0
    )
    return Settings.load(home=tmp_path / "home", providers={"anthropic": provider}, retries=retries)


def test_messages_stream_with_usage(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, state = fake
    model = fondasi.model("anthropic:claude-test", settings_for(url, tmp_path))
    assert model.capabilities == {Capability.GENERATE, Capability.CHAT, Capability.VISION_CHAT}
    chunks = list(model.stream("halo dunia apa kabar", max_tokens=10, temperature=0.7, seed=1))
    assert "".join(c.text for c in chunks) == "Echo: halo dunia apa kabar"
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].finish_reason == "stop"
    assert (usage.prompt_tokens, usage.completion_tokens) == (13, 5)  # input + cache reads
    body = state.bodies[-1]
    assert body["stream"] is True and body["max_tokens"] == 10
    assert not {"temperature", "top_p", "top_k", "seed"} & set(body)  # 2026-10-21 refuses them
    headers = state.headers[-1]
    assert headers["authorization"] == f"Bearer {KEY}" and headers["anthropic-version"]


def test_max_tokens_ends_with_length(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, _ = fake
    model = fondasi.model("anthropic:claude-test", settings_for(url, tmp_path))
    cut = model.generate("satu dua tiga empat lima", max_tokens=3)
    assert cut.text == "Echo: satu dua" and cut.finish_reason == "length"


def test_the_system_prompt_goes_top_level(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, state = fake
    model = fondasi.model("anthropic:claude-test", settings_for(url, tmp_path))
    assert model.generate("halo", system="Jawab singkat.").text == "Echo: halo"
    assert state.bodies[-1]["system"] == "Jawab singkat."
    assert state.bodies[-1]["messages"] == [{"role": "user", "content": "halo"}]
    chat = [
        Message(role=Role.SYSTEM, content="Satu."),
        Message(role=Role.USER, content="pertama"),
        Message(role=Role.ASSISTANT, content="Echo: pertama"),
        Message(role=Role.USER, content="kedua"),
    ]
    assert model.generate(chat, system="Nol.").text == "Echo: kedua"
    assert state.bodies[-1]["system"] == "Nol.\n\nSatu."
    assert [m["role"] for m in state.bodies[-1]["messages"]] == ["user", "assistant", "user"]
    model.generate("tanpa sistem")
    assert "system" not in state.bodies[-1]


def test_stop_sequences_are_passed_on(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, state = fake
    model = fondasi.model("anthropic:claude-test", settings_for(url, tmp_path))
    answer = model.generate("satu dua tiga", stop=["dua"])
    assert answer.text.strip() == "Echo: satu" and answer.finish_reason == "stop"
    assert state.bodies[-1]["stop_sequences"] == ["dua"]


def test_missing_usage_is_counted_with_the_bundled_tokenizer(
    fake: tuple[str, FakeState], tmp_path: Path
) -> None:
    url, _ = fake
    answer = fondasi.model("anthropic:no-usage", settings_for(url, tmp_path)).generate("halo dunia")
    assert answer.text == "Echo: halo dunia"
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0


def test_429_is_retried_honouring_retry_after(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, state = fake
    model = fondasi.model("anthropic:flaky-429", settings_for(url, tmp_path, retries=3))
    assert model.generate("halo").text == "Echo: halo"
    assert state.calls["flaky-429"] == 3 and model.backend.attempts == 3


def test_529_overloaded_is_retried(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, state = fake
    model = fondasi.model("anthropic:flaky-529", settings_for(url, tmp_path, retries=2))
    model.backend.sleep = lambda _: None  # the backoff is not the subject here
    assert model.generate("halo").text == "Echo: halo"
    assert state.calls["flaky-529"] == 2


def test_500s_fail_after_the_retries(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, state = fake
    before = state.calls["always-500"]
    model = fondasi.model("anthropic:always-500", settings_for(url, tmp_path, retries=1))
    model.backend.sleep = lambda _: None
    with pytest.raises(ProviderError, match=r"HTTP 500.*Internal server error") as error:
        model.generate("halo")
    assert error.value.retryable and state.calls["always-500"] - before == 2


def test_a_stalled_server_times_out(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, _ = fake
    model = fondasi.model("anthropic:stall", settings_for(url, tmp_path, retries=0))
    start = time.monotonic()
    with pytest.raises(ProviderError, match="timed out"):
        model.generate("halo")
    assert time.monotonic() - start < 2.9  # the 1 s timeout, not the 3 s stall


@pytest.mark.parametrize("name", ["reset", "error-event"])
def test_a_stream_broken_mid_way_ends_with_a_clear_error(
    name: str, fake: tuple[str, FakeState], tmp_path: Path
) -> None:
    url, _ = fake
    model = fondasi.model(f"anthropic:{name}", settings_for(url, tmp_path))
    received: list[str] = []

    def read_all() -> None:
        received.extend(chunk.text for chunk in model.stream("satu dua tiga empat"))

    with pytest.raises(ProviderError, match="stream broke off"):
        read_all()
    assert "".join(received) == "Echo: satu"


def test_an_error_event_says_what_the_provider_said(
    fake: tuple[str, FakeState], tmp_path: Path
) -> None:
    url, _ = fake
    model = fondasi.model("anthropic:error-event", settings_for(url, tmp_path))
    with pytest.raises(ProviderError, match=r"stream broke off.*Overloaded") as error:
        list(model.stream("satu dua tiga empat"))
    assert error.value.retryable  # an overloaded_error before any text would be retried


def test_garbage_from_the_server_is_an_error(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, _ = fake
    model = fondasi.model("anthropic:garbage", settings_for(url, tmp_path))
    with pytest.raises(ProviderError, match="cannot read"):
        model.generate("satu dua tiga")


def test_unknown_model_passes_the_providers_message_on(
    fake: tuple[str, FakeState], tmp_path: Path
) -> None:
    url, _ = fake
    model = fondasi.model("anthropic:missing", settings_for(url, tmp_path))
    with pytest.raises(ProviderError, match=r"HTTP 404.*model: missing") as error:
        model.generate("halo")
    assert not error.value.retryable


def test_a_wrong_key_is_named_but_never_shown(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, _ = fake
    wrong = "sk-ant-wrong-secret-key-98765"
    model = fondasi.model("anthropic:claude-test", settings_for(url, tmp_path, key=wrong))
    with pytest.raises(ProviderError) as error:
        model.generate("halo")
    shown = "".join(traceback.format_exception(error.value))  # the whole chain, as printed
    assert "refused" in str(error.value) and "ANTHROPIC_API_KEY" in str(error.value)
    assert "765" not in shown and "sk-ant-" not in shown
    assert wrong not in repr(error.value.__dict__)


def test_key_errors_name_the_variable(
    fake: tuple[str, FakeState], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    settings = Settings.load(home=tmp_path / "home")
    with pytest.raises(BadInputError, match="ANTHROPIC_API_KEY"):
        fondasi.model("anthropic:claude-haiku-4-5", settings)
    url, _ = fake
    monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-wrong-secret-key-98765")
    model = fondasi.model("anthropic:claude-haiku-4-5", Settings.load(home=tmp_path / "home"))
    with pytest.raises(ProviderError, match=r"refused; check ANTHROPIC_API_KEY$"):
        model.generate("halo")


def test_catalog_ids_reach_the_provider_through_environment_variables(
    fake: tuple[str, FakeState], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = fake
    monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    settings = Settings.load(home=tmp_path / "home")
    model = fondasi.model("claude-haiku-4-5", settings)  # a card with a live Anthropic offer
    assert model.spec.extra["model"] == "claude-haiku-4-5-20251001"
    assert model.generate("halo").text == "Echo: halo"
    assert state.calls["claude-haiku-4-5-20251001"] >= 1


def test_a_wrong_base_url_is_a_connection_error(tmp_path: Path) -> None:
    settings = settings_for("http://127.0.0.1:9", tmp_path, retries=0)
    with pytest.raises(ProviderError, match="cannot reach"):
        fondasi.model("anthropic:claude-test", settings).generate("halo")


def test_retry_after_reads_seconds_milliseconds_and_dates() -> None:
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # past
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None
