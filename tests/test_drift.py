"""Drift signals on synthetic windows in a real SQLite store, embedded with the real e5 model."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fondasi.errors import BadInputError
from fondasi.monitor import FeedbackRecord, RequestRecord, Store, drift_cache
from fondasi.monitor.drift import SIGNALS, DriftConfig, Window, check, check_all
from fondasi.monitor.drift_stats import ks_test, mmd_test, proportion_test, rank_test

MODEL = "support-bot"
NOW = 1_800_000_000.0

DISHES = ["nasi goreng", "rendang", "soto ayam", "gado-gado", "sate kambing", "opor ayam"]
ASKS = [
    "Bagaimana cara memasak {d} yang enak?",
    "Berapa lama merebus bumbu untuk {d}?",
    "Apa bahan utama {d} khas Padang?",
    "Resep {d} untuk delapan orang, tolong.",
    "Kenapa {d} saya terlalu asin?",
]
PRODUCTS = ["mortgage", "credit card", "savings account", "car loan", "index fund", "bond"]
FINANCE = [
    "What is the interest rate on a {d} this year?",
    "How do I close my {d} online?",
    "Is a fixed-rate {d} better than a variable one?",
    "What fees does the bank charge on a {d}?",
    "Can I transfer my {d} to another bank?",
]


def texts(templates: list[str], fill: list[str], n: int, seed: int) -> list[str]:
    """``n`` questions from one topic, in a seeded order."""
    rng = random.Random(seed)
    pool = [t.format(d=d) for t in templates for d in fill]
    return [rng.choice(pool) for _ in range(n)]


def record(
    n: int,
    ts: float,
    prompt: str | None,
    tokens: int,
    answer: str = "Baik, ini jawabannya.",
    blocked: bool = False,
    model: str = MODEL,
) -> RequestRecord:
    """One logged chat request (the prompt as the server logs it: JSON messages)."""
    return RequestRecord(
        id=f"chatcmpl-{model}-{n}",
        ts=ts,
        route="chat",
        model=model,
        version=model,
        status=400 if blocked else 200,
        latency_ms=50.0,
        prompt_tokens=12,
        completion_tokens=0 if blocked else tokens,
        prompt_text=None if prompt is None else json.dumps([{"role": "user", "content": prompt}]),
        response_text=None if blocked else answer,
        guard_blocked=blocked,
    )


def window(
    start: int,
    prompts: list[str | None],
    tokens: list[int],
    refusals: int = 0,
    ratings: list[int] | None = None,
    model: str = MODEL,
) -> list[RequestRecord | FeedbackRecord]:
    """Requests numbered from ``start``, a second apart, with optional thumbs."""
    out: list[RequestRecord | FeedbackRecord] = []
    for i, (prompt, length) in enumerate(zip(prompts, tokens, strict=True)):
        n = start + i
        answer = "Maaf, saya tidak bisa membantu itu." if i < refusals else "Tentu, begini caranya."
        out.append(record(n, NOW - 10_000 + n, prompt, length, answer, model=model))
        if ratings is not None:
            out.append(
                FeedbackRecord(
                    response_id=f"chatcmpl-{model}-{n}", ts=NOW - 5000 + n, rating=ratings[i]
                )
            )
    return out


class Counting:
    """The e5 model as drift's embed function, counting the texts it embeds."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.texts = 0

    def __call__(self, batch: list[str]) -> Any:
        self.texts += len(batch)
        return self.model.embed(batch, "query")


CONFIG = DriftConfig(recent="40", reference="40", permutations=300)


def test_the_four_signals_are_registered() -> None:
    assert list(SIGNALS) == ["input_embedding", "output_length", "refusal_rate", "feedback_score"]


def test_tests_flag_shifts_and_not_noise() -> None:
    rng = np.random.default_rng(3)
    same_a, same_b = rng.normal(size=(60, 16)), rng.normal(size=(60, 16))
    assert mmd_test(same_a, same_b, 300)[1] > 0.05
    assert mmd_test(same_a, same_b + 0.8, 300)[1] < 0.01
    assert ks_test(list(rng.poisson(20, 50)), list(rng.poisson(20, 50)))[1] > 0.05
    assert ks_test(list(rng.poisson(20, 50)), list(rng.poisson(40, 50)))[1] < 0.01
    assert proportion_test(1, 50, 2, 50)[1] > 0.05
    diff, p = proportion_test(1, 50, 20, 50)
    assert diff == pytest.approx(0.38) and p < 0.01
    assert rank_test([1.0] * 20, [1.0] * 20) == (200.0, 1.0)
    assert rank_test([1.0] * 18 + [0.0] * 2, [0.0] * 15 + [1.0] * 5)[1] < 0.01


def test_same_traffic_raises_no_flag(store: Store, e5: Any) -> None:
    prompts = texts(ASKS, DISHES, 80, seed=1)
    lengths = [int(x) for x in np.random.default_rng(1).poisson(30, 80)]
    ratings = [1 if i % 5 else -1 for i in range(80)]
    store.write(window(0, prompts, lengths, refusals=0, ratings=ratings))
    result = check(store, MODEL, CONFIG, Counting(e5), "multilingual-e5-small", now=NOW)
    by_name = {s.name: s for s in result.signals}
    assert result.flagged == []
    assert all(s.status == "ok" for s in result.signals), [s.note for s in result.signals]
    assert (
        by_name["input_embedding"].recent_n == 40 and by_name["input_embedding"].reference_n == 40
    )
    assert result.recent.requests == 40 and result.reference.requests == 40
    assert result.recent.start is not None and result.reference.end is not None
    assert result.reference.end < result.recent.start


def test_every_kind_of_drift_is_flagged(store: Store, e5: Any) -> None:
    rng = np.random.default_rng(2)
    before = window(
        0,
        list(texts(ASKS, DISHES, 40, seed=2)),
        [int(x) for x in rng.poisson(30, 40)],
        refusals=1,
        ratings=[1] * 36 + [-1] * 4,
    )
    after = window(
        40,
        list(texts(FINANCE, PRODUCTS, 40, seed=3)),
        [int(x) for x in rng.poisson(80, 40)],
        refusals=14,
        ratings=[1] * 12 + [-1] * 28,
    )
    store.write([*before, *after])
    embed = Counting(e5)
    result = check(store, MODEL, CONFIG, embed, "multilingual-e5-small", now=NOW)
    by_name = {s.name: s for s in result.signals}
    assert result.flagged == list(SIGNALS)
    for signal in result.signals:
        assert signal.p_value is not None and signal.p_value < signal.threshold == 0.01
    assert by_name["output_length"].recent_value > by_name["output_length"].reference_value
    assert by_name["refusal_rate"].recent_value == pytest.approx(14 / 40)
    assert by_name["feedback_score"].recent_value == pytest.approx(12 / 40)
    assert "cosine shift" in (by_name["input_embedding"].note or "")
    assert embed.texts == 80
    # The vectors are kept: a second look embeds nothing new.
    again = check(store, MODEL, CONFIG, embed, "multilingual-e5-small", now=NOW)
    assert embed.texts == 80
    assert again.signals[0].statistic == pytest.approx(result.signals[0].statistic)
    # Another process may store the same vectors first: a second save is not an error.
    first = next(
        iter(
            drift_cache.load(
                store.engine, "multilingual-e5-small", ["chatcmpl-support-bot-0"]
            ).values()
        )
    )
    drift_cache.save(
        store.engine, "multilingual-e5-small", {"chatcmpl-support-bot-0": (NOW, first * 0)}
    )
    kept = drift_cache.load(store.engine, "multilingual-e5-small", ["chatcmpl-support-bot-0"])
    assert np.allclose(kept["chatcmpl-support-bot-0"], first) and first.shape == (384,)
    # A stricter threshold for one signal turns its flag off.
    strict = DriftConfig(
        recent="40", reference="40", permutations=300, thresholds={"refusal_rate": 1e-9}
    )
    relaxed = check(store, MODEL, strict, embed, "multilingual-e5-small", now=NOW)
    assert "refusal_rate" not in relaxed.flagged and "output_length" in relaxed.flagged


def test_unlogged_text_and_small_windows_are_not_flagged(store: Store) -> None:
    store.write(window(0, [None] * 50, [30] * 25 + [90] * 25))
    result = check(store, MODEL, CONFIG, None, now=NOW)
    by_name = {s.name: s for s in result.signals}
    embedding = by_name["input_embedding"]
    assert embedding.status == "n/a" and not embedding.flagged
    assert "not logged" in (embedding.note or "")
    assert by_name["output_length"].status == "n/a"  # 10 in the reference: too few
    assert "too few" in (by_name["output_length"].note or "")
    assert by_name["feedback_score"].status == "n/a"
    assert result.flagged == []
    small = check(store, MODEL, DriftConfig(recent="25", reference="25"), None, now=NOW)
    assert small.flagged == ["output_length"]


def test_time_windows_split_at_the_recent_span(store: Store) -> None:
    records = [record(i, NOW - 3 * 3600 + i * 60, None, 10) for i in range(30)]  # 3h ago
    records += [record(100 + i, NOW - 1800 + i * 30, None, 40) for i in range(30)]  # last 30m
    records += [record(200 + i, NOW - 86400 * 3 + i, None, 99) for i in range(30)]  # 3 days ago
    store.write(records)
    result = check(store, MODEL, DriftConfig(recent="1h", reference="1d"), None, now=NOW)
    assert result.recent.requests == 30 and result.reference.requests == 30
    assert result.recent.spec == "1h" and result.reference.spec == "1d"
    lengths = {s.name: s for s in result.signals}["output_length"]
    assert (lengths.reference_value, lengths.recent_value) == (10, 40)
    assert lengths.flagged


def test_check_all_covers_every_logged_model(store: Store) -> None:
    store.write(
        window(0, [None] * 3, [5] * 3, model="a") + window(0, [None] * 2, [5] * 2, model="b")
    )
    assert [d.model for d in check_all(store, CONFIG, now=NOW)] == ["a", "b"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"recent": "soon"}, "give a number of requests"),
        ({"reference": "0"}, "give a number of requests"),
        ({"recent": "5"}, "under min_samples"),
        ({"thresholds": {"lenght": 0.1}}, "unknown signals"),
        ({"thresholds": {"output_length": 2}}, "between 0 and 1"),
        ({"alpha": 0}, "greater than 0"),
        ({"alpha": 0.001}, "smallest p-value 500 permutations can give"),
    ],
)
def test_bad_settings_say_what_is_wrong(settings: dict[str, Any], message: str) -> None:
    with pytest.raises((BadInputError, ValueError), match=message):
        DriftConfig(**settings)


def test_windows_read_counts_and_spans() -> None:
    assert Window.parse("200") == Window(requests=200)
    assert Window.parse("90m").seconds == 5400
    assert Window.parse("3d").describe() == "3d"
    assert Window.parse("7d").describe() == "1w"
    assert Window.parse("200").describe() == "latest 200 requests"
    with pytest.raises(BadInputError, match="1h, 30m, 7d"):
        Window.parse("-3h")


def test_logged_prompts_are_never_sent_to_a_hosted_embedder(tmp_path: Path) -> None:
    from pydantic import SecretStr

    from fondasi.monitor.drift import load_embedder
    from fondasi.providers import ProviderConfig
    from fondasi.settings import Settings

    from .fakes.openai_server import KEY, FakeState, running

    state = FakeState()
    with running(state) as url:
        provider = ProviderConfig(adapter="openai", base_url=url, api_key=SecretStr(KEY))
        settings = Settings.load(home=tmp_path / "home", providers={"fake": provider})
        with pytest.raises(BadInputError, match="is a hosted model: set embedding_model"):
            load_embedder("fake:text-embedding-test", settings)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--drift-recent", "soon"], "error: drift recent: window 'soon'"),
        (["--drift-threshold", "refusal_rate"], "give SIGNAL=P-VALUE"),
        (["--drift-threshold", "lenght=0.1"], "unknown signals ['lenght']"),
        (["--drift-alpha", "0.001"], "use a larger threshold or more permutations"),
    ],
)
def test_stats_drift_options_fail_clearly(
    cli: Any, tmp_path: Path, args: list[str], message: str
) -> None:
    result = cli("stats", "--db", str(tmp_path / "none.db"), *args)
    assert result.returncode == 2
    assert message in result.stdout + result.stderr
