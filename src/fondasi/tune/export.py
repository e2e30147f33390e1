"""Export a tuned classifier for edge deployment: one ONNX graph (adapters merged in), an
optional int8 copy, and the accuracy change measured on the run's own dev rows.

The folder stands alone (ONNX Runtime and the tokenizer are all it needs) and loads back
as ``tuned:OUT`` through ONNX Runtime.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fondasi.backends.onnx_export import INPUTS, quiet, trace
from fondasi.backends.tuned import (
    META,
    ONNX_FP32,
    ONNX_INT8,
    OnnxLogits,
    base_folder,
    load_transformers,
    read_meta,
)
from fondasi.errors import BadInputError
from fondasi.extras import require
from fondasi.settings import Settings
from fondasi.tune import data
from fondasi.tune.methods import Method, method
from fondasi.tune.tasks import Task, task

log = logging.getLogger(__name__)
BATCH = 32


@dataclass
class Variant:
    """One form of the model and how it did on the dev rows."""

    name: str
    accuracy: float
    agreement: float  # share of dev rows where it picks what the PyTorch model picks
    megabytes: float
    ms_per_text: float


@dataclass
class ExportResult:
    """What an export wrote and measured."""

    out: Path
    dev_rows: int
    variants: list[Variant]

    def change(self, name: str) -> float:
        """Accuracy of ``name`` minus the PyTorch model's."""
        scores = {v.name: v.accuracy for v in self.variants}
        return scores[name] - scores["pytorch"]


def export_onnx(
    folder: Path,
    out: Path,
    settings: Settings,
    int8: bool = False,
    eval_data: Path | None = None,
) -> ExportResult:
    """Write ``out``: the tuned classifier in ``folder`` as ONNX, measured against itself."""
    require("onnx", "local", "ONNX export")
    if not (folder / META).is_file():
        raise BadInputError(f"{folder} is not a folder made by `fondasi tune`")
    meta = read_meta(folder)
    if meta.get("format") == "onnx":
        raise BadInputError(f"{folder} is an ONNX export already")
    kind = task(meta["task"])
    if not kind.exports_onnx:
        raise BadInputError(
            f"ONNX export covers classifiers; {folder} is {kind.name}: a language model "
            "needs a graph with a key-value cache, which the tracer here does not build"
        )
    chosen = method(meta["method"]) if meta.get("adapter") else None
    if chosen is not None and chosen.unmergeable:
        raise BadInputError(chosen.unmergeable)
    if out.exists() and any(out.iterdir()):
        raise BadInputError(f"--out {out} is not empty")
    dev = _dev_rows(kind, meta, eval_data)
    model, tokenizer = _merged(folder, kind, chosen, meta, settings)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"--out {out}: cannot create it ({exc.strerror})") from None
    names = [n for n in INPUTS if n in tokenizer.model_input_names]
    trace(model, names, out / ONNX_FP32, "logits", per_token=False)
    if int8:
        _quantise(out / ONNX_FP32, out / ONNX_INT8)
    tokenizer.save_pretrained(out)
    limit = int(meta.get("max_length", 256))
    labels = list(meta["labels"])
    texts, truth = [str(r["text"]) for r in dev], [labels.index(str(r["label"])) for r in dev]
    reference, seconds = _predict(model, tokenizer, texts, limit)
    weights = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6
    variants = [_variant("pytorch", reference, reference, truth, weights, seconds, texts)]
    for name, file in (("onnx fp32", ONNX_FP32), ("onnx int8", ONNX_INT8)):
        if (out / file).is_file():
            guesses, seconds = _predict(OnnxLogits(out / file, labels), tokenizer, texts, limit)
            variants.append(
                _variant(
                    name,
                    guesses,
                    reference,
                    truth,
                    (out / file).stat().st_size / 1e6,
                    seconds,
                    texts,
                )
            )
    result = ExportResult(out=out, dev_rows=len(dev), variants=variants)
    exported = {
        **meta,
        "format": "onnx",
        "adapter": False,
        "method": f"{meta['method']} (onnx{' int8' if int8 else ''})",
        "exported_from": str(folder.resolve()),
        "export": [asdict(v) for v in variants],
    }
    (out / META).write_text(json.dumps(exported, indent=2), encoding="utf-8")
    return result


def _dev_rows(kind: Task, meta: dict[str, Any], eval_data: Path | None) -> list[dict[str, Any]]:
    """The dev rows the run measured on: its --eval-data, its folder's dev split, or its
    split re-made."""
    rows: list[dict[str, Any]]
    if eval_data is not None:
        rows = data.read_rows(eval_data)
    elif meta.get("eval_data"):
        rows = data.read_rows(Path(meta["eval_data"]))
    elif meta.get("data") and (folder_dev := data.dev_rows(Path(meta["data"]))) is not None:
        rows = list(folder_dev)
    elif meta.get("data"):
        train = data.read_rows(Path(meta["data"]))
        seed = int(meta["hyperparameters"].get("seed", 42))
        rows = data.split(train, kind.stratify, float(meta["dev_fraction"]), seed)[1]
    else:
        raise BadInputError("this model does not say where its dev rows are: give --eval-data")
    data.check_rows(rows, kind.name, eval_data or Path("dev rows"))
    unknown = sorted({str(r["label"]) for r in rows} - set(meta["labels"]))
    if unknown:
        raise BadInputError(f"dev labels the model does not know: {', '.join(unknown)}")
    return rows


def _merged(
    folder: Path, kind: Task, adapter: Method | None, meta: dict[str, Any], settings: Settings
) -> tuple[Any, Any]:
    """The PyTorch classifier with any adapter folded in, and its tokenizer."""
    from transformers import AutoTokenizer

    labels = list(meta["labels"])
    if adapter is not None:
        from peft import PeftModel

        base = load_transformers(base_folder(meta["base"], settings), kind.name, labels)
        model = adapter.merge(PeftModel.from_pretrained(base, folder))
    else:
        model = load_transformers(folder, kind.name, labels)
    model.eval()
    return model, AutoTokenizer.from_pretrained(folder, trust_remote_code=False)


def _quantise(fp32: Path, int8: Path) -> None:
    """Dynamic int8: weights per channel, activations per tensor at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-untyped]

    with quiet():  # the quantiser advises pre-processing on the root logger
        quantize_dynamic(
            str(fp32),
            str(int8),
            op_types_to_quantize=["MatMul", "Gemm", "Gather"],  # Gather: the embeddings
            per_channel=True,
            # 7-bit weights: full 8-bit saturates the AVX2 int8 kernels (see onnx_export.py).
            reduce_range=True,
            weight_type=QuantType.QInt8,
        )


def _predict(model: Any, tokenizer: Any, texts: list[str], limit: int) -> tuple[list[int], float]:
    """Label indices for ``texts`` and the seconds it took."""
    import torch

    guesses: list[int] = []
    with torch.inference_mode():  # one small warm-up batch, not timed
        model(**tokenizer(texts[:2], padding=True, return_tensors="pt"))
    start = time.perf_counter()
    with torch.inference_mode():
        for at in range(0, len(texts), BATCH):
            batch = tokenizer(
                texts[at : at + BATCH],
                padding=True,
                truncation=True,
                max_length=limit,
                return_tensors="pt",
            )
            guesses += model(**batch).logits.argmax(dim=-1).tolist()
    return guesses, time.perf_counter() - start


def _variant(
    name: str,
    guesses: list[int],
    reference: list[int],
    truth: list[int],
    megabytes: float,
    seconds: float,
    texts: list[str],
) -> Variant:
    rows = max(len(truth), 1)
    return Variant(
        name=name,
        accuracy=sum(g == t for g, t in zip(guesses, truth, strict=True)) / rows,
        agreement=sum(g == r for g, r in zip(guesses, reference, strict=True)) / rows,
        megabytes=megabytes,
        ms_per_text=1000 * seconds / max(len(texts), 1),
    )
