"""`fondasi eval` against lm-evaluation-harness on the same local task, offline.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/eval_vs_lmeval.py [--lm-eval-python PATH]

Task: the 44 test rows `fondasi eval` scores on `eval-topic-id` (its seed-0, 30% stratified
split), four Indonesian topic labels, zero-shot, SmolLM2-135M-Instruct in fp32 on the CPU,
labels ranked by log-probability after the same instruction with the model's chat
template. lm-evaluation-harness (the anchor) runs it as a local `multiple_choice` task
(`dataset_path: json`) with `--apply_chat_template`; fondasi runs `fondasi eval` with the
`classify-en` template, no baselines and a fresh cache. The work is comparable, not
equal: lm-eval scores 4 continuations per example; fondasi scores 8 (each label and its
capitalised form) and 3 content-free prompts once for calibration, then adds metrics,
bootstrap and the report. Both are timed as whole commands (start-up and model load
included), one thread each (``OMP_NUM_THREADS=1``, ``FONDASI_THREADS=1``).

lm-eval is not a fondasi dependency: install it into its own venv that sees fondasi's
packages, e.g. ``python3.11 -m venv .venv-lmeval && echo $PWD/.venv/lib/python3.11/
site-packages > .venv-lmeval/lib/python3.11/site-packages/fondasi.pth &&
.venv-lmeval/bin/pip install lm-eval==0.4.13``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from rich.console import Console
from rich.table import Table

from fondasi.backends.gguf_cache import dequantise
from fondasi.backends.resolve import resolve
from fondasi.catalog.loader import Catalog
from fondasi.evaluate.config import DataSpec
from fondasi.evaluate.datasets import load_examples, split
from fondasi.settings import Settings

LABELS = ["pengiriman", "pembayaran", "akun", "produk"]
INSTRUCTION = (
    "Classify the text into exactly one of these categories: "
    + ", ".join(LABELS)
    + ". Answer with only the category."
)
TASK = """\
task: fondasi_topic_id
dataset_path: json
dataset_kwargs:
  data_files: {{test: {test}}}
test_split: test
output_type: multiple_choice
doc_to_text: "{instruction}\\nText: {{{{text}}}}\\nCategory:"
doc_to_choice: {labels}
doc_to_target: gold
target_delimiter: " "
metric_list:
  - metric: acc
"""


def run(command: list[str], env: dict[str, str]) -> float:
    """Wall seconds of a command; its output is shown only when it fails."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{command[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm-eval-python", default=".venv-lmeval/bin/python")
    args = parser.parse_args()
    examples = load_examples(DataSpec(path="bundled:eval-topic-id"), ("text", "label"))
    _, test = split(examples, 0.3, seed=0, stratify="label")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FONDASI_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = Settings.load(home=folder / "home")
        spec = resolve("smollm2-135m-instruct", Catalog.load(), settings)
        assert spec.path is not None
        weights = dequantise(spec.path, settings.cache_dir)  # the same fp32 weights for both
        data = folder / "test.jsonl"
        data.write_text(
            "\n".join(
                json.dumps({**e.fields, "gold": LABELS.index(e.fields["label"])}) for e in test
            ),
            encoding="utf-8",
        )
        tasks = folder / "tasks"
        tasks.mkdir()
        (tasks / "fondasi_topic_id.yaml").write_text(
            TASK.format(test=data, instruction=INSTRUCTION, labels=json.dumps(LABELS)),
            encoding="utf-8",
        )
        harness = run(
            [
                args.lm_eval_python, "-m", "lm_eval", "--model", "hf",
                "--model_args", f"pretrained={weights},dtype=float32",
                "--tasks", "fondasi_topic_id", "--include_path", str(tasks),
                "--device", "cpu", "--batch_size", "1", "--apply_chat_template",
                "--output_path", str(folder / "lm-eval"),
            ],
            env,
        )  # fmt: skip
        found = next((folder / "lm-eval").rglob("results_*.json"))
        harness_acc = json.loads(found.read_text())["results"]["fondasi_topic_id"]["acc,none"]
        config = folder / "eval.yaml"
        config.write_text(
            json.dumps(
                {
                    "task": "classification",
                    "data": {"path": str(data)},
                    "labels": LABELS,
                    "baselines": False,
                    "candidates": [{"model": "smollm2-135m-instruct", "template": "classify-en"}],
                    "cache": str(folder / "cache.sqlite"),
                }
            ),
            encoding="utf-8",
        )
        ours = run(
            [sys.executable, "-m", "fondasi", "--home", str(folder / "home"), "eval",
             str(config), "--out", str(folder / "out")],
            {**env, "FONDASI_CACHE": str(settings.cache_dir)},
        )  # fmt: skip
        results = json.loads((folder / "out" / "results.json").read_text())
        our_acc = results["candidates"][0]["metrics"]["accuracy"]
    n = len(test)
    table = Table(title=f"SmolLM2-135M zero-shot, {n} Indonesian topic rows, 4 labels")
    for column in ("tool", "accuracy", "wall s", "examples/s", "vs lm-eval"):
        table.add_column(column, justify="left" if column == "tool" else "right")
    table.add_row("lm-evaluation-harness 0.4.13 (anchor)", f"{harness_acc:.3f}",
                  f"{harness:.1f}", f"{n / harness:.2f}", "1.00")  # fmt: skip
    table.add_row("fondasi eval", f"{our_acc:.3f}", f"{ours:.1f}", f"{n / ours:.2f}",
                  f"{harness / ours:.2f}")  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
