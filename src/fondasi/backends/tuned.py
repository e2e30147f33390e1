"""Models made by ``fondasi tune``: whole weights, or an adapter loaded on its base.

The folder holds ``fondasi-tune.json`` (base id, task, method, labels); an adapter
(LoRA, IA3, prompt tuning) is applied to the base model resolved the usual way.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fondasi.backends.base import Backend, ModelSpec
from fondasi.errors import BadInputError
from fondasi.extras import quiet_transformers, require

if TYPE_CHECKING:
    from fondasi.settings import Settings

META = "fondasi-tune.json"
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


def load_transformers(folder: Path, task: str, labels: list[str]) -> Any:
    """The transformers model for ``task`` from ``folder`` (a new head for new labels)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    quiet_transformers()
    if task == "classification":
        return AutoModelForSequenceClassification.from_pretrained(
            folder,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)},
            use_safetensors=True,
            trust_remote_code=False,
        )
    return AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.float32, use_safetensors=True, trust_remote_code=False
    )


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

        folder = spec.path
        if folder is None:
            raise BadInputError(f"{spec.id}: no folder")
        meta = read_meta(folder)
        task, labels = meta["task"], list(meta.get("labels") or [])
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
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        if task == "classification":
            return SequenceClassifier(model, tokenizer, int(meta.get("max_length", 256)))
        return CausalLM(model, tokenizer, spec.id)
