"""Merge an adapter into its base model and save the whole model as safetensors."""

from __future__ import annotations

import json
from pathlib import Path

from fondasi.backends.tuned import META, base_folder, load_transformers, read_meta
from fondasi.errors import BadInputError
from fondasi.settings import Settings
from fondasi.tune.methods import method
from fondasi.tune.report import model_card


def merge_adapter(folder: Path, out: Path, settings: Settings) -> Path:
    """Write ``out``: the base with the adapter folded into its weights."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    if not (folder / META).is_file():
        raise BadInputError(f"{folder} is not a folder made by `fondasi tune`")
    meta = read_meta(folder)
    if not meta.get("adapter"):
        raise BadInputError(f"{folder} holds whole weights already; nothing to merge")
    chosen = method(meta["method"])
    if chosen.unmergeable:  # refused before the base is loaded
        raise BadInputError(chosen.unmergeable)
    base = load_transformers(base_folder(meta["base"], settings), meta["task"], meta["labels"])
    merged = chosen.merge(PeftModel.from_pretrained(base, folder))
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(folder).save_pretrained(out)
    meta = {**meta, "adapter": False, "method": f"{meta['method']} (merged)"}
    (out / META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    (out / "README.md").write_text(model_card(meta), encoding="utf-8")
    return out
