"""Fallback chains: a failing or unavailable model hands over to the next, on record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

import fondasi
from fondasi.errors import BadInputError, FondasiError
from fondasi.models.router import Fallback
from fondasi.providers import ProviderConfig
from fondasi.settings import Settings

from .conftest import Cli
from .fakes.openai_server import KEY, FakeState, running


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    with running(FakeState()) as url:
        yield url


def settings_for(url: str, tmp_path: Path, **extra: Any) -> Settings:
    provider = ProviderConfig(adapter="openai", base_url=url, api_key=SecretStr(KEY), timeout_s=1.0)
    return Settings.load(home=tmp_path / "home", providers={"fake": provider}, retries=0, **extra)


def test_a_dead_provider_falls_back_and_says_so(fake: str, tmp_path: Path) -> None:
    chain = fondasi.model("fake:always-500", settings_for(fake, tmp_path), ["fake:gpt-test"])
    assert isinstance(chain, Fallback)
    answer = chain.generate("halo")
    assert answer.model == "fake:gpt-test" and answer.text == "Echo: halo"
    assert (
        "fake:always-500: failed" in chain.explain()
        and "fake:gpt-test: answered" in chain.explain()
    )
    streamed = "".join(c.text for c in chain.stream("apa kabar"))
    assert streamed == "Echo: apa kabar"


def test_a_model_that_cannot_load_here_is_skipped(
    fake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    chain = fondasi.model("openai:gpt-4.1-mini", settings_for(fake, tmp_path), ["fake:gpt-test"])
    assert chain.generate("halo").model == "fake:gpt-test"
    assert "OPENAI_API_KEY" in chain.explain()


def test_fallbacks_from_config_and_to_a_local_model(
    fake: str, tmp_path: Path, smol: Any, shared_settings: Settings
) -> None:
    settings = settings_for(
        fake,
        tmp_path,
        fallbacks={"fake:always-500": ["smollm2-135m-instruct"]},
        cache=shared_settings.cache_dir,
    )
    chain = fondasi.model("fake:always-500", settings)
    answer = chain.generate("What is the capital of France?", max_tokens=20)
    assert answer.model == "smollm2-135m-instruct" and "Paris" in answer.text


def test_when_everything_fails_every_reason_is_named(fake: str, tmp_path: Path) -> None:
    chain = fondasi.model("fake:always-500", settings_for(fake, tmp_path), ["fake:missing"])
    with pytest.raises(FondasiError, match=r"always-500.*HTTP 500.*missing.*HTTP 404"):
        chain.generate("halo")


def test_a_bad_request_is_not_retried_elsewhere(fake: str, tmp_path: Path) -> None:
    chain = fondasi.model("fake:gpt-test", settings_for(fake, tmp_path), ["fake:gpt-test"])
    with pytest.raises(BadInputError, match="empty"):
        chain.generate("   ")
    with pytest.raises(BadInputError):
        Fallback([], lambda ref: None)  # type: ignore[arg-type,return-value]


def test_run_cli_falls_back_and_explains(cli: Cli, fake: str, home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'retries = 0\n[providers.fake]\nadapter = "openai"\nbase_url = "{fake}"\n'
        f'api_key = "{KEY}"\n'
    )
    done = cli(
        "run", "fake:always-500", "halo", "--fallback", "fake:gpt-test", "--json", "--explain"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["model"] == "fake:gpt-test"
    assert "fake:always-500: failed" in done.stderr
