"""Models made by ``fondasi tune``: whole weights, or an adapter loaded on its base.

The folder holds ``fondasi-tune.json`` (base id, task, method, labels); an adapter
(LoRA, IA3, prompt tuning) is applied to the base model resolved the usual way.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal

from fondasi.backends.base import Backend, ModelSpec
from fondasi.errors import BadInputError
from fondasi.extras import quiet_transformers, require

if TYPE_CHECKING:
    from fondasi.settings import Settings

META = "fondasi-tune.json"
ONNX_FP32 = "model.onnx"  # `fondasi tune export --onnx`
ONNX_INT8 = "model.int8.onnx"
# peft calls a transformers method that transformers has since renamed: a warning users
# can do nothing about, printed on every adapter load and training run.
warnings.filterwarnings(
    "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
)


def read_meta(folder: Path) -> dict[str, Any]:
    """What ``fondasi tune`` recorded about the model in ``folder``."""
    try:
        meta: dict[str, Any] = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInputError(f"{folder}: cannot read {META}: {exc}") from None
    return meta


def base_folder(ref: str, settings: Settings) -> Path:
    """A transformers folder for a base model (GGUF is dequantised into the cache once)."""
    from fondasi.backends.gguf_cache import dequantise
    from fondasi.backends.resolve import resolve
    from fondasi.catalog.loader import Catalog

    spec = resolve(ref, Catalog.load(settings.card_dirs()), settings)
    if spec.path is None:
        raise BadInputError(f"{ref}: no local weights; tuning needs a model that runs here")
    if spec.format == "gguf":
        return dequantise(spec.path, settings.cache_dir)
    folder = spec.path if spec.path.is_dir() else spec.path.parent
    if spec.format != "safetensors" or not (folder / "config.json").is_file():
        raise BadInputError(
            f"{ref}: tuning needs a transformers checkpoint (safetensors or GGUF), "
            f"not {spec.format}"
        )
    return folder


# The transformers class that holds each task's model; the head comes with it.
TASK_MODELS = {
    "classification": "AutoModelForSequenceClassification",
    "causal-lm": "AutoModelForCausalLM",
    "seq2seq": "AutoModelForSeq2SeqLM",
}


def load_transformers(folder: Path, task: str, labels: list[str]) -> Any:
    """The transformers model for ``task`` from ``folder`` (a new head for new labels)."""
    import torch
    import transformers

    quiet_transformers()
    if task not in TASK_MODELS:
        raise BadInputError(f"unknown task {task!r}; tasks: {', '.join(TASK_MODELS)}")
    auto = getattr(transformers, TASK_MODELS[task])
    extra: dict[str, Any] = {"dtype": torch.float32}
    if task == "classification":
        extra = {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {name: i for i, name in enumerate(labels)},
        }
    # A new head is the point of tuning a classifier: transformers' report that its weights
    # were "newly initialized" would only alarm, so it is kept for real errors.
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        return auto.from_pretrained(folder, use_safetensors=True, trust_remote_code=False, **extra)
    except ValueError as exc:  # the architecture has no model class for this task
        if "Unrecognized configuration class" not in str(exc):
            raise
        kind = "an encoder-decoder" if _encoder_decoder(folder) else "not an encoder-decoder"
        raise BadInputError(
            f"{folder.name} cannot be tuned for {task}: it is {kind} "
            f"({'--task seq2seq' if _encoder_decoder(folder) else '--task causal-lm'} fits it)"
        ) from None
    finally:
        transformers.logging.set_verbosity(level)


def _encoder_decoder(folder: Path) -> bool:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return bool(config.get("is_encoder_decoder"))


def generation_task(folder: Path) -> Literal["seq2seq", "causal-lm"]:
    """The generation task a base model is tuned for: seq2seq for T5/BART, else causal-lm."""
    return "seq2seq" if _encoder_decoder(folder) else "causal-lm"


class OnnxLogits:
    """An exported classifier run by ONNX Runtime, called like the PyTorch model it was."""

    def __init__(self, path: Path, labels: list[str]) -> None:
        import onnxruntime  # type: ignore[import-untyped]
        from transformers import PretrainedConfig

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # the optimiser's notes are not the user's business
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.config = PretrainedConfig(
            id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)}
        )

    def __call__(self, **batch: Any) -> Any:
        """Logits for a tokenised batch (torch tensors in, a torch tensor out)."""
        import torch

        feed = {name: batch[name].numpy() for name in self.inputs}
        return SimpleNamespace(logits=torch.from_numpy(self.session.run(["logits"], feed)[0]))


class TunedFactory:
    """Loads folders written by ``fondasi tune``."""

    name = "fondasi-tuned"
    priority = 30

    def claims(self, spec: ModelSpec) -> bool:
        """Only ``tuned:`` folders."""
        return spec.format == "tuned"

    def load(self, spec: ModelSpec, settings: Settings) -> Backend:
        """Whole weights from the folder, or the base with the adapter applied."""
        require("transformers", "local", "tuned models")
        from transformers import AutoTokenizer

        from fondasi.backends.classify import SequenceClassifier
        from fondasi.backends.hf_causal import CausalLM
        from fondasi.backends.hf_encoders import Seq2SeqLM

        folder = spec.path
        if folder is None:
            raise BadInputError(f"{spec.id}: no folder")
        meta = read_meta(folder)
        task, labels = meta["task"], list(meta.get("labels") or [])
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        if meta.get("format") == "onnx":
            require("onnxruntime", "local", "exported models")
            weights = folder / ONNX_INT8 if (folder / ONNX_INT8).is_file() else folder / ONNX_FP32
            logits = OnnxLogits(weights, labels)
            return SequenceClassifier(logits, tokenizer, int(meta.get("max_length", 256)))
        if meta.get("adapter"):
            require("peft", "tune", "adapters made by fondasi tune")
            from peft import PeftModel
            from transformers.utils import logging as hf_logging

            # The base alone lacks the tuned head; the adapter brings it, so the load
            # report's "missing weights" is expected here and not worth showing.
            level = hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()
            try:
                base = load_transformers(base_folder(meta["base"], settings), task, labels)
            finally:
                hf_logging.set_verbosity(level)
            model = PeftModel.from_pretrained(base, folder)
        else:
            model = load_transformers(folder, task, labels)
        model.eval()
        if task == "classification":
            return SequenceClassifier(model, tokenizer, int(meta.get("max_length", 256)))
        if task == "seq2seq":
            return Seq2SeqLM(model, tokenizer, spec.id)
        return CausalLM(model, tokenizer, spec.id)
