"""Export a sentence-transformers folder to ONNX once: a fused fp32 graph and an int8 one.

    cache/onnx/<name>-<digest>/
        model.onnx           fp32; attention, LayerNorm and GELU fused by ORT's optimizer
        model.int8.onnx      dynamic int8 (recipe below)
        tokenizer.json ...   the tokenizer and pooling files, so the folder stands alone
        .fondasi-complete    written last: the recipe and each file's size

The folder is built beside its final place and renamed into it, so a killed process
leaves at most a ``.partial-<pid>`` sibling, which the next export removes.

The int8 recipe was chosen by measurement on all-MiniLM-L6-v2 (docs/benchmarks.md).
ORT's defaults give a minimum cosine of 0.87 to fp32; the error comes from activations,
which are quantised per tensor, and a few hidden channels run 10-15x larger than the
rest. So before quantising, each such outlier channel is divided down to three times
the median channel range (the matching weight row is multiplied up, which is exact in
fp32). Weights are per-channel with 7-bit range (8-bit signed weights saturate the AVX2
int8 kernel); the embedding lookup and the first layer's FFN output stay fp32.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fondasi.backends.gguf_cache import COMPLETE, file_digest
from fondasi.errors import BadInputError
from fondasi.extras import require

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

RECIPE = "fondasi-onnx-1"  # change when the recipe changes: old exports are then not reused
FP32 = "model.onnx"
INT8 = "model.int8.onnx"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
STANDALONE = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "sentence_bert_config.json",
    "modules.json",
    "1_Pooling/config.json",
)
OUTLIER = 3.0  # channels wider than this many median channel ranges are scaled down
# Activation ranges for the outlier scaling; not the benchmark corpus, so it is not tuned to it.
CALIBRATION = [
    "Where is the nearest train station?",
    "Di mana stasiun kereta terdekat?",
    "Thanks, the package arrived on Monday.",
    "Terima kasih, paketnya sampai hari Senin.",
    "The committee met on 12 March 2024 to review the budget, which had grown by 8% since "
    "last year, and agreed to cut travel costs while keeping the training programme.",
    "Panitia bertemu pada 12 Maret 2024 untuk meninjau anggaran yang naik 8% sejak tahun lalu, "
    "lalu sepakat memangkas biaya perjalanan tanpa menghapus program pelatihan.",
    "How do I reset my password if I no longer have access to my old email address?",
    "Bagaimana cara mengganti kata sandi kalau saya tidak bisa membuka email lama?",
    "Sea levels rose faster in the last decade than in any decade of the past century, "
    "according to a study of tide gauges and satellite measurements around the world.",
    "Menurut penelitian terhadap alat ukur pasang surut dan satelit, permukaan laut naik lebih "
    "cepat dalam sepuluh tahun terakhir dibanding dekade mana pun pada abad lalu.",
    "Add two eggs, a cup of flour and a pinch of salt, then stir until smooth.",
    "Tambahkan dua butir telur, secangkir tepung, dan sejumput garam, lalu aduk hingga rata.",
    "Great service!",
    "Pelayanannya bagus sekali!",
    "The striker scored twice in the second half and the crowd sang until the final whistle.",
    "Penyerang itu mencetak dua gol di babak kedua dan penonton bernyanyi sampai peluit akhir.",
]


def export_dir(folder: Path, cache_dir: Path, name: str) -> Path:
    """Where the export of ``folder`` lives (it may not exist yet)."""
    import onnxruntime  # type: ignore[import-untyped]

    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise BadInputError(f"{folder} has no model.safetensors to export to ONNX")
    # The recipe and the ORT version take part: fused operators belong to one ORT release.
    key = f"{file_digest(weights)} {RECIPE} {onnxruntime.__version__}"
    return cache_dir / "onnx" / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def is_complete(target: Path) -> bool:
    """Whether an export folder was written to the end and no file has been cut short since."""
    try:
        marker = json.loads((target / COMPLETE).read_text(encoding="utf-8"))
        sizes: dict[str, int] = marker["files"]
        return all((target / file).stat().st_size == size for file, size in sizes.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def ensure_export(folder: Path, cache_dir: Path, name: str) -> Path:
    """The export folder for ``folder``, exported now if no complete one exists."""
    target = export_dir(folder, cache_dir, name)
    if is_complete(target):
        return target
    require("onnx", "local", "exporting models to ONNX")
    _remove_stale_partials(target)
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        with quiet():
            _export(folder, partial)
        files = {file: (partial / file).stat().st_size for file in (FP32, INT8)}
        (partial / COMPLETE).write_text(json.dumps({"recipe": RECIPE, "files": files}))
        if target.exists():  # incomplete or damaged: ours replaces it
            shutil.rmtree(target, ignore_errors=True)
        # If another process finished first, its export is as good as ours.
        with contextlib.suppress(OSError):
            partial.rename(target)
    except BadInputError:
        raise
    except Exception as exc:  # torch, transformers and onnx raise many types on a bad model
        raise BadInputError(f"{folder} could not be exported to ONNX: {exc}") from exc
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _remove_stale_partials(target: Path) -> None:
    for old in target.parent.glob(f"{target.name}.partial-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def quiet() -> Iterator[None]:
    """Silence tracer warnings and the quantiser's root-logger advice while exporting.

    Nested uses restore the level they found, so an inner one does not unsilence an outer.
    """
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _export(folder: Path, out: Path) -> None:
    for file in STANDALONE:
        if (folder / file).is_file():
            (out / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / file, out / file)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    raw = out / "raw.onnx"
    _trace(folder, raw)
    _optimise(raw, out / FP32, config)
    raw.unlink()
    _quantise(out / FP32, out / INT8, folder)


def _trace(folder: Path, path: Path) -> None:
    """The bare encoder as ONNX: token ids in, last hidden state out."""
    from transformers import AutoModel

    from fondasi.extras import quiet_transformers

    quiet_transformers()
    # Eager attention traces to the MatMul/Softmax pattern that ORT's optimizer fuses.
    model = AutoModel.from_pretrained(folder, use_safetensors=True, attn_implementation="eager")
    model.eval()
    segments = getattr(model.config, "type_vocab_size", 0)  # DistilBERT has no segment ids
    names = [n for n in INPUTS if n != "token_type_ids" or segments > 0]
    trace(model, names, path, "last_hidden_state", per_token=True)


def trace(model: Any, names: Sequence[str], path: Path, output: str, per_token: bool) -> None:
    """torch.onnx export of a transformers model: the token inputs ``names`` in, the output
    field ``output`` out; batch and length dynamic, and the output's length too if
    ``per_token`` (hidden states) rather than one row per text (logits)."""
    import torch

    class Traced(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            return getattr(self.model(**dict(zip(names, tensors, strict=True))), output)

    ids = torch.full((2, 8), 1000, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0  # a padded row, so the mask is traced as data
    sample = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    axes = {0: "batch", 1: "sequence"}
    with quiet():  # tracer advice about Python control flow
        torch.onnx.export(
            # In eval mode: the exporter restores the wrapper's mode afterwards, and a new
            # module is in training mode, which would switch dropout on in ``model``.
            Traced().eval(),
            tuple(sample[n] for n in names),
            str(path),
            dynamo=False,  # the dynamo exporter needs onnxscript; the tracer needs only onnx
            input_names=list(names),
            output_names=[output],
            dynamic_axes={
                **dict.fromkeys(names, axes),
                output: axes if per_token else {0: "batch"},
            },
            opset_version=17,
        )


def _optimise(raw: Path, path: Path, config: dict[str, Any]) -> None:
    """Fuse attention, LayerNorm and GELU; on a model the fuser does not know, keep it as is."""
    from onnxruntime.transformers.optimizer import optimize_model  # type: ignore[import-untyped]

    try:
        # opt_level 0: only the portable fusions, nothing tied to this machine's CPU.
        fused = optimize_model(
            str(raw),
            model_type="bert",
            num_heads=int(config.get("num_attention_heads", 0)),
            hidden_size=int(config.get("hidden_size", 0)),
            opt_level=0,
        )
        fused.save_model_to_file(str(path))
    except Exception:  # an architecture the fuser cannot pattern-match still runs unfused
        shutil.copyfile(raw, path)


def _quantise(fp32: Path, int8: Path, folder: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-untyped]

    model = onnx.load(str(fp32))
    targets = _weight_nodes(model)
    # Named before scaling: the scaling inserts Mul nodes in front of the weights.
    ffn_out = [n.name for n in targets if _producer(model, n.input[0]) in _GELU]
    ranges = _activation_ranges(model, targets, folder)
    _scale_outlier_channels(model, targets, ranges)
    smoothed = int8.with_name("smoothed.onnx")
    onnx.save(model, str(smoothed))
    quantize_dynamic(
        str(smoothed),
        str(int8),
        op_types_to_quantize=["MatMul", "Attention"],
        per_channel=True,
        reduce_range=True,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=ffn_out[:1],  # the most sensitive layer in the measurements
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    smoothed.unlink()


# What feeds an FFN output projection: a fused GELU, or the Mul that ends an unfused one.
_GELU = {"Gelu", "BiasGelu", "FastGelu", "Mul"}


def _producer(model: Any, tensor: str) -> str | None:
    for node in model.graph.node:
        if tensor in node.output:
            return str(node.op_type)
    return None


def _weight_nodes(model: Any) -> list[Any]:
    """MatMul and fused Attention nodes with a constant 2-D weight (what int8 speeds up)."""
    weights = {init.name for init in model.graph.initializer if len(init.dims) == 2}
    return [
        node
        for node in model.graph.node
        if node.op_type in ("MatMul", "Attention") and node.input[1] in weights
    ]


def _activation_ranges(
    model: Any, targets: list[Any], folder: Path
) -> dict[str, npt.NDArray[np.float32]]:
    """Per-channel max |x| of each target's input over the calibration sentences."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    from fondasi.backends.onnx_tokens import load_tokenizer, pad_batch

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    inputs = sorted({n.input[0] for n in targets})
    for name in inputs:
        probe.graph.output.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        )
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    tokenizer, pad_id = load_tokenizer(folder, 256)
    names = [i.name for i in session.get_inputs()]
    feed, mask = pad_batch(tokenizer.encode_batch(CALIBRATION), names, pad_id)
    outputs = session.run(inputs, feed)
    real = mask.astype(bool)  # padding rows would widen the ranges with values never pooled
    return {
        name: np.abs(values[real]).max(axis=0) for name, values in zip(inputs, outputs, strict=True)
    }


def _scale_outlier_channels(
    model: Any, targets: list[Any], ranges: dict[str, npt.NDArray[np.float32]]
) -> None:
    """x @ W == (x / s) @ (s W): shrink outlier input channels so 8 bits cover the rest."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    inits = {init.name: init for init in model.graph.initializer}
    for node in targets:
        if _producer(model, node.input[0]) == "Attention":
            continue  # attention outputs have no outlier channels; measured no gain
        width = ranges[node.input[0]]
        scale = np.maximum(1.0, width / (OUTLIER * np.median(width))).astype(np.float32)
        if (scale == 1.0).all():
            continue
        weight = inits[node.input[1]]
        scaled = numpy_helper.to_array(weight) * scale[:, None]
        weight.CopyFrom(numpy_helper.from_array(scaled.astype(np.float32), weight.name))
        inverse = numpy_helper.from_array(
            (1.0 / scale).astype(np.float32), f"{node.name}_inv_scale"
        )
        model.graph.initializer.append(inverse)
        shrunk = f"{node.name}_scaled_input"
        mul = onnx.helper.make_node("Mul", [node.input[0], inverse.name], [shrunk])
        mul.name = f"{node.name}_scale_input"
        node.input[0] = shrunk
        nodes = list(model.graph.node)
        model.graph.node.insert(nodes.index(node), mul)
