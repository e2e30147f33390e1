"""Few-shot with Gemma, a model that reads Indonesian: the seed's translation and sentiment.

Apart from ``test_prompting.py`` so that the two slowest few-shot runs (SmolLM2's and
Gemma's) land on different pytest workers (``--dist loadfile``).
"""

from __future__ import annotations

from typing import Any

import fondasi
from fondasi.data import bundled, read_jsonl
from fondasi.types import GenerateOptions

from .test_prompting import SEED_INPUT, accuracy


def test_the_seed_translations_on_a_model_that_reads_indonesian(gemma: Any) -> None:
    few = fondasi.ask(
        gemma, "translate-id-en-fewshot", input=SEED_INPUT, options=GenerateOptions(stop=["\n"])
    )
    assert few.value == "I like learning about AI"
    # The zero-shot seed line, verbatim, through plain generate.
    zero = gemma.generate(
        "Terjemahkan kalimat berikut ke dalam bahasa Inggris: 'Saya suka belajar tentang AI'",
        max_tokens=24,
    )
    assert zero.text.strip() and zero.usage.completion_tokens > 0


def test_gemma_classifies_indonesian_sentiment_few_shot(gemma: Any) -> None:
    examples = [
        {"text": example["input"], "label": example["output"]}
        for example in fondasi.Prompt.load("sentiment-id").examples
        if example["output"] != "netral"
    ]
    rows = read_jsonl(bundled("sentiment-id"))[:40]
    score = accuracy(gemma, rows, template="sentiment-id", shots=examples, k=6, calibrate=False)
    assert score >= 0.9  # measured 1.00 on all 80
