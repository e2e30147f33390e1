"""Packaged language models side by side: speed on both GGUF engines, quality on the tour task.

    .venv/bin/python bench/instruct_models.py [--tokens N] [--rounds R] [--threads T]
        [--models ID,ID] [--skip-quality | --skip-speed]

Speed: greedy decoding of chat-templated prompts, tokens/s (median of the rounds) and load
time, for each model on fondasi's transformers backend (the GGUF dequantised once into the
cache) and on its llama.cpp backend (the GGUF as shipped). The anchor is SmolLM2-135M on
transformers, measured in the same run.

Quality: one ``fondasi eval`` run on the quickstart's task (``sentiment3-id``: Indonesian
customer messages, three labels, 300 to train, 90 to test) with every model zero-shot and
few-shot (6 balanced examples from the training rows), each by log-probability of the labels
and by generation (the answer read as a label), on llama.cpp; beside TF-IDF + logistic
regression and the majority class. Accuracy with its 95% bootstrap interval.
Models whose weights are not installed (the 1.5B ships in ``fondasi[models-large]``) are
left out and named.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

MODELS = [
    "smollm2-135m-instruct",
    "gemma-3-270m",
    "qwen2-5-coder-0-5b-instruct",
    "qwen2-5-coder-1-5b-instruct",
]
PROMPTS = [
    "Apa ibu kota Indonesia? Jelaskan singkat sejarahnya.",
    "Explain in a few sentences why the sky is blue.",
    "Tulis tiga tips untuk belajar bahasa baru.",
]
ENGINES = ("transformers", "llama.cpp")


def speed(model_id: str, engine: str, settings: Any, tokens: int, rounds: int) -> dict[str, float]:
    """Load time and median decode tokens/s of one model on one engine."""
    import fondasi

    start = time.perf_counter()
    model = fondasi.model(model_id, settings.model_copy(update={"gguf_engine": engine}))
    load = time.perf_counter() - start
    chat = model.card is None or "chat" in [str(t) for t in model.card.tasks]
    model.generate("Halo", max_tokens=4)  # warm-up: first-call allocations
    rates = []
    for _ in range(rounds):
        produced, elapsed = 0, 0.0
        for prompt in PROMPTS:
            asked: Any = [{"role": "user", "content": prompt}] if chat else prompt
            began = time.perf_counter()
            result = model.generate(asked, max_tokens=tokens, temperature=0)
            elapsed += time.perf_counter() - began
            produced += result.usage.completion_tokens if result.usage else 0
        rates.append(produced / elapsed)
    return {"load": load, "tps": statistics.median(rates)}


def quality(models: list[str], settings: Any, out: Path) -> Any:
    """One eval run over every model zero- and few-shot, by log-probability and generation."""
    from fondasi.evaluate import EvalConfig, evaluate

    candidates: list[dict[str, Any]] = []
    for model in models:
        for shots in (0, 6):
            for by in ("logprob", "generation"):
                spec: dict[str, Any] = {"model": model, "template": "sentiment-id", "by": by}
                if shots:
                    spec |= {"shots": shots, "select": "balanced"}
                candidates.append(spec)
    config = EvalConfig.model_validate(
        {
            "name": "packaged language models on sentiment3-id",
            "task": "classification",
            "data": {"path": "bundled:sentiment3-id-dev"},
            "train": {"path": "bundled:sentiment3-id-train"},
            "labels": ["positif", "negatif", "netral"],
            "candidates": candidates,
            "seed": 0,
        }
    )
    results, _ = evaluate(config, settings.model_copy(update={"gguf_engine": "llama.cpp"}), out)
    return results


def main() -> None:
    """Measure and print both tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=64, help="New tokens per prompt.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds per model and engine.")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads.")
    parser.add_argument("--models", default=",".join(MODELS), help="Catalog ids, comma-separated.")
    parser.add_argument("--skip-quality", action="store_true", help="Measure speed only.")
    parser.add_argument("--skip-speed", action="store_true", help="Measure quality only.")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    import fondasi
    from fondasi.errors import BadInputError
    from fondasi.settings import Settings

    torch.set_num_threads(args.threads)
    console = Console()
    console.print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as cache:
        settings = Settings.load(cache=Path(cache), threads=args.threads)
        present = []
        for model_id in args.models.split(","):
            try:
                fondasi.model(model_id, settings.model_copy(update={"gguf_engine": "llama.cpp"}))
            except BadInputError as exc:
                console.print(f"[yellow]left out {model_id}: {exc}[/]")
                continue
            present.append(model_id)
        table = Table(title=f"Decode speed, {args.tokens} tokens × {len(PROMPTS)} prompts")
        for column in ("model", "engine", "tokens/s", "vs anchor", "load (first)"):
            table.add_column(column, justify="left" if column in ("model", "engine") else "right")
        anchor = None
        for model_id in [] if args.skip_speed else present:
            for engine in ENGINES:
                got = speed(model_id, engine, settings, args.tokens, args.rounds)
                anchor = anchor or got["tps"]
                table.add_row(
                    model_id,
                    engine,
                    f"{got['tps']:.1f}",
                    f"{got['tps'] / anchor:.2f}×",
                    f"{got['load']:.1f} s",
                )
        if not args.skip_speed:
            console.print(table)
        if not args.skip_quality:
            results = quality(present, settings, Path(cache) / "eval")
            board = Table(title=results.name)
            for column in ("candidate", "accuracy", "95% interval", "macro-F1", "s/text"):
                board.add_column(column, justify="left" if column == "candidate" else "right")
            for row in results.candidates:
                ci = f"{row.ci.low:.3f}–{row.ci.high:.3f}" if row.ci else "—"
                board.add_row(
                    row.name,
                    f"{row.metrics.get('accuracy', float('nan')):.3f}",
                    ci,
                    f"{row.metrics.get('macro_f1', float('nan')):.3f}",
                    f"{row.latency.mean:.2f}" if row.latency.mean is not None else "—",
                )
            console.print(board)
    console.print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
