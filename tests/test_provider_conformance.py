"""One conformance suite over every hosted-API adapter, each against its local fake.

The fakes share a fault vocabulary (the model name picks the behaviour), so the same
behaviours are asserted for OpenAI, Anthropic, Gemini and Cohere alike.
"""

from __future__ import annotations

import gc
import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

import fondasi
from fondasi.backends import Capability
from fondasi.backends.hosted import Endpoint
from fondasi.backends.remote import ProviderError
from fondasi.providers import BUILTIN_PROVIDERS, ProviderConfig
from fondasi.settings import Settings

# Each test builds fresh SDK clients; some SDKs leave their pooled sockets for the garbage
# collector to close, which Python reports as a ResourceWarning in whichever later test
# happens to collect them. That is the SDKs' noise, not a failure of the behaviour tested.
pytestmark = pytest.mark.filterwarnings(
    "ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
)


@pytest.fixture(autouse=True)
def collect_clients() -> Iterator[None]:
    """Collect this test's SDK clients now, under this module's filter, not in a later test."""
    yield
    gc.collect()


@dataclass(frozen=True)
class Provider:
    """A provider, the fake that stands in for it, and a model name it answers."""

    name: str
    fake: str  # module under tests.fakes
    model: str


PROVIDERS = [
    Provider("openai", "openai_server", "gpt-test"),
    Provider("anthropic", "anthropic_server", "claude-test"),
    Provider("google", "gemini_server", "gemini-test"),
    Provider("cohere", "cohere_server", "command-test"),
]


@pytest.fixture(scope="module", params=PROVIDERS, ids=[p.name for p in PROVIDERS])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Provider, Any, Any, str]]:
    provider: Provider = request.param
    module = importlib.import_module(f"tests.fakes.{provider.fake}")
    state = module.FakeState()
    with module.running(state) as url:
        yield provider, module, state, url


def model(
    served: tuple[Provider, Any, Any, str], tmp_path: Path, name: str, key: str | None = None
) -> Any:
    provider, module, state, url = served
    state.calls.clear()  # the flaky models count their calls
    config = BUILTIN_PROVIDERS[provider.name].model_copy(
        update={"base_url": url, "api_key": SecretStr(key or module.KEY), "timeout_s": 1.0}
    )
    settings = Settings.load(home=tmp_path / "home", providers={provider.name: config}, retries=2)
    return fondasi.model(f"{provider.name}:{name}", settings)


def test_answers_with_usage(served: Any, tmp_path: Path) -> None:
    chat = model(served, tmp_path, served[0].model)
    assert {Capability.GENERATE, Capability.CHAT} <= chat.capabilities
    answer = chat.generate("halo dunia", system="Jawab singkat.")
    assert answer.text == "Echo: halo dunia" and answer.finish_reason == "stop"
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0


def test_streams_the_same_answer(served: Any, tmp_path: Path) -> None:
    chat = model(served, tmp_path, served[0].model)
    chunks = list(chat.stream("satu dua tiga"))
    assert "".join(c.text for c in chunks) == "Echo: satu dua tiga"
    assert chunks[-1].usage is not None


# How each provider is told to answer in JSON: its own flag, or fondasi's instruction.
ASKED_FOR_JSON = {
    "openai": lambda body: body["response_format"] == {"type": "json_object"},
    "anthropic": lambda body: "single JSON object" in str(body["system"]),
    "google": lambda body: body["generationConfig"]["responseMimeType"] == "application/json",
    "cohere": lambda body: body["response_format"] == {"type": "json_object"},
}


def test_json_mode_answers_one_object(served: Any, tmp_path: Path) -> None:
    provider, _, state, _ = served
    chat = model(served, tmp_path, provider.model)
    answer = chat.generate('Kota: {"kota": "Bandung"}', json_mode=True)
    value = json.loads(answer.text)
    assert isinstance(value, dict) and "Bandung" in answer.text
    assert ASKED_FOR_JSON[provider.name](state.bodies[-1])
    streamed = "".join(c.text for c in chat.stream('{"kota": "Medan"}', json_mode=True))
    assert isinstance(json.loads(streamed), dict) and "Medan" in streamed


def test_images_are_read_where_the_adapter_can(served: Any, tmp_path: Path) -> None:
    import skimage.data
    from PIL import Image

    provider, _, _, _ = served
    chat = model(served, tmp_path, provider.model)
    photo = tmp_path / "kucing.png"
    Image.fromarray(skimage.data.chelsea()).save(photo)
    if provider.name == "cohere":  # Cohere's chat adapter is text-only
        assert Capability.VISION_CHAT not in chat.capabilities
        with pytest.raises(fondasi.CapabilityError, match="cannot vision"):
            chat.generate("Apa ini?", images=[str(photo)])
        return
    answer = chat.generate("Apa ini?", images=[str(photo), skimage.data.coffee()])
    assert answer.text == "Echo: Apa ini? [2 images]"
    linked = chat.generate("Dan ini?", images="https://example.org/kucing.jpg")
    assert linked.text == "Echo: Dan ini? [1 image]"
    notes = tmp_path / "catatan.txt"
    notes.write_text("bukan gambar")
    with pytest.raises(fondasi.BadInputError, match="not an image"):
        chat.generate("Apa ini?", images=[str(notes)])
    with pytest.raises(fondasi.BadInputError, match="no such image file"):
        chat.generate("Apa ini?", images=[str(tmp_path / "hilang.png")])


def test_max_tokens_ends_with_length(served: Any, tmp_path: Path) -> None:
    answer = model(served, tmp_path, served[0].model).generate("a b c d e f", max_tokens=2)
    assert answer.finish_reason == "length" and len(answer.text.split()) <= 2


def test_rate_limits_are_retried(served: Any, tmp_path: Path) -> None:
    flaky = model(served, tmp_path, "flaky-429")
    assert flaky.generate("halo").text == "Echo: halo"
    assert flaky.backend.attempts == 3


def test_server_errors_fail_after_retries(served: Any, tmp_path: Path) -> None:
    broken = model(served, tmp_path, "always-500")
    with pytest.raises(ProviderError) as error:
        broken.generate("halo")
    assert error.value.status == 500 and broken.backend.attempts == 3


def test_unknown_model_passes_the_message_on(served: Any, tmp_path: Path) -> None:
    with pytest.raises(ProviderError) as error:
        model(served, tmp_path, "missing").generate("halo")
    assert error.value.status == 404 and "missing" in str(error.value)


def test_a_stall_times_out(served: Any, tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match=r"(?i)time"):
        model(served, tmp_path, "stall").generate("halo")


def test_a_reset_mid_stream_ends_with_an_error(served: Any, tmp_path: Path) -> None:
    shown: list[str] = []

    def read() -> None:
        shown.extend(c.text for c in model(served, tmp_path, "reset").stream("a b c d e"))

    with pytest.raises(ProviderError, match="broke off"):
        read()
    assert "".join(shown).startswith("Echo:")


def test_a_wrong_key_is_refused_and_never_shown(served: Any, tmp_path: Path) -> None:
    wrong = "wrong-secret-key-4242424242"
    with pytest.raises(ProviderError) as error:
        model(served, tmp_path, served[0].model, key=wrong).generate("halo")
    assert "4242" not in str(error.value)
    assert any(var in str(error.value) for var in BUILTIN_PROVIDERS[served[0].name].key_env)


def test_the_endpoint_holds_the_key_without_showing_it(served: Any, tmp_path: Path) -> None:
    provider, module, _, url = served
    config = BUILTIN_PROVIDERS[provider.name].model_copy(
        update={"base_url": url, "api_key": SecretStr(module.KEY), "timeout_s": 1.0}
    )
    endpoint = Endpoint.of(provider.name, config)
    assert (endpoint.base_url, endpoint.timeout_s) == (url, 1.0)
    assert endpoint.key_env == tuple(BUILTIN_PROVIDERS[provider.name].key_env)
    assert endpoint.api_key() == module.KEY and module.KEY not in f"{endpoint!r} {endpoint}"
    backend = model(served, tmp_path, provider.model).backend.backend  # inside Resilient
    assert backend.remote_endpoint.startswith(f"{provider.name}:")
    assert module.KEY not in repr(vars(backend))


def test_a_missing_key_names_the_variable(
    served: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = served[0]
    for var in BUILTIN_PROVIDERS[provider.name].key_env:
        monkeypatch.delenv(var, raising=False)
    settings = Settings.load(home=tmp_path / "home")
    with pytest.raises(fondasi.BadInputError, match=BUILTIN_PROVIDERS[provider.name].key_env[0]):
        fondasi.model(f"{provider.name}:{provider.model}", settings)


def test_configured_provider_without_the_builtin_fields(served: Any, tmp_path: Path) -> None:
    provider, module, _, url = served
    bare = ProviderConfig(
        adapter=BUILTIN_PROVIDERS[provider.name].adapter,
        base_url=url,
        api_key=SecretStr(module.KEY),
        timeout_s=1.0,
    )
    settings = Settings.load(home=tmp_path / "home", providers={provider.name: bare})
    answer = fondasi.model(f"{provider.name}:{provider.model}", settings).generate("halo")
    assert answer.text == "Echo: halo"
