"""Personal data stays local: detection (Indonesian and international) and the private route."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

import fondasi
from fondasi.errors import BadInputError
from fondasi.guard import find_pii
from fondasi.models.router import PrivateRoute
from fondasi.providers import ProviderConfig
from fondasi.settings import Settings

from .conftest import Cli
from .fakes.openai_server import KEY, FakeState, running

PERSONAL = "Tolong cek pesanan saya. NIK 3201011501900001, HP 0812-3456-7890."


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        (PERSONAL, {"NIK", "PHONE"}),
        ("Email saya budi@contoh.co.id dan NPWP 01.234.567.8-901.000", {"EMAIL", "NPWP"}),
        ("Call +62 812 3456 7890 or pay with 4111 1111 1111 1111", {"PHONE", "CARD"}),
        ("server 10.0.0.12 uses key sk-abcdefghijklmnop1234", {"IP", "SECRET"}),
        ("What is the capital of France?", set()),
        ("Saya pesan 2 tiket kereta untuk 12 Januari, total Rp 1.500.000", set()),
        ("card 4111 1111 1111 1112 fails the checksum", set()),
    ],
)
def test_personal_data_is_found(text: str, kinds: set[str]) -> None:
    assert {finding.type for finding in find_pii(text)} == kinds


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[str, FakeState]]:
    state = FakeState()
    with running(state) as url:
        yield url, state


@pytest.fixture
def route(fake: tuple[str, FakeState], tmp_path: Path, shared_settings: Settings) -> Any:
    url, _ = fake
    provider = ProviderConfig(adapter="openai", base_url=url, api_key=SecretStr(KEY), timeout_s=2)
    settings = Settings.load(
        home=tmp_path / "home",
        providers={"fake": provider},
        private_model="smollm2-135m-instruct",
        cache=shared_settings.cache_dir,
    )
    model = fondasi.model("fake:gpt-test", settings)
    assert isinstance(model, PrivateRoute)
    return model


def test_clean_prompts_go_to_the_api(route: Any, fake: tuple[str, FakeState]) -> None:
    answer = route.generate("What is the capital of France?")
    assert answer.model == "fake:gpt-test" and answer.text.startswith("Echo:")
    assert "no personal data" in route.explain()


def test_personal_data_never_leaves(route: Any, fake: tuple[str, FakeState]) -> None:
    _, state = fake
    before = sum(state.calls.values())
    answer = route.generate(PERSONAL, max_tokens=10)
    assert answer.model == "smollm2-135m-instruct"
    assert "personal data (NIK, PHONE)" in route.explain()
    in_system = route.generate("Ringkas pesanan.", system=f"Pelanggan: {PERSONAL}", max_tokens=5)
    assert in_system.model == "smollm2-135m-instruct"
    marked = route.generate("Rencana merger rahasia.", confidential=True, max_tokens=5)
    assert marked.model == "smollm2-135m-instruct" and "confidential" in route.explain()
    streamed = list(route.stream(PERSONAL, max_tokens=5))
    assert streamed[-1].usage is not None
    assert sum(state.calls.values()) == before  # the fake API saw none of it


def test_the_private_model_must_be_local(fake: tuple[str, FakeState], tmp_path: Path) -> None:
    url, _ = fake
    provider = ProviderConfig(adapter="openai", base_url=url, api_key=SecretStr(KEY))
    settings = Settings.load(
        home=tmp_path / "home", providers={"fake": provider}, private_model="fake:other"
    )
    route = fondasi.model("fake:gpt-test", settings)
    with pytest.raises(BadInputError, match="must run locally"):
        route.generate(PERSONAL)


def test_cli_routes_and_refuses_confidential_prompts_to_an_api(
    cli: Cli, fake: tuple[str, FakeState], home: Path
) -> None:
    url, _ = fake
    home.mkdir(parents=True, exist_ok=True)
    config = f'[providers.fake]\nadapter = "openai"\nbase_url = "{url}"\napi_key = "{KEY}"\n'
    (home / "config.toml").write_text(config)
    refused = cli("run", "fake:gpt-test", "rahasia", "--confidential")
    assert refused.returncode == 2 and "private_model" in refused.stderr
    (home / "config.toml").write_text('private_model = "smollm2-135m-instruct"\n' + config)
    done = cli("run", "fake:gpt-test", PERSONAL, "--max-tokens", "5", "--json", "--explain")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["model"] == "smollm2-135m-instruct"
    assert "NIK" in done.stderr
