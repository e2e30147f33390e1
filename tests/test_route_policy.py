"""The hybrid router's policy: monthly budgets, a latency SLO, and the ledger of calls."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

import fondasi
from fondasi.errors import BadInputError
from fondasi.models.route_policy import LatencyWatch
from fondasi.models.router import Fallback, PrivateRoute
from fondasi.monitor.ledger import Ledger, RoutedCall, month_start
from fondasi.monitor.store import Store
from fondasi.providers import ProviderConfig
from fondasi.settings import RouterSettings, Settings

from .conftest import Cli
from .fakes.openai_server import KEY, FakeState, running


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    with running(FakeState()) as url:
        yield url


def settings_for(url: str, tmp_path: Path, **router: Any) -> Settings:
    """OpenAI (a priced catalog model) and a second endpoint, both served by the fake."""
    openai = ProviderConfig(adapter="openai", base_url=url, api_key=SecretStr(KEY), timeout_s=1.0)
    return Settings.load(
        home=tmp_path / "home",
        providers={"openai": openai, "fake": openai},
        retries=0,
        router=RouterSettings(**router),
    )


def ledger_of(settings: Settings) -> Ledger:
    return Ledger(Store.open(settings))


def test_a_spent_budget_routes_to_the_local_model(fake: str, tmp_path: Path) -> None:
    settings = settings_for(
        fake,
        tmp_path,
        budgets={"openai": 0.000001},
        over_budget_model="smollm2-135m-instruct",
    )
    router = fondasi.model("gpt-5", settings)
    assert isinstance(router, Fallback)
    first = router.generate("halo", max_tokens=5)  # a few tokens at 1.25 USD per 1M
    assert first.model == "gpt-5" and first.cost_usd and first.cost_usd > 0
    ledger = ledger_of(settings)
    assert ledger.spent("openai") == pytest.approx(first.cost_usd)
    second = router.generate("What is the capital of France?", max_tokens=8)
    assert second.model == "smollm2-135m-instruct"
    assert "gpt-5: passed over (over budget" in router.explain()
    assert "USD spent on openai this month" in router.explain()
    calls = ledger.recent()
    assert [c.model for c in calls] == ["smollm2-135m-instruct", "gpt-5"]
    assert calls[0].provider is None and calls[1].provider == "openai"
    assert "over budget" in calls[0].decision


def test_spend_of_earlier_months_does_not_count(fake: str, tmp_path: Path) -> None:
    settings = settings_for(fake, tmp_path, budgets={"openai": 1.0})
    ledger = ledger_of(settings)
    last_month = month_start() - 3600
    ledger.record(
        RoutedCall(
            ts=last_month,
            model="gpt-5",
            provider="openai",
            cost_usd=50.0,
            answered=True,
            decision="gpt-5: answered",
        )
    )
    assert ledger.spent("openai") == 0.0
    ledger.record(
        RoutedCall(model="gpt-5", provider="openai", cost_usd=0.4, answered=True, decision="x")
    )
    assert ledger.spent("openai") == pytest.approx(0.4)
    assert fondasi.model("gpt-5", settings).generate("halo").model == "gpt-5"


def test_a_budget_with_nowhere_to_go_says_why(fake: str, tmp_path: Path) -> None:
    settings = settings_for(fake, tmp_path, budgets={"openai": 0.0})
    with pytest.raises(fondasi.FondasiError, match=r"over budget: 0\.00 of 0\.00 USD"):
        fondasi.model("gpt-5", settings).generate("halo")
    assert ledger_of(settings).recent()[0].answered is False


def test_budgets_leave_local_models_alone(tmp_path: Path) -> None:
    settings = Settings.load(
        home=tmp_path / "home",
        router=RouterSettings(budgets={"openai": 0.0}, latency_slo_ms=1.0),
    )
    model = fondasi.model("all-minilm-l6-v2", settings)
    assert isinstance(model, fondasi.Model)


def test_a_model_over_its_latency_slo_is_passed_over_then_probed(fake: str, tmp_path: Path) -> None:
    # Every real call takes more than a microsecond: after five calls the p95 breaks the SLO.
    settings = settings_for(fake, tmp_path, latency_slo_ms=0.001, slo_window=5)
    router = fondasi.model("fake:gpt-test", settings, fallbacks=["fake:backup"])
    answered = [router.generate("halo").model for _ in range(16)]
    assert answered[:5] == ["fake:gpt-test"] * 5
    assert answered[5:14] == ["fake:backup"] * 9
    assert answered[14:] == ["fake:gpt-test", "fake:backup"]  # the tenth skip is a probe
    newest, probe = ledger_of(settings).recent(2)
    assert "fake:gpt-test: passed over (p95 latency" in newest.decision
    assert "over the 0 ms SLO" in newest.decision and probe.decision == "fake:gpt-test: answered"


def test_latency_watch_needs_enough_calls_and_reads_the_p95() -> None:
    watch = LatencyWatch(slo_ms=100, window=20)
    for _ in range(4):
        watch.observe("m", 5.0)
    assert watch.p95("m") is None and watch.breach("m") is None
    for seconds in [0.01] * 18 + [0.5, 0.5]:
        watch.observe("m", seconds)
    assert watch.p95("m") == pytest.approx(500, rel=0.1)
    assert "p95 latency" in (watch.breach("m") or "")


def test_private_routes_are_recorded(fake: str, tmp_path: Path) -> None:
    settings = settings_for(fake, tmp_path).model_copy(
        update={"private_model": "smollm2-135m-instruct"}
    )
    router = fondasi.model("fake:gpt-test", settings)
    assert isinstance(router, PrivateRoute)
    router.generate("Call me at 0812-3456-7890", max_tokens=4)
    call = ledger_of(settings).recent()[0]
    assert call.model == "smollm2-135m-instruct" and "personal data (PHONE" in call.decision


def test_router_settings_are_checked(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("[router]\nbudgets = { openai = -5 }\n")
    with pytest.raises(BadInputError, match="budgets must be 0 or more USD"):
        Settings.load(home=home)
    (home / "config.toml").write_text("[router]\nlatency_slo = 5\n")
    with pytest.raises(BadInputError, match=r"router\.latency_slo"):
        Settings.load(home=home)


def test_spend_command_shows_budgets_and_recent_routes(cli: Cli, home: Path) -> None:
    ledger_of(Settings.load(home=home)).record(
        RoutedCall(
            ts=time.time(),
            model="gpt-5",
            provider="openai",
            cost_usd=0.5,
            answered=True,
            decision="gpt-5: answered",
        )
    )
    (home / "config.toml").write_text("[router]\nbudgets = { openai = 2.0 }\n")
    done = cli("spend")
    assert done.returncode == 0, done.stderr
    assert (
        "openai" in done.stdout
        and "0.50" in done.stdout
        and "2.00" in done.stdout
        and "1.50" in done.stdout
    )
    assert "gpt-5: answered" in done.stdout


def test_a_guard_policy_from_python_masks_before_the_call(tmp_path: Path) -> None:
    state = FakeState()
    with running(state) as url:
        model = fondasi.model("fake:gpt-test", settings_for(url, tmp_path), guard="standard")
        answer = model.generate("Cek pesanan, NIK saya 3201011501900001")
    sent = state.bodies[-1]["messages"][-1]["content"]
    assert "3201011501900001" not in sent and "[NIK" in sent
    assert answer.model == "fake:gpt-test"
    with pytest.raises(BadInputError, match=r"Did you mean.*standard"):
        fondasi.model("fake:gpt-test", settings_for(url, tmp_path), guard="stnadard")
