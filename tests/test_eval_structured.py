"""Structured extraction and function calling in ``fondasi eval``: the metrics on hand-made
answers, a run through the runner, and the CLI with a config file against the OpenAI fake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fondasi.backends.base import Capability
from fondasi.data import bundled, read_jsonl
from fondasi.evaluate import evaluate, parse_config, read
from fondasi.evaluate.datasets import Example
from fondasi.evaluate.metrics import choose
from fondasi.evaluate.tasks import get_task
from fondasi.evaluate.tasks.extract import read_answer
from fondasi.settings import Settings
from fondasi.types import Completion, GenerateOptions, ToolCall, Usage

from .conftest import Cli
from .fakes.openai_server import KEY, FakeState, running

SCHEMA = {
    "type": "object",
    "properties": {
        "nama": {"type": "string"},
        "total": {"type": ["integer", "null"]},
        "kota": {"type": "string"},
    },
    "required": ["nama", "total", "kota"],
}
EXPECTED = {"nama": "Rina Wulandari", "total": 1250000, "kota": "Bandung"}


def scores(task: str, references: list[Any], outputs: list[Any]) -> dict[str, float]:
    names = get_task(task).default_metrics
    return {name: choose(task, name)(references, outputs) for name in names}


# -- structured: metrics ------------------------------------------------------------------


def test_valid_invalid_missing_and_wrong_typed_answers() -> None:
    answers = [
        '{"nama": "  rina   WULANDARI ", "total": 1250000.0, "kota": "bandung"}',  # right
        "Nama: Rina, total 1.250.000",  # not JSON
        '{"nama": "Rina Wulandari", "kota": "Bandung"}',  # total missing
        '{"nama": "Rina Wulandari", "total": "1250000", "kota": "Bandung"}',  # wrong type
    ]
    outputs = [read_answer(text, SCHEMA) for text in answers]
    assert [o["valid"] for o in outputs] == [True, False, False, False]
    assert outputs[1]["value"] is None and outputs[1]["problem"].startswith("not JSON")
    assert "total" in outputs[2]["problem"] and "required" in outputs[2]["problem"]
    assert "total" in outputs[3]["problem"]
    got = scores("structured", [EXPECTED] * 4, outputs)
    assert got["schema_valid"] == pytest.approx(1 / 4)
    # right: 3 fields; not JSON: 0; missing total: 2; "1250000" is not the number 1250000: 2
    assert got["field_accuracy"] == pytest.approx(7 / 12)
    assert got["exact_match"] == pytest.approx(1 / 4)


def test_numbers_compare_by_value_and_extra_fields_spoil_a_record() -> None:
    task = get_task("structured")
    right = read_answer('{"nama": "Rina Wulandari", "total": 1.25e6, "kota": "Bandung"}', SCHEMA)
    extra = read_answer(
        '{"nama": "Rina Wulandari", "total": 1250000, "kota": "Bandung", "hp": "0812"}', SCHEMA
    )
    near = read_answer('{"nama": "Rina Wulandari", "total": 1250001, "kota": "Bandung"}', SCHEMA)
    got = scores("structured", [EXPECTED] * 3, [right, extra, near])
    assert got["exact_match"] == pytest.approx(1 / 3)
    assert task.example_score(EXPECTED, near) == pytest.approx(2 / 3)
    per_field = task.details([EXPECTED] * 3, [right, extra, near])["per_field"]
    assert per_field["total"] == {"accuracy": pytest.approx(2 / 3), "support": 3}
    assert per_field["nama"]["accuracy"] == 1.0


# -- function calling: metrics ------------------------------------------------------------

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
                "days": {"type": "integer"},
            },
            "required": ["city"],
        },
    },
}


def tool_reference(expected: list[dict[str, Any]], text: str = "Cuaca di Bogor?") -> Any:
    row = {"text": text, "tools": [WEATHER], "expected": expected}
    return get_task("function_calling").prepare(Example(0, "0", row)).fields["expected"]


def answer(*calls: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"calls": [{"name": n, "arguments": a} for n, a in calls], "text": ""}


def test_expected_no_call_against_a_call() -> None:
    none, bogor = (
        tool_reference([]),
        tool_reference([{"name": "get_weather", "arguments": {"city": "Bogor"}}]),
    )
    outputs = [
        answer(("get_weather", {"city": "Bogor"})),
        answer(),
        answer(),
        answer(("get_weather", {"city": "Bogor"})),
    ]
    got = scores("function_calling", [none, none, bogor, bogor], outputs)
    assert got["irrelevance"] == pytest.approx(1 / 2)  # one of two no-call rows kept quiet
    assert got["name_accuracy"] == pytest.approx(1 / 2)
    assert got["argument_accuracy"] == pytest.approx(1 / 2)
    assert got["call_accuracy"] == pytest.approx(2 / 4)


def test_arguments_match_like_a_syntax_tree() -> None:
    want = tool_reference(
        [{"name": "get_weather", "arguments": {"city": "Bogor", "unit": "celsius"}}]
    )
    cases = {
        "same, other case": (answer(("get_weather", {"city": " bogor", "unit": "Celsius"})), True),
        "optional left at its default": (answer(("get_weather", {"city": "Bogor"})), True),
        "extra optional argument": (answer(("get_weather", {"city": "Bogor", "days": 3})), True),
        "undeclared argument": (answer(("get_weather", {"city": "Bogor", "mood": "x"})), False),
        "wrong value": (answer(("get_weather", {"city": "Bandung"})), False),
        "other unit": (answer(("get_weather", {"city": "Bogor", "unit": "fahrenheit"})), False),
        "arguments not JSON": ({"calls": [{"name": "get_weather", "arguments": None}]}, False),
        "two calls for one": (
            answer(("get_weather", {"city": "Bogor"}), ("get_weather", {"city": "Bogor"})),
            False,
        ),
    }
    task = get_task("function_calling")
    got = {name: task.example_score(want, output) == 1.0 for name, (output, _) in cases.items()}
    assert got == {name: right for name, (_, right) in cases.items()}
    # A required argument the reference does not give is missing, whatever its default.
    fahrenheit = tool_reference(
        [{"name": "get_weather", "arguments": {"city": "Bogor", "unit": "fahrenheit"}}]
    )
    assert task.example_score(fahrenheit, answer(("get_weather", {"city": "Bogor"}))) == 0.0
    # Parallel calls match in any order; names alone may be right while an argument is not.
    two = tool_reference(
        [
            {"name": "get_weather", "arguments": {"city": "Bogor"}},
            {"name": "get_weather", "arguments": {"city": "Malang"}},
        ]
    )
    swapped = answer(("get_weather", {"city": "Malang"}), ("get_weather", {"city": "Bogor"}))
    wrong = answer(("get_weather", {"city": "Malang"}), ("get_weather", {"city": "Depok"}))
    got_two = scores("function_calling", [two, two], [swapped, wrong])
    assert got_two["name_accuracy"] == 1.0 and got_two["argument_accuracy"] == 0.5


def test_a_row_calling_a_tool_it_does_not_offer_is_refused() -> None:
    from fondasi.errors import BadInputError

    row = {"text": "x", "tools": [WEATHER], "expected": [{"name": "cek_ongkir", "arguments": {}}]}
    with pytest.raises(BadInputError, match="expected is a list"):
        get_task("function_calling").prepare(Example(3, "3", row))


# -- a whole run through the runner -------------------------------------------------------


class ScriptedModel:
    """A test-local stand-in for a ModelHandle: only what the eval runner calls (id, remote,
    usd_per_hour, can, generate). It answers each row from a script keyed by the last user
    text, and records the options it was sent."""

    id = "scripted"
    remote = False
    usd_per_hour = 0.36

    def __init__(self, script: dict[str, tuple[str, list[ToolCall]]]) -> None:
        self.script = script
        self.options: list[GenerateOptions] = []

    def can(self, capability: Capability) -> bool:
        return capability is Capability.GENERATE

    def generate(self, prompt: Any, *, options: GenerateOptions, **_: Any) -> Completion:
        self.options.append(options)
        said = prompt if isinstance(prompt, str) else _last_user(prompt)
        text, calls = self.script[said]
        return Completion(
            model=self.id,
            text=text,
            tool_calls=calls,
            usage=Usage(prompt_tokens=10, completion_tokens=5),
            finish_reason="tool_calls" if calls else "stop",
            seconds=0.01,
        )


def _last_user(messages: Any) -> str:
    turns = [m if isinstance(m, dict) else m.model_dump() for m in messages]
    return str([t for t in turns if t["role"] == "user"][-1]["content"])


def run_with(
    model: ScriptedModel, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **config: Any
) -> tuple[Any, Path]:
    monkeypatch.setattr("fondasi.evaluate.execution.load_model", lambda ref, settings: model)
    body = {
        "candidates": [{"model": "scripted"}],
        "bootstrap": 50,
        "cache": str(tmp_path / "c"),
        **config,
    }
    settings = Settings.load(home=tmp_path / "home")
    return evaluate(parse_config(yaml.safe_dump(body)), settings, out=tmp_path / "out")


def test_a_structured_run_on_the_bundled_indonesian_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rows = read_jsonl(bundled("eval-structured-id"))
    script: dict[str, tuple[str, list[ToolCall]]] = {}
    for n, row in enumerate(rows):
        record = dict(row["expected"])
        if n % 4 == 1:
            record["kota"] = record["kota"].upper() + "  "  # still right after normalising
        if n % 4 == 2:
            record["total_rupiah"] = str(record["total_rupiah"])  # breaks the schema
        script[row["text"]] = ("{not json" if n % 4 == 3 else json.dumps(record), [])
    model = ScriptedModel(script)
    results, folder = run_with(
        model, monkeypatch, tmp_path, task="structured", data={"path": "bundled:eval-structured-id"}
    )
    (only,) = results.candidates
    quarter = len(rows) // 4
    # Every row asked under the bundled schema, which the runner found by itself.
    assert all(
        o.json_schema and o.json_schema.schema_["required"][0] == "nama" for o in model.options
    )
    assert only.metrics["schema_valid"] == pytest.approx(2 * quarter / len(rows))
    total = [r["expected"]["total_rupiah"] for r in rows]
    wrong_totals = sum(1 for n in range(2, len(rows), 4) if total[n] is not None)
    fields = 6 * len(rows)
    assert only.metrics["field_accuracy"] == pytest.approx(
        (fields - 6 * quarter - wrong_totals) / fields
    )
    assert only.details["per_field"]["kota"]["accuracy"] == pytest.approx(3 / 4)
    assert only.details["per_field"]["total_rupiah"]["support"] == len(rows)
    assert only.failures == 0 and only.examples == len(rows)
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "Accuracy per field" in page and "total_rupiah" in page
    assert read(folder).metrics == ["field_accuracy", "schema_valid", "exact_match"]


def test_a_function_calling_run_on_the_bundled_english_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rows = read_jsonl(bundled("eval-tools-en"))
    script: dict[str, tuple[str, list[ToolCall]]] = {}
    for n, row in enumerate(rows):
        said = row.get("text") or _last_user(row["messages"])
        calls = [
            ToolCall(id=f"c{n}{i}", name=c["name"], arguments=json.dumps(c["arguments"]))
            for i, c in enumerate(row["expected"])
        ]
        if not calls and n % 2 == 0:  # half the no-call rows get a needless call
            calls = [ToolCall(id="x", name="get_weather", arguments='{"city": "Jakarta"}')]
        script[said] = ("Sure." if not calls else "", calls)
    model = ScriptedModel(script)
    results, folder = run_with(
        model,
        monkeypatch,
        tmp_path,
        task="function_calling",
        data={"path": "bundled:eval-tools-en"},
    )
    (only,) = results.candidates
    quiet = [n for n, row in enumerate(rows) if not row["expected"]]
    needless = sum(1 for n in quiet if n % 2 == 0)
    assert only.metrics["name_accuracy"] == 1.0 and only.metrics["argument_accuracy"] == 1.0
    assert only.metrics["irrelevance"] == pytest.approx(1 - needless / len(quiet))
    assert only.metrics["call_accuracy"] == pytest.approx(1 - needless / len(rows))
    assert all(o.tools and o.tool_choice == "auto" for o in model.options)
    assert only.details["per_function"]["(none)"]["support"] == len(quiet)
    assert "Accuracy per function" in (folder / "report.html").read_text(encoding="utf-8")


# -- the CLI with a config file, hosted candidates on the OpenAI fake ---------------------


@pytest.fixture
def fake() -> Iterator[tuple[str, FakeState]]:
    state = FakeState()
    with running(state) as url:
        yield url, state


def test_cli_runs_both_tasks_from_a_config_against_the_openai_fake(
    fake: tuple[str, FakeState], cli: Cli, home: Path, tmp_path: Path
) -> None:
    """The fake answers a schema with the first enum value and the user's text as every
    string, and ``tool-caller`` always calls the first tool: known, checkable scores."""
    url, state = fake
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'retries = 0\n[providers.fake]\nadapter = "openai"\nbase_url = "{url}"\n'
        f'api_key = "{KEY}"\n',
        encoding="utf-8",
    )
    schema = read_jsonl(bundled("eval-structured-en.schema"))[0]
    (tmp_path / "invoice.schema.json").write_text(json.dumps(schema), encoding="utf-8")
    structured = {
        "task": "structured",
        "data": {"path": "bundled:eval-structured-en"},
        "json_schema": "invoice.schema.json",  # relative to the config file
        "candidates": [{"model": "fake:echo"}],
        "bootstrap": 20,
    }
    (tmp_path / "structured.yaml").write_text(yaml.safe_dump(structured), encoding="utf-8")
    run = cli("eval", str(tmp_path / "structured.yaml"))
    assert run.returncode == 0, run.stderr
    (folder,) = (home / "evals").glob("*-structured")
    (echo,) = read(folder).candidates
    rows = read_jsonl(bundled("eval-structured-en"))
    assert echo.metrics["schema_valid"] == 1.0 and echo.metrics["exact_match"] == 0.0
    # Its only right fields: currency where IDR (the first enum value) is expected.
    idr = sum(r["expected"]["currency"] == "IDR" for r in rows)
    assert echo.metrics["field_accuracy"] == pytest.approx(idr / (6 * len(rows)))
    sent = [b for b in state.bodies if b.get("response_format")]
    assert len(sent) == len(rows) and sent[0]["response_format"]["type"] == "json_schema"

    tools = {
        "task": "function_calling",
        "data": {"path": "bundled:eval-tools-id"},
        "candidates": [{"model": "fake:tool-caller"}, {"model": "fake:echo"}],
        "bootstrap": 20,
    }
    (tmp_path / "tools.yaml").write_text(yaml.safe_dump(tools), encoding="utf-8")
    run = cli("eval", str(tmp_path / "tools.yaml"))
    assert run.returncode == 0, run.stderr
    (folder,) = (home / "evals").glob("*-function-calling")
    by_name = {c.model: c for c in read(folder).candidates}
    rows = read_jsonl(bundled("eval-tools-id"))
    calling = [r for r in rows if r["expected"]]
    first_tool = sum([c["name"] for c in r["expected"]] == ["cek_ongkir"] for r in calling)
    caller, quiet = by_name["fake:tool-caller"], by_name["fake:echo"]
    # After a tool result the fake answers in words, so those no-call rows are kept quiet.
    answered = sum(bool(r.get("messages")) and r["messages"][-1]["role"] == "tool" for r in rows)
    quiet_rows = len(rows) - len(calling)
    assert caller.failures == 0
    assert caller.metrics["irrelevance"] == pytest.approx(answered / quiet_rows)
    assert caller.metrics["name_accuracy"] == pytest.approx(first_tool / len(calling))
    assert caller.metrics["argument_accuracy"] == 0.0  # every string argument is the whole text
    assert quiet.metrics["irrelevance"] == 1.0 and quiet.metrics["name_accuracy"] == 0.0
    assert quiet.metrics["call_accuracy"] == pytest.approx((len(rows) - len(calling)) / len(rows))
    # Rows with earlier tool turns went over the wire as OpenAI tool messages.
    assert any(m["role"] == "tool" for b in state.bodies for m in b["messages"])
