"""Models made by ``fondasi tune``: whole weights, or an adapter loaded on its base.

The folder holds ``fondasi-tune.json`` (base id, task, method, labels); an adapter
(LoRA, IA3, prompt tuning) is applied to the base model resolved the usual way. The
task's registered ``TaskModel`` says which transformers class holds the model and which
backend serves it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, cast

from fondasi.backends.base import Backend, ModelSpec
from fondasi.errors import BadInputError
from fondasi.extras import quiet_transformers, require
from fondasi.registry import Registry, instances_of

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


class TaskModel:
    """What loading a tuned model of one task needs: the transformers class that holds it,
    the arguments that give it the task's head, and the backend that answers with it.

    A tune task (``fondasi.tune.tasks.Task``) is one of these plus how it trains. Both are
    found by name in the ``fondasi.tune_tasks`` entry-point group, so a task from another
    package is loaded back here without this layer importing the tune layer.
    """

    name: ClassVar[str]
    auto_class: ClassVar[str]  # the transformers Auto class; the head comes with it

    def arguments(self, labels: list[str]) -> dict[str, Any]:
        """Keyword arguments for ``from_pretrained``: the head's labels, the weights' dtype."""
        import torch

        return {"dtype": torch.float32}

    def serve(self, model: Any, tokenizer: Any, spec_id: str, meta: dict[str, Any]) -> Backend:
        """The backend that answers with the loaded (or ONNX) ``model``."""
        raise NotImplementedError


TASK_MODELS: Registry[TaskModel] = Registry(
    "tune task",
    "fondasi.tune_tasks",
    builtins=(__name__,),
    adopt=instances_of(TaskModel, "tune task"),
)
K = TypeVar("K", bound=TaskModel)


def register_task_model(kind: type[K]) -> type[K]:
    """Make tuned models of ``kind.name`` loadable."""
    TASK_MODELS.register(kind.name, kind())
    return kind


@register_task_model
class SequenceClassification(TaskModel):
    """A label per text: a new classifier head over the base's encoder."""

    name = "classification"
    auto_class = "AutoModelForSequenceClassification"

    def arguments(self, labels: list[str]) -> dict[str, Any]:
        return {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {name: i for i, name in enumerate(labels)},
        }

    def serve(self, model: Any, tokenizer: Any, spec_id: str, meta: dict[str, Any]) -> Backend:
        from fondasi.backends.classify import SequenceClassifier

        return SequenceClassifier(model, tokenizer, int(meta.get("max_length", 256)))


@register_task_model
class CausalLanguageModel(TaskModel):
    """Text after a prompt, from a decoder-only model."""

    name = "causal-lm"
    auto_class = "AutoModelForCausalLM"

    def serve(self, model: Any, tokenizer: Any, spec_id: str, meta: dict[str, Any]) -> Backend:
        from fondasi.backends.hf_causal import CausalLM

        return CausalLM(model, tokenizer, spec_id)


@register_task_model
class Seq2SeqLanguageModel(TaskModel):
    """Text from text, by an encoder-decoder (T5, BART)."""

    name = "seq2seq"
    auto_class = "AutoModelForSeq2SeqLM"

    def serve(self, model: Any, tokenizer: Any, spec_id: str, meta: dict[str, Any]) -> Backend:
        from fondasi.backends.hf_encoders import Seq2SeqLM

        return Seq2SeqLM(model, tokenizer, spec_id)


def load_transformers(folder: Path, task: str, labels: list[str]) -> Any:
    """The transformers model for ``task`` from ``folder`` (a new head for new labels)."""
    import transformers

    quiet_transformers()
    kind = TASK_MODELS.get(task)  # an unknown task is refused with the close names
    auto = getattr(transformers, kind.auto_class)
    # A new head is the point of tuning a classifier: transformers' report that its weights
    # were "newly initialized" would only alarm, so it is kept for real errors.
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        return auto.from_pretrained(
            folder, use_safetensors=True, trust_remote_code=False, **kind.arguments(labels)
        )
    except ValueError as exc:  # the architecture has no model class for this task
        if "Unrecognized configuration class" not in str(exc):
            raise
        kind_of = "an encoder-decoder" if encoder_decoder(folder) else "not an encoder-decoder"
        raise BadInputError(
            f"{folder.name} cannot be tuned for {task}: it is {kind_of} "
            f"(--task {generation_task(folder)} fits it)"
        ) from None
    finally:
        transformers.logging.set_verbosity(level)


def encoder_decoder(folder: Path) -> bool:
    """Whether the model in ``folder`` is an encoder-decoder (T5, BART)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return bool(config.get("is_encoder_decoder"))


def generation_task(folder: Path) -> Literal["seq2seq", "causal-lm"]:
    """The generation task a base model is tuned for: seq2seq for T5/BART, else causal-lm."""
    return "seq2seq" if encoder_decoder(folder) else "causal-lm"


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
        """Whole weights from the folder, the base with the adapter applied, or a head over
        an embedder."""
        folder = spec.path
        if folder is None:
            raise BadInputError(f"{spec.id}: no folder")
        meta = read_meta(folder)
        if meta.get("format") == "embedding-head":  # no transformers weights of its own
            from fondasi.backends.tuned_head import load_head_classifier

            return cast(Backend, load_head_classifier(folder, meta, settings))
        require("transformers", "local", "tuned models")
        from transformers import AutoTokenizer

        task, labels = TASK_MODELS.get(meta["task"]), list(meta.get("labels") or [])
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        if meta.get("format") == "onnx":
            require("onnxruntime", "local", "exported models")
            weights = folder / ONNX_INT8 if (folder / ONNX_INT8).is_file() else folder / ONNX_FP32
            return task.serve(OnnxLogits(weights, labels), tokenizer, spec.id, meta)
        if meta.get("adapter"):
            require("peft", "tune", "adapters made by fondasi tune")
            from peft import PeftModel
            from transformers.utils import logging as hf_logging

            # The base alone lacks the tuned head; the adapter brings it, so the load
            # report's "missing weights" is expected here and not worth showing.
            level = hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()
            try:
                base = load_transformers(base_folder(meta["base"], settings), task.name, labels)
            finally:
                hf_logging.set_verbosity(level)
            model = PeftModel.from_pretrained(base, folder)
        else:
            model = load_transformers(folder, task.name, labels)
        model.eval()
        return task.serve(model, tokenizer, spec.id, meta)
