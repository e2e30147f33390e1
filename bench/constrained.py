"""What holding local decoding to a schema costs, and what it buys: validity and speed.

    make .venv/.fondasi-installed .venv/.fondasi-llamacpp
    HF_HUB_OFFLINE=1 .venv/bin/python bench/constrained.py [--rounds 2]

The same prompts, on SmolLM2-135M-Instruct through transformers and through llama.cpp,
are answered twice: held to the schema (``schema=``, llguidance masks the logits), and
free (the same schema in the system prompt, JSON read leniently from whatever comes
back). Validity is the share of answers that parse and validate (tool calls: a call to a
given function with valid arguments). Speed is completion tokens per second; the ratio is
held / free for the same prompts in the same run, so machine load hits both alike.
Greedy decoding, ``max_tokens`` 96.
"""

# ruff: noqa: E501  (the schemas and tools read best one per line)
from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import jsonschema
from rich.console import Console
from rich.table import Table

import fondasi
from fondasi.prompts.parse import OutputParseError, extract_json
from fondasi.prompts.tools import schema_instruction, tool_instruction
from fondasi.types import Tool

INVOICE = {
    "type": "object",
    "properties": {
        "nomor": {"type": "string"},
        "pelanggan": {"type": "string"},
        "total_rupiah": {"type": "integer"},
    },
    "required": ["nomor", "pelanggan", "total_rupiah"],
}
ORDER = {
    "type": "object",
    "properties": {
        "pelanggan": {
            "type": "object",
            "properties": {"nama": {"type": "string"}, "kota": {"type": "string"}},
            "required": ["nama", "kota"],
        },
        "kurir": {"type": "string", "enum": ["JNE", "J&T", "SiCepat"]},
        "barang": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
    },
    "required": ["pelanggan", "kurir", "barang"],
}
TOOLS = [
    {"type": "function", "function": {"name": "cek_ongkir", "description": "Ongkos kirim antar kota", "parameters": {"type": "object", "properties": {"kota_asal": {"type": "string"}, "kota_tujuan": {"type": "string"}, "berat_kg": {"type": "number"}}, "required": ["kota_asal", "kota_tujuan", "berat_kg"]}}},
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
]  # fmt: skip
PROMPTS = {
    "flat object": [
        "Tagihan INV-0142 untuk PT Sinar Jaya sebesar Rp 4.750.000.",
        "Invoice INV-2026-77 for CV Maju Bersama, total 1200000 rupiah.",
        "Nomor tagihan A-19, pelanggan Toko Ani, jumlah 350 ribu rupiah.",
    ],
    "nested + enum + array": [
        "Budi dari Bandung memesan kopi dan gula, dikirim lewat JNE.",
        "Order from Sari in Medan: two books, via SiCepat.",
        "Ani (Surabaya) beli sepatu lewat J&T.",
    ],
    "tool call (2 functions)": [
        "Berapa ongkir paket 2 kg dari Bandung ke Surabaya?",
        "What's the weather in Jakarta?",
        "Ongkir 5 kg Medan ke Denpasar berapa?",
    ],
}
MAX_TOKENS = 96


def valid_json(text: str, schema: dict[str, Any]) -> bool:
    try:
        jsonschema.validate(extract_json(text), schema)
    except (OutputParseError, jsonschema.ValidationError):
        return False
    return True


def valid_free_call(text: str) -> bool:
    """A free answer holds a valid call if its JSON names a function with valid arguments."""
    try:
        value = extract_json(text)
    except OutputParseError:
        return False
    tools = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}  # type: ignore[index]
    if not isinstance(value, dict) or value.get("name") not in tools:
        return False
    try:
        jsonschema.validate(value.get("arguments"), tools[value["name"]])
    except jsonschema.ValidationError:
        return False
    return True


def run(model: Any, task: str, prompt: str, held: bool) -> tuple[bool, int, float]:
    """(valid, completion tokens, seconds) for one answer."""
    start = time.perf_counter()
    if task.startswith("tool"):
        if held:
            answer = model.generate(prompt, tools=TOOLS, tool_choice="required", parallel_tool_calls=False, max_tokens=MAX_TOKENS)  # fmt: skip
            ok = bool(answer.tool_calls)
        else:
            system = tool_instruction([Tool.of(t) for t in TOOLS], "required")
            answer = model.generate(prompt, system=system, max_tokens=MAX_TOKENS)
            ok = valid_free_call(answer.text)
    else:
        schema = INVOICE if task == "flat object" else ORDER
        if held:
            answer = model.generate(prompt, schema=schema, max_tokens=MAX_TOKENS)
            ok = answer.finish_reason == "stop" and valid_json(answer.text, schema)
        else:
            answer = model.generate(
                prompt, system=schema_instruction(schema), max_tokens=MAX_TOKENS
            )
            ok = valid_json(answer.text, schema)
    return ok, answer.usage.completion_tokens, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    smol = fondasi.model("smollm2-135m-instruct")
    models = {"transformers": smol, "llama.cpp": fondasi.model(f"llamacpp:{smol.spec.path}")}
    console = Console()
    console.print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores)")
    table = Table(title="Constrained decoding: SmolLM2-135M-Instruct, greedy, max_tokens 96")
    for column in ("backend", "task", "valid free", "valid held", "tok/s free", "tok/s held", "held / free"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("backend", "task") else "right")
    for engine, model in models.items():
        for task, prompts in PROMPTS.items():
            run(model, task, prompts[0], True)  # warm: the grammar's tokenizer is built once
            totals = {True: [0, 0, 0.0], False: [0, 0, 0.0]}
            for _ in range(args.rounds):
                for prompt in prompts:
                    for held in (False, True):  # alternated, so load hits both alike
                        ok, tokens, seconds = run(model, task, prompt, held)
                        totals[held][0] += ok
                        totals[held][1] += tokens
                        totals[held][2] += seconds
            count = args.rounds * len(prompts)
            speed = {held: t[1] / t[2] for held, t in totals.items()}
            table.add_row(
                engine,
                task,
                f"{totals[False][0]}/{count}",
                f"{totals[True][0]}/{count}",
                f"{speed[False]:.1f}",
                f"{speed[True]:.1f}",
                f"{speed[True] / speed[False]:.2f}x",
            )
    console.print(table)
    console.print(f"load average after: {os.getloadavg()[0]:.2f}")
    console.print(json.dumps({"command": "bench/constrained.py", "rounds": args.rounds}))


if __name__ == "__main__":
    main()
