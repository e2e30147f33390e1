"""Local fine-tuning: every method on MiniLM, the seed's LoRA on SmolLM2, reload, merge,
resume after a kill, and bad input."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

import fondasi
from fondasi.data import bundled, read_jsonl
from fondasi.errors import BadInputError, UnknownChoiceError
from fondasi.settings import Settings
from fondasi.tune.local import tune
from fondasi.tune.methods import METHODS
from fondasi.tune.options import TuneOptions
from fondasi.tune.recipes import HeadMethod

from .conftest import Cli

MINILM = "all-minilm-l6-v2"
SMOL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small two-label slice of the bundled English training data (MiniLM reads English)."""
    folder = tmp_path_factory.mktemp("data")
    train = [r for r in read_jsonl(bundled("sentiment3-en-train")) if r["label"] != "neutral"]
    dev = [r for r in read_jsonl(bundled("sentiment3-en-dev")) if r["label"] != "neutral"]
    paths = folder / "train.jsonl", folder / "dev.jsonl"
    for path, rows in zip(paths, (train[:64], dev[:24]), strict=True):
        path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    return paths


@pytest.fixture(scope="module")
def instructions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("instruct") / "instruct.jsonl"
    rows = read_jsonl(bundled("instruct-id"))[:24]
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    return path


def options(files: tuple[Path, Path], out: Path, **changes: Any) -> TuneOptions:
    base: dict[str, Any] = {
        "base": MINILM,
        "data": files[0],
        "eval_data": files[1],
        "out": out,
        "max_steps": 6,
        "batch_size": 8,
        "max_length": 64,
    }
    return TuneOptions(**{**base, **changes})


def assert_base_unchanged(peft_model: Any, settings: Settings) -> None:
    """Every weight of the base file is in the adapted model, bit-identical."""
    from fondasi.backends.tuned import base_folder

    original = load_file(str(base_folder(MINILM, settings) / "model.safetensors"))
    # peft keeps an adapted layer's own weight under `base_layer`, and a layer that trains
    # whole (the pooler) as an untouched `original_module` beside its trained copy.
    state = {
        k.replace(".base_layer", "").replace(".original_module", ""): v
        for k, v in peft_model.get_base_model().state_dict().items()
        if "modules_to_save" not in k
    }
    for key, tensor in original.items():
        if key.endswith("position_ids"):  # a buffer of 0..n, not a weight; not saved any more
            continue
        found = [k for k in state if k == key or k.endswith("." + key)]
        assert found, key
        assert all(torch.equal(state[k], tensor) for k in found), key


def logits(model: Any, tokenizer: Any, texts: list[str]) -> torch.Tensor:
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        return model(**batch).logits


# distill needs a teacher: test_tune_trends.py trains it. The head methods (linear-head,
# knn, hybrid, setfit) run without the Trainer: test_recipes.py covers them.
TRAINER_METHODS = sorted(m.name for m in METHODS.values() if not isinstance(m, HeadMethod))


@pytest.mark.parametrize("name", sorted(set(TRAINER_METHODS) - {"distill"}))
def test_every_method_trains_and_reloads(
    name: str, sentiment: tuple[Path, Path], tmp_path: Path, shared_settings: Settings
) -> None:
    out = tmp_path / name
    # Virtual tokens start from noise and need more (cheap) steps to settle.
    steps = 24 if name == "prompt-tuning" else 6
    result = tune(
        options(sentiment, out, method=name, max_steps=steps), shared_settings, progress=False
    )
    state = json.loads(
        sorted((out / "checkpoints").glob("checkpoint-*"))[-1]
        .joinpath("trainer_state.json")
        .read_text()
    )
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert losses[-1] < losses[0]  # it learned something
    assert 0 < result.trainable <= result.total
    if name == "full":
        assert result.trainable == result.total
    else:
        assert result.trainable_share < 0.1
    meta = json.loads((out / "fondasi-tune.json").read_text())
    assert meta["method"] == name and meta["labels"] == ["negative", "positive"]
    assert "TF-IDF" in (out / "README.md").read_text()
    tuned = fondasi.model(f"tuned:{out}", shared_settings)
    ranking = tuned.classify("Great product, I am happy")
    assert {label.label for label in ranking} == {"negative", "positive"}
    if name != "full":  # adapters only: every base weight is bit-identical to the file's
        assert_base_unchanged(tuned.backend.model, shared_settings)


def test_lora_leaves_base_weights_identical_and_reloads_the_same(
    sentiment: tuple[Path, Path], tmp_path: Path, shared_settings: Settings
) -> None:
    out = tmp_path / "lora"
    result = tune(options(sentiment, out), shared_settings, progress=False)
    tuned = fondasi.model(f"tuned:{out}", shared_settings)
    peft_model = tuned.backend.model
    assert_base_unchanged(peft_model, shared_settings)
    adapters = [k for k in peft_model.state_dict() if "lora_B" in k]
    assert adapters and any(peft_model.state_dict()[k].abs().sum() > 0 for k in adapters)
    # BERT's default: adapters on query and value; the pooler and the new head train whole.
    config = json.loads((out / "adapter_config.json").read_text())
    assert sorted(config["target_modules"]) == ["query", "value"]
    assert {"pooler", "classifier"} <= set(config["modules_to_save"])
    trained = {k: v for k, v in peft_model.state_dict().items() if "pooler" in k}
    copy = next(v for k, v in trained.items() if "modules_to_save" in k and k.endswith("weight"))
    kept = next(v for k, v in trained.items() if "original_module" in k and k.endswith("weight"))
    assert not torch.equal(copy, kept)  # the pooler learned; the base's own stays as it was
    dev = read_jsonl(sentiment[1])
    guesses = [r[0].label for r in tuned.classify([row["text"] for row in dev])]
    reloaded = sum(g == row["label"] for g, row in zip(guesses, dev, strict=True)) / len(dev)
    assert reloaded == pytest.approx(result.metrics["accuracy"])  # as the run measured it
    texts = ["Terrible service", "Great, it arrived fast"]
    again = fondasi.model(f"tuned:{out}", shared_settings)
    first = logits(peft_model, tuned.backend.tokenizer, texts)
    second = logits(again.backend.model, again.backend.tokenizer, texts)
    assert torch.allclose(first, second)


def test_seed_lora_on_smollm2_merges_to_the_same_outputs(
    instructions: Path, tmp_path: Path, shared_settings: Settings
) -> None:
    from fondasi.tune.merge import merge_adapter

    out = tmp_path / "smol-lora"
    result = tune(
        TuneOptions(
            base=SMOL,
            data=instructions,
            out=out,
            method="lora",
            r=16,
            alpha=32,
            dropout=0.05,
            target_modules=["q_proj", "v_proj"],  # the seed's LoRA config, verbatim
            max_steps=3,
            batch_size=4,
            max_length=96,
        ),
        shared_settings,
        progress=False,
    )
    assert result.task == "causal-lm" and "loss" in result.metrics
    config = json.loads((out / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["lora_dropout"]) == (16, 32, 0.05)
    assert sorted(config["target_modules"]) == ["q_proj", "v_proj"]
    adapter = fondasi.model(f"tuned:{out}", shared_settings)
    merged = fondasi.model(
        f"tuned:{merge_adapter(out, tmp_path / 'merged', shared_settings)}", shared_settings
    )
    prompt = "Terjemahkan ke bahasa Inggris: Saya suka apel"
    a = adapter.score(prompt, [" I like apples", " The cat"])
    b = merged.score(prompt, [" I like apples", " The cat"])
    assert a == pytest.approx(b, abs=1e-3)
    assert adapter.generate(prompt, max_tokens=8).text == merged.generate(prompt, max_tokens=8).text


def test_a_killed_run_resumes_from_its_checkpoint(
    cli: Cli, sentiment: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "killed"
    args = [
        sys.executable, "-m", "fondasi", "tune", MINILM, "--data", str(sentiment[0]),
        "--eval-data", str(sentiment[1]), "--out", str(out), "--method", "lora",
        "--max-steps", "8", "--batch-size", "8", "--max-length", "64",
    ]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    marker = out / "checkpoints" / "checkpoint-4" / "trainer_state.json"  # written last
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert (out / "checkpoints" / "checkpoint-4").is_dir()
    assert not (out / "fondasi-tune.json").exists()  # it never finished
    done = cli(*args[3:], "--resume", "--json")
    assert done.returncode == 0, done.stderr
    state = json.loads((out / "checkpoints" / "checkpoint-8" / "trainer_state.json").read_text())
    assert state["global_step"] == 8
    steps = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert steps == sorted(set(steps))  # continued, not restarted


def test_bad_input_is_refused_before_training(
    sentiment: tuple[Path, Path], tmp_path: Path, shared_settings: Settings
) -> None:
    def run(**changes: Any) -> None:
        out = changes.pop("out", tmp_path / "out")
        tune(options(sentiment, out, **changes), shared_settings, progress=False)

    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(BadInputError, match="has no rows"):
        run(data=empty)
    columns = tmp_path / "columns.jsonl"
    columns.write_text('{"kalimat": "a", "kelas": "b"}\n', encoding="utf-8")
    with pytest.raises(BadInputError, match="the first row has: kalimat, kelas"):
        run(data=columns)
    dev = tmp_path / "dev.jsonl"
    dev.write_text('{"text": "it is fine", "label": "neutral"}\n', encoding="utf-8")
    with pytest.raises(BadInputError, match="dev labels never seen in training: neutral"):
        run(eval_data=dev)
    with pytest.raises(BadInputError, match=r"no module named q_proj.*query"):
        run(target_modules=["q_proj"])
    with pytest.raises(UnknownChoiceError, match="lora"):
        run(method="lorra")
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(BadInputError, match="cannot create it"):
        run(out=blocker / "out")
    with pytest.raises(BadInputError, match="no checkpoint"):
        run(out=tmp_path / "fresh", resume=True)
    with pytest.raises(BadInputError, match="not a folder made by `fondasi tune`"):
        fondasi.model(f"tuned:{tmp_path}", shared_settings)


def test_tune_cli_reports_the_run(cli: Cli, sentiment: tuple[Path, Path], tmp_path: Path) -> None:
    done = cli(
        "tune", MINILM, "--data", str(sentiment[0]), "--eval-data", str(sentiment[1]),
        "--out", str(tmp_path / "cli"), "--method", "ia3", "--max-steps", "4",
        "--batch-size", "8", "--max-length", "64",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for word in ("trainable", "dev accuracy", "TF-IDF + LR accuracy", "peak RAM"):
        assert word in done.stdout
    classified = cli("classify", f"tuned:{tmp_path / 'cli'}", "I love it")
    assert classified.returncode == 0 and "positive" in classified.stdout
    again = cli(
        "tune", MINILM, "--data", str(sentiment[0]), "--out", str(tmp_path / "cli"),
        "--max-steps", "1",
    )  # fmt: skip
    assert again.returncode == 2 and "already holds a tuned model" in again.stderr
    listed = cli("tune", "methods")
    assert all(name in listed.stdout for name in METHODS)


def test_memory_risk_and_a_label_missing_from_dev_are_warned_before_training(
    sentiment: tuple[Path, Path],
    tmp_path: Path,
    shared_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import psutil

    dev = tmp_path / "dev.jsonl"
    only_negative = [r for r in read_jsonl(sentiment[1]) if r["label"] == "negative"]
    dev.write_text("\n".join(json.dumps(row) for row in only_negative), encoding="utf-8")
    real = psutil.virtual_memory()
    # A machine with 200 MB free: full fine-tuning of MiniLM needs more than that.
    monkeypatch.setattr(psutil, "virtual_memory", lambda: real._replace(available=200_000_000))
    with caplog.at_level(logging.WARNING):
        result = tune(
            options(sentiment, tmp_path / "out", eval_data=dev, method="full", max_steps=2),
            shared_settings,
            progress=False,
        )
    assert "labels missing from the dev set (not measured): positive" in caplog.text
    assert "training may run out of memory: about" in caplog.text and "0.2 GB free" in caplog.text
    assert result.steps == 2  # warned, not refused: the estimate may be pessimistic


def test_the_memory_estimate_grows_with_batch_length_and_trainable_weights(
    shared_settings: Settings,
) -> None:
    from fondasi.backends.tuned import base_folder, load_transformers
    from fondasi.tune.memory import estimate, warn_if_tight
    from fondasi.tune.methods import method

    model = load_transformers(base_folder(MINILM, shared_settings), "classification", ["a", "b"])
    full = estimate(model, batch=16, length=128)
    assert full.weights == 4 * sum(p.numel() for p in model.parameters())
    assert estimate(model, batch=32, length=128).activations > full.activations
    assert estimate(model, batch=16, length=512).activations > 4 * full.activations
    lora = estimate(
        method("lora").apply(model, TuneOptions(base=MINILM, data=Path("x"), out=Path("y"))),
        16,
        128,
    )
    assert lora.optimiser < full.optimiser / 50
    assert not warn_if_tight(full, available=100 * full.total)
    assert warn_if_tight(full, available=full.total)


def test_a_non_writable_out_dir_is_refused(
    sentiment: tuple[Path, Path], tmp_path: Path, shared_settings: Settings
) -> None:
    if os.geteuid() == 0:  # root writes through permission bits; sysfs refuses even root
        locked = Path("/sys")
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
    with pytest.raises(BadInputError, match=f"--out {locked} is not writable"):
        tune(options(sentiment, locked), shared_settings, progress=False)


def test_the_finish_report_says_plainly_when_the_baseline_wins() -> None:
    from fondasi.cli.tune import baseline_verdict
    from fondasi.tune.report import model_card

    assert "The classical baseline wins on this data" in baseline_verdict(0.61, 0.71)
    assert "beats TF-IDF" in baseline_verdict(0.80, 0.71)
    meta = {
        "method": "lora", "base": MINILM, "fondasi": "0", "created": "2026-01-01",
        "task": "classification", "trainable": 1, "total": 2, "seconds": 1.0,
        "peak_ram_mb": 1.0, "data_sha256": "0" * 64, "hyperparameters": {},
        "metrics": {"accuracy": 0.61}, "baseline": {"accuracy": 0.71, "macro_f1": 0.7},
    }  # fmt: skip
    assert "The classical baseline is more accurate than this model" in model_card(meta)


def test_methods_and_tasks_are_registered_objects_that_declare_their_behaviour() -> None:
    from pydantic import ValidationError

    from fondasi.backends.tuned import TASK_MODELS
    from fondasi.tune.methods import method
    from fondasi.tune.tasks import TASKS, task

    assert set(TASKS) == {"classification", "causal-lm", "seq2seq"}
    assert set(TASKS) <= set(TASK_MODELS)  # every task's tuned models load back
    assert task("classification").best == "accuracy" and task("seq2seq").best == "loss"
    assert task("classification").exports_onnx and not task("causal-lm").exports_onnx
    with pytest.raises(UnknownChoiceError, match="classification"):
        task("clasification")
    with pytest.raises(ValidationError, match="classification"):
        TuneOptions(base=MINILM, data=Path("x"), out=Path("y"), task="clasification")
    with pytest.raises(TypeError, match=r"not a fondasi\.tune\.methods\.Method"):
        METHODS.register("nothing", object())  # type: ignore[call-overload]
    assert "nothing" not in METHODS
    given = TuneOptions(base=MINILM, data=Path("x"), out=Path("y"), r=4, virtual_tokens=7)
    assert method("lora").settings(given)["r"] == 4
    assert method("prompt-tuning").settings(given) == {"num_virtual_tokens": 7}
    assert method("full").settings(given) == {}
    assert method("prompt-tuning").unmergeable and not method("lora").unmergeable
    public = [m.name for m in METHODS.values() if not m.private]
    assert public == ["prompt-tuning", "distill", "linear-head", "knn", "hybrid", "setfit"]
