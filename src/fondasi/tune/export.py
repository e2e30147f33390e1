"""Export a tuned classifier for edge deployment: one ONNX graph (adapters merged in), an
optional int8 copy, and the accuracy change measured on the run's own dev rows.

The folder stands alone (ONNX Runtime and the tokenizer are all it needs) and loads back
as ``tuned:OUT`` through ONNX Runtime.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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

log = logging.getLogger(__name__)
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
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
    if meta["task"] != "classification":
        raise BadInputError(
            f"ONNX export covers classifiers; {folder} is {meta['task']}: a language model "
            "needs a graph with a key-value cache, which the tracer here does not build"
        )
    if meta.get("method") == "prompt-tuning":
        raise BadInputError("prompt tuning's virtual tokens do not merge into the weights")
    if out.exists() and any(out.iterdir()):
        raise BadInputError(f"--out {out} is not empty")
    dev = _dev_rows(meta, eval_data)
    model, tokenizer = _merged(folder, meta, settings)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"--out {out}: cannot create it ({exc.strerror})") from None
    names = [n for n in INPUTS if n in tokenizer.model_input_names]
    _trace(model, names, out / ONNX_FP32)
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


def _dev_rows(meta: dict[str, Any], eval_data: Path | None) -> list[dict[str, Any]]:
    """The dev rows the run measured on: its --eval-data, or its split re-made."""
    if eval_data is not None:
        rows = data.read_rows(eval_data)
    elif meta.get("eval_data"):
        rows = data.read_rows(Path(meta["eval_data"]))
    elif meta.get("data"):
        train = data.read_rows(Path(meta["data"]))
        seed = int(meta["hyperparameters"].get("seed", 42))
        rows = data.split(train, "classification", float(meta["dev_fraction"]), seed)[1]
    else:
        raise BadInputError("this model does not say where its dev rows are: give --eval-data")
    data.check_rows(rows, "classification", eval_data or Path("dev rows"))
    unknown = sorted({str(r["label"]) for r in rows} - set(meta["labels"]))
    if unknown:
        raise BadInputError(f"dev labels the model does not know: {', '.join(unknown)}")
    return rows


def _merged(folder: Path, meta: dict[str, Any], settings: Settings) -> tuple[Any, Any]:
    """The PyTorch classifier with any adapter folded in, and its tokenizer."""
    from transformers import AutoTokenizer

    if meta.get("adapter"):
        from peft import PeftModel

        labels = list(meta["labels"])
        base = load_transformers(base_folder(meta["base"], settings), "classification", labels)
        model = PeftModel.from_pretrained(base, folder).merge_and_unload()
    else:
        model = load_transformers(folder, "classification", list(meta["labels"]))
    model.eval()
    return model, AutoTokenizer.from_pretrained(folder, trust_remote_code=False)


def _trace(model: Any, names: list[str], path: Path) -> None:
    """torch.onnx export: token ids in, label logits out, batch and length dynamic."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            return self.model(**dict(zip(names, tensors, strict=True))).logits

    ids = torch.full((2, 8), 1000, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0  # a padded row, so the mask is traced as data
    sample = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer advice about Python control flow
        logging.disable(logging.WARNING)
        try:
            torch.onnx.export(
                # In eval mode: the exporter restores the wrapper's mode afterwards, and a
                # new module is in training mode, which would switch dropout on in `model`.
                Logits().eval(),
                tuple(sample[n] for n in names),
                str(path),
                dynamo=False,  # the dynamo exporter needs onnxscript; the tracer needs onnx
                input_names=names,
                output_names=["logits"],
                dynamic_axes={**dict.fromkeys(names, axes), "logits": {0: "batch"}},
                opset_version=17,
            )
        finally:
            logging.disable(logging.NOTSET)


def _quantise(fp32: Path, int8: Path) -> None:
    """Dynamic int8: weights per channel, activations per tensor at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-untyped]

    logging.disable(logging.WARNING)  # the quantiser advises pre-processing on the root logger
    try:
        quantize_dynamic(
            str(fp32),
            str(int8),
            op_types_to_quantize=["MatMul", "Gemm", "Gather"],  # Gather: the embeddings
            per_channel=True,
            # 7-bit weights: full 8-bit saturates the AVX2 int8 kernels (see onnx_export.py).
            reduce_range=True,
            weight_type=QuantType.QInt8,
        )
    finally:
        logging.disable(logging.NOTSET)


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
