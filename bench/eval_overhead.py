"""Overhead of `fondasi eval` against calling the model in a plain loop, measured in one run.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/eval_overhead.py [--model ID] [--repeats N]

The anchor is a plain loop: load the model once, then ``model.classify(batch, labels)``
over the same texts in batches of 16 (the default batch size of `fondasi eval`). Against
it, the same classification through ``fondasi.evaluate.evaluate`` with a fresh cache,
no baselines and 1,000 bootstrap rounds, two ways:

- prediction phase: examples/s of the candidate's predict loop as the runner reports it
  (batching, timing, cache writes per batch, progress callbacks); the ratio to the plain
  loop is the runner's overhead;
- end to end: examples / wall seconds of the whole `evaluate()` call (model load,
  predictions, metrics, bootstrap, paired test, writing results.json, examples.jsonl
  and report.html) against the plain loop's load + predictions.

Medians of ``--repeats`` runs, anchor and eval interleaved. Data: the 60 Indonesian
customer messages of ``eval-topic-id`` (four topics) with label descriptions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import yaml
from rich.console import Console
from rich.table import Table

from fondasi.data import bundled, read_jsonl
from fondasi.evaluate import evaluate, parse_config
from fondasi.evaluate.execution import load_model
from fondasi.settings import Settings

LABELS = {
    "pengiriman": "pengiriman paket, kurir, resi, ongkos kirim, alamat",
    "pembayaran": "pembayaran, transfer, refund, cicilan, tagihan, saldo",
    "akun": "akun, login, kata sandi, OTP, verifikasi, nomor telepon",
    "produk": "produk, ukuran, warna, garansi, barang rusak, stok",
}
BATCH = 16


def plain_loop(model_id: str, settings: Settings, texts: list[str]) -> tuple[float, float]:
    """(seconds to load, seconds to classify every text) calling the model directly."""
    start = time.perf_counter()
    model = load_model(model_id, settings)
    loaded = time.perf_counter()
    for at in range(0, len(texts), BATCH):
        model.classify(texts[at : at + BATCH], LABELS)
    return loaded - start, time.perf_counter() - loaded


def through_eval(model_id: str, settings: Settings, folder: Path) -> tuple[float, float]:
    """(end-to-end seconds, prediction-phase examples/s) of one `evaluate()` run."""
    config = {
        "task": "classification",
        "data": {"path": "bundled:eval-topic-id"},
        "labels": LABELS,
        "candidates": [{"model": model_id}],
        "baselines": False,
        "batch_size": BATCH,
        "cache": str(folder / "cache.sqlite"),  # fresh: every example is computed
    }
    start = time.perf_counter()
    results, _ = evaluate(parse_config(yaml.safe_dump(config)), settings, folder / "out")
    total = time.perf_counter() - start
    (candidate,) = results.candidates
    assert candidate.computed == 60 and candidate.failures == 0
    return total, candidate.throughput or 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="multilingual-e5-small")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    texts = [row["text"] for row in read_jsonl(bundled("eval-topic-id"))]
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(home=Path(tmp) / "home")
        load_model(args.model, settings).classify(texts[:4], LABELS)  # warm caches and files
        plain_rates, plain_e2e, eval_rates, eval_e2e = [], [], [], []
        for number in range(args.repeats):
            load, predict = plain_loop(args.model, settings, texts)
            plain_rates.append(len(texts) / predict)
            plain_e2e.append(len(texts) / (load + predict))
            total, rate = through_eval(args.model, settings, Path(tmp) / f"run{number}")
            eval_rates.append(rate)
            eval_e2e.append(len(texts) / total)
    table = Table(title=f"fondasi eval vs a plain loop · {args.model} · 60 texts, batch {BATCH}")
    table.add_column("phase")
    table.add_column("plain loop ex/s (anchor)", justify="right")
    table.add_column("fondasi eval ex/s", justify="right")
    table.add_column("ratio", justify="right")
    for phase, anchor, ours in (
        ("predictions", plain_rates, eval_rates),
        ("end to end (load, metrics, report)", plain_e2e, eval_e2e),
    ):
        a, b = statistics.median(anchor), statistics.median(ours)
        table.add_row(phase, f"{a:.1f}", f"{b:.1f}", f"{b / a:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
