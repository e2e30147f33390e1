"""Model versions behind aliases, guard policies and LangChain, against a running server."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from pydantic import SecretStr

import fondasi
from fondasi.providers import ProviderConfig
from fondasi.settings import Settings

from .conftest import Cli
from .fakes.openai_server import KEY, FakeState
from .fakes.openai_server import running as fake_running
from .serving import Running, running

SMOL = "smollm2-135m-instruct"
ASK = [{"role": "user", "content": "Halo, siapa kamu?"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with fake_running(FakeState()) as url:
        yield url


@pytest.fixture
def versioned(upstream: str, smol: Any, model_cache: Path, tmp_path: Path) -> Iterator[Running]:
    provider = ProviderConfig(adapter="openai", base_url=upstream, api_key=SecretStr(KEY))
    settings = Settings.load(
        home=tmp_path / "home", cache=model_cache, providers={"fake": provider}
    )
    with running(
        settings,
        {SMOL: smol},
        models=[SMOL, "fake:gpt-a"],
        aliases={"support-bot": "fake:gpt-a"},
        db=str(tmp_path / "v.db"),
    ) as started:
        yield started


def _answered_by(sdk: openai.OpenAI, times: int) -> list[str]:
    return [
        sdk.chat.completions.create(model="support-bot", messages=ASK, max_tokens=4).model
        for _ in range(times)
    ]


def test_alias_canary_promote_rollback_without_restart(
    versioned: Running, cli: Cli, tmp_path: Path
) -> None:
    admin = versioned.url + "/admin/aliases"
    with openai.OpenAI(base_url=versioned.v1, api_key="x", max_retries=0) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="support-bot", messages=ASK, max_tokens=4
        )
        assert raw.parse().model == "fake:gpt-a"
        assert raw.headers["fondasi-model-version"] == "fake:gpt-a"
        listed = {m.id: m for m in sdk.models.list()}
        assert listed["support-bot"].model_extra == {"fondasi_alias": "support-bot -> fake:gpt-a"}

        split = httpx.post(
            admin + "/support-bot/canary", json={"model": "fake:gpt-b", "percent": 50}, timeout=30
        )
        assert split.status_code == 200, split.text
        versioned.state.rng.seed(7)
        seen = _answered_by(sdk, 24)
        assert set(seen) == {"fake:gpt-a", "fake:gpt-b"}

        promoted = cli("serve", "alias", "promote", "support-bot", "--db", str(tmp_path / "v.db"))
        assert promoted.returncode == 0, promoted.stderr
        assert "support-bot -> fake:gpt-b" in promoted.stdout
        deadline = time.monotonic() + 10  # the server re-reads aliases every second
        while set(_answered_by(sdk, 3)) != {"fake:gpt-b"} and time.monotonic() < deadline:
            time.sleep(0.2)
        assert set(_answered_by(sdk, 6)) == {"fake:gpt-b"}

        back = httpx.post(admin + "/support-bot/rollback", timeout=30)
        assert back.json()["describe"] == "support-bot -> fake:gpt-a (50%), fake:gpt-b (50%)"
    versioned.flush()
    rows = versioned.state.store.requests(model="support-bot", limit=1000)
    assert {r.version for r in rows} == {"fake:gpt-a", "fake:gpt-b"}
    assert any(r.decision and "(50%)" in r.decision for r in rows)
    history = httpx.get(admin + "/support-bot", timeout=30).json()["history"]
    assert [h["action"] for h in history] == ["set", "set", "set", "rollback"]


def test_admin_refuses_bad_changes(versioned: Running) -> None:
    admin = versioned.url + "/admin/aliases"
    unknown = httpx.post(admin + "/suport-bot/rollback", timeout=30)
    assert unknown.status_code == 404 and "Did you mean: support-bot" in unknown.text
    bad_target = httpx.put(admin + "/x", json={"model": "no-such-model-anywhere"}, timeout=30)
    assert bad_target.status_code == 400 and "cannot serve" in bad_target.text
    weights = httpx.put(
        admin + "/x",
        json={"targets": [{"model": SMOL, "weight": 60}, {"model": "fake:gpt-a", "weight": 30}]},
        timeout=30,
    )
    assert weights.status_code == 400 and "add up to 90" in weights.text
    both = httpx.put(admin + "/x", json={"model": SMOL, "targets": []}, timeout=30)
    assert both.status_code == 400


def test_cli_alias_commands(cli: Cli, tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    assert cli("serve", "alias", "set", "bot", SMOL, "--db", db).returncode == 0
    canary = cli(
        "serve", "alias", "canary", "bot", "tuned:runs/lora-7", "--percent", "10", "--db", db
    )
    assert f"bot -> {SMOL} (90%), tuned:runs/lora-7 (10%)" in canary.stdout
    listed = cli("serve", "alias", "list", "--db", db)
    assert "tuned:runs/lora-7" in listed.stdout and "10%" in listed.stdout
    history = cli("serve", "alias", "history", "bot", "--db", db)
    assert history.stdout.count("set") == 2
    back = cli("serve", "alias", "rollback", "bot", "--db", db)
    assert f"bot -> {SMOL}" in back.stdout
    wrong = cli("serve", "alias", "promote", "bto", "--db", db)
    assert wrong.returncode == 2 and "Did you mean: bot" in wrong.stderr


def test_strict_guard_blocks_and_logs_its_events(
    shared_settings: Settings, smol: Any, tmp_path: Path
) -> None:
    with (
        running(
            shared_settings, {SMOL: smol}, models=[SMOL], db=str(tmp_path / "g.db"), guard="strict"
        ) as guarded,
        openai.OpenAI(base_url=guarded.v1, api_key="x", max_retries=0) as sdk,
    ):
        personal = "Email saya budi.santoso@example.co.id, tolong hubungi."
        with pytest.raises(openai.BadRequestError) as blocked:
            sdk.chat.completions.create(
                model=SMOL, messages=[{"role": "user", "content": personal}], max_tokens=4
            )
        assert blocked.value.code == "content_filter"
        benign = [{"role": "user", "content": "What is the capital of France?"}]
        fine = sdk.chat.completions.create(model=SMOL, messages=benign, max_tokens=4)
        assert fine.choices[0].message.content is not None
        guarded.flush()
        rows = guarded.state.store.requests(limit=10)
        refused = next(r for r in rows if r.status == 400)
        assert refused.guard_blocked
        assert {(e.stage, e.type, e.action) for e in refused.guard_events} >= {
            ("input", "EMAIL", "block")
        }
        (summary,) = guarded.state.store.summary()
        assert summary.guard_blocked == 1 and summary.guard_events >= 1


def test_logged_text_is_redacted(shared_settings: Settings, smol: Any, tmp_path: Path) -> None:
    with (
        running(
            shared_settings,
            {SMOL: smol},
            models=[SMOL],
            db=str(tmp_path / "r.db"),
            guard="audit",  # flags only: the small model's answers are not what is tested
            log_text=True,
        ) as guarded,
        openai.OpenAI(base_url=guarded.v1, api_key="x", max_retries=0) as sdk,
    ):
        personal = "Nomor HP saya 0812-3456-7890, email budi@example.com. Apa kabar?"
        answer = sdk.chat.completions.create(
            model=SMOL, messages=[{"role": "user", "content": personal}], max_tokens=6
        )
        guarded.flush()
        row = guarded.state.store.request(answer.id)
        assert row is not None and row.prompt_text is not None
        assert "budi@example.com" not in row.prompt_text
        assert "0812-3456-7890" not in row.prompt_text
        assert "[EMAIL]" in row.prompt_text
        assert any(e.stage == "input" and e.filter == "pii" for e in row.guard_events)


def test_langchain_chat_openai_works_unchanged(versioned: Running) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(
        base_url=versioned.v1, api_key=SecretStr("x"), model=SMOL, max_tokens=8, max_retries=0
    )
    reply = chat.invoke("Sebutkan satu warna.")
    assert isinstance(reply.content, str) and reply.content.strip()
    assert reply.response_metadata["model_name"] == SMOL
    streamed = "".join(str(part.content) for part in chat.stream("Sebutkan satu warna."))
    assert streamed == reply.content


def test_hosted_models_images_timeouts_and_upstream_failures(
    upstream: str, model_cache: Path, tmp_path: Path
) -> None:
    provider = ProviderConfig(adapter="openai", base_url=upstream, api_key=SecretStr(KEY))
    settings = Settings.load(
        home=tmp_path / "home", cache=model_cache, providers={"fake": provider}, retries=0
    )
    served = [
        "fake:gpt-image-test",
        "fake:stall",
        "fake:always-500",
        "fake:reset",
        "fake:flaky-429",
    ]
    with (
        running(settings, {}, models=served, db=str(tmp_path / "h.db"), timeout_s=1.0) as hosted,
        openai.OpenAI(base_url=hosted.v1, api_key="x", max_retries=0) as sdk,
    ):
        picture = sdk.images.generate(model="fake:gpt-image-test", prompt="sawah di Bali", n=2)
        assert picture.data is not None and len(picture.data) == 2
        assert base64.b64decode(picture.data[0].b64_json or "")[:4] == b"\x89PNG"
        with pytest.raises(openai.InternalServerError) as slow:
            sdk.chat.completions.create(model="fake:stall", messages=ASK, max_tokens=4)
        assert slow.value.status_code == 504
        with pytest.raises(openai.InternalServerError) as broken:
            sdk.chat.completions.create(model="fake:always-500", messages=ASK, max_tokens=4)
        assert broken.value.status_code == 502
        assert "upstream" in str(broken.value.body)
        with pytest.raises(openai.RateLimitError) as limited:  # the provider's 429, passed on
            sdk.chat.completions.create(model="fake:flaky-429", messages=ASK, max_tokens=4)
        assert limited.value.response.headers["retry-after"] == "1"
        stream = sdk.chat.completions.create(
            model="fake:reset", messages=ASK, max_tokens=16, stream=True
        )
        with pytest.raises(openai.APIError):  # the upstream broke off mid-stream
            list(stream)
        hosted.flush()
        rows = {r.model: r for r in hosted.state.store.requests(limit=10)}
    assert rows["fake:stall"].status == 504
    assert rows["fake:always-500"].status == 502
    assert rows["fake:reset"].status == 200 and rows["fake:reset"].error
    assert rows["fake:gpt-image-test"].status == 200
    (failed,) = [s for s in hosted.state.store.summary() if s.model == "fake:reset"]
    assert failed.errors == 1  # a stream broken after its 200 still counts as an error


def test_requests_are_priced_by_the_card(upstream: str, model_cache: Path, tmp_path: Path) -> None:
    provider = ProviderConfig(adapter="openai", base_url=upstream, api_key=SecretStr(KEY))
    settings = Settings.load(
        home=tmp_path / "home", cache=model_cache, providers={"openai": provider}
    )
    with (
        running(settings, {}, models=["gpt-4.1-mini"], db=str(tmp_path / "c.db")) as priced,
        openai.OpenAI(base_url=priced.v1, api_key="x", max_retries=0) as sdk,
    ):
        answer = sdk.chat.completions.create(model="gpt-4.1-mini", messages=ASK, max_tokens=8)
        priced.flush()
        row = priced.state.store.request(answer.id)
    card = fondasi.card("gpt-4.1-mini")
    assert card.pricing is not None and answer.usage is not None
    price = card.pricing.input_per_1m or 0.0
    expected = answer.usage.prompt_tokens * price + answer.usage.completion_tokens * (
        card.pricing.output_per_1m or 0.0
    )
    assert row is not None and row.cost_usd == pytest.approx(expected / 1e6)
    assert row.cost_usd > 0


def test_a_fallback_chain_says_which_model_answered(
    upstream: str, model_cache: Path, tmp_path: Path
) -> None:
    provider = ProviderConfig(adapter="openai", base_url=upstream, api_key=SecretStr(KEY))
    settings = Settings.load(
        home=tmp_path / "home",
        cache=model_cache,
        providers={"fake": provider},
        retries=0,
        fallbacks={"fake:always-500": ["fake:gpt-backup"]},
    )
    with (
        running(settings, {}, models=["fake:always-500"], db=str(tmp_path / "f.db")) as chain,
        openai.OpenAI(base_url=chain.v1, api_key="x", max_retries=0) as sdk,
    ):
        raw = sdk.chat.completions.with_raw_response.create(
            model="fake:always-500", messages=ASK, max_tokens=4
        )
        assert raw.parse().model == "fake:gpt-backup"
        assert raw.headers["fondasi-model-version"] == "fake:gpt-backup"
        streamed = list(
            sdk.chat.completions.create(
                model="fake:always-500", messages=ASK, max_tokens=4, stream=True
            )
        )
        assert streamed[0].model == "fake:gpt-backup"
        chain.flush()
        row = chain.state.store.request(raw.parse().id)
    assert row is not None and row.version == "fake:gpt-backup"
    assert row.decision is not None and "fake:always-500" in row.decision


def test_dimensions_shorten_matryoshka_vectors_only(
    upstream: str, minilm: Any, model_cache: Path, tmp_path: Path
) -> None:
    import numpy as np

    provider = ProviderConfig(adapter="openai", base_url=upstream, api_key=SecretStr(KEY))
    settings = Settings.load(
        home=tmp_path / "home", cache=model_cache, providers={"openai": provider}
    )
    models = ["text-embedding-3-small", "all-minilm-l6-v2"]
    with (
        running(settings, {"all-minilm-l6-v2": minilm}, models=models) as served,
        openai.OpenAI(base_url=served.v1, api_key="x", max_retries=0) as sdk,
    ):
        whole = sdk.embeddings.create(model="text-embedding-3-small", input=["Halo dunia"])
        short = sdk.embeddings.create(
            model="text-embedding-3-small", input=["Halo dunia"], dimensions=4
        )
        with pytest.raises(openai.BadRequestError) as refused:
            sdk.embeddings.create(model="all-minilm-l6-v2", input=["Halo dunia"], dimensions=64)
    full, cut = np.array(whole.data[0].embedding), np.array(short.data[0].embedding)
    assert cut.shape == (4,)
    assert np.linalg.norm(cut) == pytest.approx(1.0, abs=1e-5)  # renormalised
    assert np.allclose(cut, full[:4] / np.linalg.norm(full[:4]), atol=1e-5)  # the prefix
    assert refused.value.body["param"] == "dimensions"  # type: ignore[index]
    assert "Matryoshka" in refused.value.message
