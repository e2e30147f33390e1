"""Sentence embeddings on ONNX Runtime: the fast CPU path, fp32 or int8.

Loads an ``.onnx`` encoder as it is (such as the bundled int8 MiniLM), or exports a
safetensors sentence-transformers folder once (see ``onnx_export``) when a spec asks for
it with ``extra["onnx_variant"]``. Texts are tokenised with the Rust ``tokenizers``
library, sorted by token count so batches carry little padding, and mean-pooled over
real tokens; neither torch nor transformers is imported unless an export is needed.

    from fondasi.backends.onnx_embed import OnnxEmbedderFactory, onnx_spec
    spec = onnx_spec("all-minilm-l6-v2", settings, variant="int8")
    vectors = OnnxEmbedderFactory().load(spec, settings).embed(["Selamat pagi", "Good morning"])

A handle on this path (``Model``, with timing and capability checks) is the handle tier's
to build from ``onnx_spec``; this module stays below it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from fondasi.backends.base import Capability, ModelSpec, Purpose
from fondasi.backends.embed_cache import EmbeddingCache
from fondasi.backends.hf_embed import E5_PREFIXES, pooling_mode
from fondasi.errors import BadInputError
from fondasi.extras import require

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from fondasi.catalog.loader import Catalog
    from fondasi.settings import Settings

Variant = Literal["fp32", "int8"]
VARIANTS: tuple[str, ...] = get_args(Variant)
VARIANT_KEY = "onnx_variant"  # in ModelSpec.extra: export this safetensors folder to ONNX
POOLED = ("last_hidden_state", "token_embeddings", "sentence_embedding")
# The int8 variant runs texts this short (tokens, with [CLS] and [SEP]) on the fp32 graph:
# averaged over few tokens, quantisation noise reached 0.94-0.98 cosine on one-word texts,
# while these texts cost little compute (about 7% of the benchmark corpus's time).
SHORT_TOKENS = 16


class OnnxEmbedder:
    """An ONNX encoder that maps texts to L2-normalised vectors."""

    capabilities = frozenset({Capability.EMBED})

    def __init__(
        self,
        session: Any,
        tokenizer: Any,
        *,
        pad_id: int,
        pooling: str,
        prefixes: dict[str, str],
        dimension: int,
        batch_size: int = 32,
        short_session: Any = None,
        short_tokens: int = 0,
    ) -> None:
        self.session = session
        self.short_session = short_session
        self.short_tokens = short_tokens
        self.tokenizer = tokenizer
        self.pad_id = pad_id
        self.pooling = pooling
        self.prefixes = prefixes
        self.dimension = dimension
        self.batch_size = batch_size
        self.inputs = [i.name for i in session.get_inputs()]
        outputs = [o.name for o in session.get_outputs()]
        self.output = next((name for name in POOLED if name in outputs), outputs[0])
        self.cache = EmbeddingCache()

    def embed(self, texts: Sequence[str], purpose: Purpose = None) -> npt.NDArray[np.float32]:
        """One normalised float32 row per text; repeated texts are embedded once."""
        prefix = self.prefixes.get(purpose or "passage", "")
        return self.cache.embed([prefix + text for text in texts], self._encode, self.dimension)

    def _encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        import numpy as np

        encodings = self.tokenizer.encode_batch(texts)
        # Sorting by token count (not characters) keeps padding, so wasted compute, minimal.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        cut = 0
        if self.short_session is not None:
            while cut < len(order) and len(encodings[order[cut]].ids) <= self.short_tokens:
                cut += 1
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for group, session in ((order[:cut], self.short_session), (order[cut:], self.session)):
            for start in range(0, len(group), self.batch_size):
                index = group[start : start + self.batch_size]
                out[index] = self._batch(session, [encodings[i] for i in index])
        return out

    def _batch(self, session: Any, encodings: list[Any]) -> npt.NDArray[np.float32]:
        import numpy as np

        from fondasi.backends.onnx_tokens import pad_batch

        feed, mask = pad_batch(encodings, self.inputs, self.pad_id)
        (hidden,) = session.run([self.output], feed)
        vectors = hidden if hidden.ndim == 2 else self._pool(hidden, mask)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.asarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)

    def _pool(self, hidden: Any, mask: Any) -> Any:
        import numpy as np

        if self.pooling == "cls":
            return hidden[:, 0]
        weights = mask.astype(hidden.dtype)[:, :, None]
        if self.pooling == "max":
            return (hidden + (weights - 1) * 1e9).max(axis=1)
        # Mean over real tokens only: padding must not dilute the average.
        return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


class OnnxEmbedderFactory:
    """Loads ONNX encoders, and safetensors encoders whose spec asks for an ONNX variant."""

    name = "onnx-embeddings"
    priority = 20  # above transformers-embeddings: a spec that asks for ONNX gets it

    def claims(self, spec: ModelSpec) -> bool:
        """ONNX files, or safetensors folders with ``extra["onnx_variant"]`` set."""
        if spec.path is None:
            return False
        if spec.format == "onnx":
            return True
        return spec.format == "safetensors" and spec.extra.get(VARIANT_KEY) in VARIANTS

    def load(self, spec: ModelSpec, settings: Settings) -> OnnxEmbedder:
        """Open the ONNX session (exporting first if needed) and the tokenizer beside it."""
        require("onnxruntime", "local", "ONNX embedding models")
        require("tokenizers", "local", "ONNX embedding models")
        from fondasi.backends.onnx_tokens import load_tokenizer

        if spec.path is None or not spec.path.exists():
            raise BadInputError(f"{spec.id}: no such model file: {spec.path}")
        short: dict[str, Any] = {}
        if spec.format == "onnx":
            model_file = spec.path / "model.onnx" if spec.path.is_dir() else spec.path
            folder = Path(spec.extra.get("tokenizer") or model_file.parent)
        else:
            from fondasi.backends.onnx_export import FP32, INT8, ensure_export

            variant = spec.extra.get(VARIANT_KEY, "fp32")
            folder = ensure_export(spec.path, settings.cache_dir, _slug(spec))
            model_file = folder / (INT8 if variant == "int8" else FP32)
            if variant == "int8":
                short = {"short_session": open_session(folder / FP32, settings.threads)}
        config = _json(folder / "config.json")
        sbert = _json(folder / "sentence_bert_config.json")
        tokenizer_config = _json(folder / "tokenizer_config.json")
        max_length = int(
            sbert.get("max_seq_length") or min(512, tokenizer_config.get("model_max_length", 512))
        )
        tokenizer, pad_id = load_tokenizer(folder, max_length)
        session = open_session(model_file, settings.threads)
        return OnnxEmbedder(
            session,
            tokenizer,
            pad_id=pad_id,
            pooling=pooling_mode(folder),
            prefixes=E5_PREFIXES if "e5" in spec.id.lower() else {},
            dimension=_dimension(session, config),
            short_tokens=SHORT_TOKENS,
            **short,
        )


def open_session(model_file: Path, threads: int | None) -> Any:
    """An ORT CPU session with all graph optimisations; a file ORT cannot read is bad input."""
    import onnxruntime as ort  # type: ignore[import-untyped]

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or 0  # 0: ORT's default, one per physical core
    options.inter_op_num_threads = 1  # an encoder is one chain of operators
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own types (InvalidProtobuf, Fail, NoSuchFile)
        raise BadInputError(f"{model_file} is not an ONNX model ORT can load: {exc}") from exc


def _dimension(session: Any, config: dict[str, Any]) -> int:
    shape = session.get_outputs()[0].shape
    if shape and isinstance(shape[-1], int):
        return int(shape[-1])
    if "hidden_size" in config:
        return int(config["hidden_size"])
    raise BadInputError("the ONNX model does not say its embedding size, and no config.json does")


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInputError(f"{path} is not valid JSON: {exc}") from exc


def _slug(spec: ModelSpec) -> str:
    """A file-name-safe name for the export folder: the id, or the folder of an ad-hoc id."""
    raw = spec.path.name if ":" in spec.id and spec.path else spec.id
    return re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-.").lower() or "model"


def onnx_spec(
    ref: str,
    settings: Settings,
    *,
    variant: Variant = "fp32",
    catalog: Catalog | None = None,
) -> ModelSpec:
    """The spec of a catalog id or an ad-hoc id (hf:, onnx:) on the ONNX fast path.

    A safetensors encoder folder is marked for export to ``variant``; anything the ONNX
    factory cannot load is refused here, before any loading.
    """
    from dataclasses import replace

    from fondasi.backends.resolve import resolve
    from fondasi.catalog.loader import Catalog

    if variant not in VARIANTS:
        raise BadInputError(f"unknown ONNX variant {variant!r}; choose one of: fp32, int8")
    catalog = catalog or Catalog.load(settings.card_dirs())
    spec = resolve(ref, catalog, settings)
    if spec.format == "safetensors":
        spec = replace(spec, extra={**spec.extra, VARIANT_KEY: variant})
    if not OnnxEmbedderFactory().claims(spec):
        raise BadInputError(
            f"{ref}: the ONNX path takes ONNX files or safetensors encoder folders, "
            f"not {spec.format}"
        )
    return spec
