"""``fondasi run`` with a schema, tools, a grammar and log-probabilities, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from .conftest import Cli

SMOL = "smollm2-135m-instruct"
WEATHER = {
    "type": "object",
    "properties": {
        "kota": {"type": "string", "enum": ["Jakarta", "Bandung"]},
        "suhu": {"type": "integer"},
    },
    "required": ["kota", "suhu"],
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "cek_ongkir",
            "description": "Ongkos kirim antar kota",
            "parameters": {
                "type": "object",
                "properties": {"kota_asal": {"type": "string"}, "kota_tujuan": {"type": "string"}},
                "required": ["kota_asal", "kota_tujuan"],
            },
        },
    }
]


def test_a_schema_holds_the_answer(cli: Cli, tmp_path: Path) -> None:
    schema = tmp_path / "cuaca.json"
    schema.write_text(json.dumps(WEATHER), encoding="utf-8")
    done = cli("run", SMOL, "Cuaca Bandung hari ini 24 derajat.", "--schema", str(schema),
               "--max-tokens", "40", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    completion = json.loads(done.stdout)
    jsonschema.validate(json.loads(completion["text"]), WEATHER)
    assert completion["parsed"] == json.loads(completion["text"])


def test_tools_answer_with_a_call(cli: Cli, tmp_path: Path) -> None:
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps(TOOLS), encoding="utf-8")
    done = cli("run", SMOL, "Berapa ongkir dari Medan ke Padang?", "--tools", str(tools),
               "--tool-choice", "cek_ongkir", "--max-tokens", "60", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    completion = json.loads(done.stdout)
    assert completion["finish_reason"] == "tool_calls"
    (call,) = completion["tool_calls"]
    assert call["name"] == "cek_ongkir"
    jsonschema.validate(json.loads(call["arguments"]), TOOLS[0]["function"]["parameters"])  # type: ignore[index]
    shown = cli("run", SMOL, "Berapa ongkir dari Medan ke Padang?", "--tools", str(tools),
                "--tool-choice", "cek_ongkir", "--max-tokens", "60")  # fmt: skip
    assert shown.returncode == 0 and shown.stdout.startswith("cek_ongkir({")


def test_a_grammar_and_logprobs(cli: Cli, tmp_path: Path) -> None:
    grammar = tmp_path / "yn.lark"
    grammar.write_text('start: "ya" | "tidak"\n', encoding="utf-8")
    done = cli("run", SMOL, "Apakah Jakarta di Indonesia?", "--grammar", str(grammar),
               "--logprobs", "2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("ya", "tidak")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) >= 1 and all(float(line.split()[1]) <= 0 for line in lines)


def test_bad_flags_are_clear(cli: Cli, tmp_path: Path) -> None:
    missing = cli("run", SMOL, "x", "--tools", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "--tools: no such file" in missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    bad = cli("run", SMOL, "x", "--schema", str(broken))
    assert bad.returncode == 2 and "is not JSON" in bad.stderr
    lonely = cli("run", SMOL, "x", "--tool-choice", "required")
    assert lonely.returncode == 2 and "--tool-choice needs --tools" in lonely.stderr
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps(TOOLS), encoding="utf-8")
    unknown = cli("run", SMOL, "x", "--tools", str(tools), "--tool-choice", "kirim_paket")
    assert (
        unknown.returncode == 2
        and "kirim_paket" in unknown.stderr
        and "cek_ongkir" in unknown.stderr
    )
