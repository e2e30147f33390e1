"""Dequantise a GGUF file once into a safetensors folder that transformers loads fast.

transformers reads GGUF directly but dequantises on every load (15-60 s on a laptop
CPU) and refuses to save a GGUF-loaded model. So the first load rebuilds the model from
its config without the GGUF quantisation marker, copies the weights in and saves them as
safetensors under ``cache/transformers/<name>-<sha256>``; later loads take well under a
second. The folder is written next to its final place and renamed, so a killed process
never leaves a half-written cache behind.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
from pathlib import Path

from fondasi.errors import BadInputError

COMPLETE = ".fondasi-complete"
GGUF_MAGIC = b"GGUF"


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def check_gguf(path: Path) -> None:
    """Refuse files that are not GGUF before any library tries to parse them."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise BadInputError(f"cannot read {path}: {exc}") from exc
    if magic != GGUF_MAGIC:
        raise BadInputError(f"{path} is not a GGUF file (it does not start with 'GGUF')")


def cached_folder(gguf: Path, cache_dir: Path) -> Path:
    """Where the dequantised copy of ``gguf`` lives (it may not exist yet)."""
    return cache_dir / "transformers" / f"{gguf.stem}-{file_digest(gguf)[:16]}"


def is_complete(folder: Path) -> bool:
    """Whether a cache folder was written to the end."""
    return (folder / COMPLETE).is_file()


def dequantise(gguf: Path, cache_dir: Path) -> Path:
    """A safetensors folder with the model and tokenizer of ``gguf``; built on first use."""
    check_gguf(gguf)
    target = cached_folder(gguf, cache_dir)
    if is_complete(target):
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fondasi.extras import quiet_transformers

    quiet_transformers()

    folder, name = str(gguf.parent), gguf.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except Exception as exc:  # transformers raises many types for a bad or unsupported file
        raise BadInputError(f"{gguf} could not be read as a model: {exc}") from exc
    # The loaded model's config, not a fresh read: each read of a GGUF parses its whole
    # vocabulary again, the slowest part of the first load.
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    # A plain model built from the config can be saved; the GGUF-loaded one cannot. Built
    # without memory (meta device), it takes the loaded weights as they are.
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), assign=True)
    plain.generation_config = loaded.generation_config
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    plain.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    (partial / COMPLETE).write_text(str(gguf))
    if target.exists() and not is_complete(target):
        shutil.rmtree(target, ignore_errors=True)  # left by an older, interrupted layout
    try:
        partial.rename(target)
    except OSError:  # another process finished first; its copy is as good as ours
        shutil.rmtree(partial, ignore_errors=True)
    return target
