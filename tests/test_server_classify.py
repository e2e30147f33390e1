"""POST /v1/classify: a model fine-tuned by ``fondasi tune`` served with its own labels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

import fondasi
from fondasi.data import bundled
from fondasi.monitor import Store
from fondasi.settings import Settings
from fondasi.tune.local import tune
from fondasi.tune.options import TuneOptions

from .serving import Running, running

SMOL = "smollm2-135m-instruct"
E5 = "multilingual-e5-small"
TEXTS = ["Pelayanannya cepat dan ramah, saya puas sekali.", "Paket saya hilang, kecewa berat."]


@pytest.fixture(scope="module")
def tuned_dir(shared_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MiniLM with LoRA, a few steps on the bundled Indonesian sentiment data."""
    out = tmp_path_factory.mktemp("tuned") / "minilm-lora"
    options = TuneOptions(
        base="all-minilm-l6-v2",
        data=bundled("sentiment3-id-train"),
        eval_data=bundled("sentiment3-id-dev"),
        out=out,
        method="lora",
        max_steps=4,
        batch_size=8,
        max_length=48,
    )
    tune(options, shared_settings, progress=False)
    return out


@pytest.fixture(scope="module")
def server(
    shared_settings: Settings,
    tuned_dir: Path,
    smol: Any,
    e5: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    db = tmp_path_factory.mktemp("serve") / "logs.db"
    models = [f"tuned:{tuned_dir}", SMOL, E5]
    with running(
        shared_settings, {SMOL: smol, E5: e5}, models=models, db=str(db), log_text=True
    ) as started:
        yield started


def post(server: Running, body: dict[str, Any], path: str = "/v1/classify") -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=120)


def test_a_tuned_classifier_answers_with_its_own_labels(
    server: Running, tuned_dir: Path, shared_settings: Settings
) -> None:
    answer = post(server, {"model": f"tuned:{tuned_dir}", "input": TEXTS})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["object"] == "list" and body["id"].startswith("classify-")
    assert sorted(body["classes"]) == ["negatif", "netral", "positif"]
    local = fondasi.model(f"tuned:{tuned_dir}", shared_settings).classify(TEXTS)
    for row, expected in zip(body["data"], local, strict=True):
        assert row["num_classes"] == 3 and sum(row["probs"]) == pytest.approx(1.0, abs=1e-4)
        assert row["label"] == expected[0].label
        scores = {one["label"]: one["score"] for one in row["labels"]}
        for one in expected:
            assert scores[one.label] == pytest.approx(one.score, abs=1e-5)
        # probs follow the response's class order
        assert row["probs"][body["classes"].index(row["label"])] == max(row["probs"])
    assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["completion_tokens"] == 0


def test_the_openai_sdk_reaches_it_and_vllm_s_path_works(server: Running, tuned_dir: Path) -> None:
    with openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0) as client:
        body = client.post(
            "/classify", body={"model": f"tuned:{tuned_dir}", "input": TEXTS[0]}, cast_to=object
        )
    assert isinstance(body, dict) and len(body["data"]) == 1
    bare = post(server, {"model": f"tuned:{tuned_dir}", "input": TEXTS[0]}, path="/classify")
    assert bare.status_code == 200 and bare.json()["data"][0]["label"] == body["data"][0]["label"]


def test_embedding_and_language_models_classify_zero_shot_against_labels(
    server: Running,
) -> None:
    labels = {"positif": "ulasan yang memuji", "negatif": "ulasan yang mengeluh"}
    by_e5 = post(server, {"model": E5, "input": TEXTS, "labels": labels})
    assert by_e5.status_code == 200, by_e5.text
    assert by_e5.json()["classes"] == ["positif", "negatif"]
    assert [row["label"] for row in by_e5.json()["data"]] == ["positif", "negatif"]
    by_smol = post(server, {"model": SMOL, "input": TEXTS[0], "labels": ["positive", "negative"]})
    assert by_smol.status_code == 200, by_smol.text
    assert by_smol.json()["data"][0]["label"] in {"positive", "negative"}


def test_examples_make_an_embedding_model_classify_few_shot(server: Running) -> None:
    examples = [
        {"text": "Mantap, barangnya bagus dan cepat sampai", "label": "positif"},
        {"text": "Pelayanannya ramah, saya puas", "label": "positif"},
        {"text": "Barangnya rusak, saya kecewa", "label": "negatif"},
        {"text": "Pengiriman lambat sekali, kapok", "label": "negatif"},
    ]
    answer = post(server, {"model": E5, "input": TEXTS, "examples": examples})
    assert answer.status_code == 200, answer.text
    assert answer.json()["classes"] == ["positif", "negatif"]
    assert [row["label"] for row in answer.json()["data"]] == ["positif", "negatif"]


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        ({"model": E5, "input": TEXTS[0]}, "labels", "send the candidates in 'labels'"),
        ({"model": E5, "input": [], "labels": ["a", "b"]}, "input", "empty"),
        ({"model": E5, "input": ["ok", " "], "labels": ["a", "b"]}, "input", "non-empty"),
        ({"model": E5, "input": [1, 2], "labels": ["a", "b"]}, "input", "token arrays"),
        ({"model": E5, "input": "ok", "labels": ["a", "a"]}, "labels", "distinct"),
        ({"model": E5, "input": "ok", "labels": ["a"]}, "labels", "at least two"),
        ({"model": E5, "input": 3}, "input", ""),
        ({"model": E5, "input": "ok", "examples": [{"text": "a"}]}, "examples", "example 1"),
        ({"model": E5, "input": "ok", "examples": [{"text": "", "label": "x"}]}, "examples", ""),
    ],
)
def test_bad_requests_say_what_is_wrong(
    server: Running, body: dict[str, Any], param: str, says: str
) -> None:
    answer = post(server, body)
    assert answer.status_code in (400, 422), answer.text
    error = answer.json()["error"]
    assert says in error["message"]
    if answer.status_code == 400:
        assert error["param"].startswith(param)


def test_an_unknown_model_names_the_served_ones(server: Running, tuned_dir: Path) -> None:
    answer = post(server, {"model": "multilingual-e5-smal", "input": "ok", "labels": ["a", "b"]})
    assert answer.status_code == 404
    assert E5 in answer.json()["error"]["message"]


def test_classify_calls_are_logged_with_the_label(server: Running, tuned_dir: Path) -> None:
    assert post(server, {"model": f"tuned:{tuned_dir}", "input": TEXTS[1]}).status_code == 200
    server.flush()
    store = Store(str(server.state.config.db))
    rows = [r for r in store.requests(limit=50) if r.route == "classify"]
    assert rows and rows[0].prompt_tokens > 0
    assert rows[0].response_text in {"positif", "negatif", "netral"}
    metrics = httpx.get(server.url + "/metrics", timeout=30).text
    assert 'route="classify"' in metrics


def test_a_classifier_with_its_own_labels_refuses_examples(
    server: Running, tuned_dir: Path
) -> None:
    body = {"model": f"tuned:{tuned_dir}", "input": "ok", "examples": [{"text": "a", "label": "b"}]}
    answer = post(server, body)
    assert answer.status_code == 400 and "takes no examples" in answer.json()["error"]["message"]
