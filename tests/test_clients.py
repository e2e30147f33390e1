"""Third-party clients against fondasi serve: lm-evaluation-harness and LiteLLM.

The harness runs two tasks written here (JSONL files and task YAMLs in a temp folder, never
the hub): a generate-until task through ``local-chat-completions`` in process, and a
multiple-choice task (log-likelihoods from ``echo`` + ``logprobs``) through
``local-completions`` with the ``lm-eval`` command, as docs/clients.md shows it. LiteLLM
calls the server as an ``openai/`` model. Both must stay offline: any lookup or connection
beyond 127.0.0.1 is refused at once and recorded, and each test checks none was tried.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import numpy as np
import pytest

from fondasi.settings import Settings

from .serving import Running, running

SMOL = "smollm2-135m-instruct"
BASE = "smollm2-135m"  # the catalog's alias, served under its own name
E5 = "multilingual-e5-small"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
CITY = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "country": {"type": "string"}},
    "required": ["name", "country"],
    "additionalProperties": False,
}
# LiteLLM fetches a price map and other JSON files from GitHub unless told not to.
LITELLM_OFFLINE = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_OFFLINE_MODE": "true"}
OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

# Eight questions each way, Indonesian and English: a prompt, three choices, the right one.
QUESTIONS = [
    ("Ibu kota Indonesia adalah", ["Jakarta", "Bandung", "Surabaya"], 0),
    ("The capital of France is", ["Berlin", "Paris", "Madrid"], 1),
    ("Gunung tertinggi di Pulau Jawa adalah Gunung", ["Semeru", "Merapi", "Bromo"], 0),
    ("The largest planet in the solar system is", ["Mars", "Venus", "Jupiter"], 2),
    ("Bahasa resmi negara Indonesia adalah bahasa", ["Jawa", "Indonesia", "Sunda"], 1),
    ("Water freezes at a temperature of", ["0 degrees Celsius", "50 degrees", "90 degrees"], 0),
    ("Hari kemerdekaan Indonesia jatuh pada tanggal", ["1 Juni", "10 November", "17 Agustus"], 2),
    ("The opposite of hot is", ["cold", "warm", "loud"], 0),
]
SHORT_ANSWERS = [
    ("Apa ibu kota Indonesia?", "Jakarta"),
    ("What is the capital of France?", "Paris"),
    ("Berapa hasil dua ditambah dua? Jawab dengan angka.", "4"),
    ("What color is the sky on a clear day?", "blue"),
]


@pytest.fixture(scope="module", autouse=True)
def litellm_loops() -> Iterator[None]:
    """LiteLLM's synchronous calls leave an event loop behind unclosed (its own, not the
    server's). Collected here, the loop's ResourceWarning is this module's; left to the
    garbage collector, it surfaced in whichever test ran next on the worker."""
    yield
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "unclosed event loop", ResourceWarning)
        gc.collect()


@pytest.fixture(scope="module")
def server(
    shared_settings: Settings, smol: Any, e5: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    db = tmp_path_factory.mktemp("clients") / "logs.db"
    with running(
        shared_settings, {SMOL: smol, BASE: smol, E5: e5}, models=[SMOL, BASE, E5], db=str(db)
    ) as started:
        yield started


@pytest.fixture
def reached() -> Iterator[list[str]]:
    """Hosts a client tried to look up or connect to beyond 127.0.0.1, refused at once.

    The conftest already refuses such connections; a client may swallow that error (a
    background fetch falling back to a bundled copy), so the attempts are recorded too, and a
    name lookup fails at once instead of waiting on a resolver.
    """
    tried: list[str] = []
    lookup, connect = socket.getaddrinfo, socket.socket.connect

    def guarded_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (None, "localhost", "127.0.0.1", "::1", b"localhost", b"127.0.0.1"):
            tried.append(str(host))
            raise socket.gaierror(socket.EAI_NONAME, f"tests resolve no names ({host!r})")
        return lookup(host, *args, **kwargs)

    def recorded_connect(self: socket.socket, address: Any) -> Any:
        try:
            return connect(self, address)
        except RuntimeError:
            tried.append(str(address))
            raise

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", guarded_lookup)
        patch.setattr(socket.socket, "connect", recorded_connect)
        yield tried
    assert tried == [], f"a client tried to reach the network: {tried}"


def _requests(server: Running, route: str, model: str) -> float:
    """Answered requests (status 200) of one route and model, from the server's /metrics."""
    text = httpx.get(server.url + "/metrics", timeout=30).text
    key = f'fondasi_requests_total{{model="{model}",route="{route}",status="200"}} '
    return sum(float(line[len(key) :]) for line in text.splitlines() if line.startswith(key))


# ---- lm-evaluation-harness ----


def _task_folder(folder: Path) -> Path:
    """Two local tasks: ``fondasi_ibukota_mc`` (multiple choice), ``fondasi_jawab`` (generate)."""
    folder.mkdir(parents=True, exist_ok=True)
    choices = folder / "ibukota.jsonl"
    choices.write_text(
        "".join(
            json.dumps({"question": q, "choices": c, "label": a}, ensure_ascii=False) + "\n"
            for q, c, a in QUESTIONS
        ),
        encoding="utf-8",
    )
    short = folder / "jawab.jsonl"
    short.write_text(
        "".join(
            json.dumps({"question": q, "answer": a}, ensure_ascii=False) + "\n"
            for q, a in SHORT_ANSWERS
        ),
        encoding="utf-8",
    )
    (folder / "fondasi_ibukota_mc.yaml").write_text(
        f"""task: fondasi_ibukota_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {choices}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: choices
doc_to_target: label
target_delimiter: " "
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
""",
        encoding="utf-8",
    )
    (folder / "fondasi_jawab.yaml").write_text(
        f"""task: fondasi_jawab
dataset_path: json
dataset_kwargs:
  data_files:
    test: {short}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}} Answer in one word."
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 12
  do_sample: false
  temperature: 0
filter_list:
  - name: first-word
    filter:
      - function: regex
        regex_pattern: "([A-Za-z0-9]+)"
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    ignore_punctuation: true
""",
        encoding="utf-8",
    )
    return folder


def _metric(results: dict[str, Any], task: str, name: str) -> float:
    """A task's metric from the harness's results, whatever filter it was reported under."""
    found = [v for k, v in results["results"][task].items() if k.split(",")[0] == name]
    assert found, results["results"][task]
    value = float(found[0])
    assert 0.0 <= value <= 1.0, (task, name, value)
    return value


def test_lm_eval_generate_until_over_chat(
    server: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reached: list[str]
) -> None:
    for name, value in OFFLINE.items():
        monkeypatch.setenv(name, value)
    import lm_eval
    from lm_eval.tasks import TaskManager

    before = _requests(server, "chat", SMOL)
    results = lm_eval.simple_evaluate(
        model="local-chat-completions",
        model_args={
            "model": SMOL,
            "base_url": server.v1 + "/chat/completions",
            "num_concurrent": 1,
            "max_retries": 1,
            "timeout": 120,
        },
        tasks=["fondasi_jawab"],
        task_manager=TaskManager(include_path=str(_task_folder(tmp_path / "tasks"))),
        apply_chat_template=True,
        log_samples=False,
    )
    assert results is not None
    _metric(results, "fondasi_jawab", "exact_match")
    assert _requests(server, "chat", SMOL) - before == len(SHORT_ANSWERS)


def test_lm_eval_multiple_choice_over_completions(
    server: Running, smol: Any, tmp_path: Path
) -> None:
    """The ``lm-eval`` command of docs/clients.md; log-likelihoods need the model's tokenizer."""
    tokenizer = tmp_path / "tokenizer"
    smol.backend.tokenizer.save_pretrained(tokenizer)
    tasks, out = _task_folder(tmp_path / "tasks"), tmp_path / "results"
    model_args = ",".join(
        [
            f"model={BASE}",
            f"base_url={server.v1}/completions",
            f"tokenizer={tokenizer}",
            "tokenizer_backend=huggingface",
            "tokenized_requests=False",
            "num_concurrent=1",
            "max_retries=1",
        ]
    )
    before = _requests(server, "completions", BASE)
    done = subprocess.run(
        [
            *(sys.executable, "-m", "lm_eval", "run", "--model", "local-completions"),
            *("--model_args", model_args, "--tasks", "fondasi_ibukota_mc"),
            *("--include_path", str(tasks), "--output_path", str(out)),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **OFFLINE, "OPENAI_API_KEY": "unused"},
        timeout=600,  # a guard against hangs, not a speed check
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    (written,) = out.rglob("results_*.json")
    results = json.loads(written.read_text(encoding="utf-8"))
    _metric(results, "fondasi_ibukota_mc", "acc")
    _metric(results, "fondasi_ibukota_mc", "acc_norm")
    # One echo + logprobs request per choice: the harness scores each continuation.
    choices = sum(len(c) for _, c, _ in QUESTIONS)
    assert _requests(server, "completions", BASE) - before == choices


# ---- LiteLLM ----


@pytest.fixture(scope="module")
def litellm() -> Iterator[Any]:
    """LiteLLM, imported and called with its network fetches off."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in LITELLM_OFFLINE.items():
            patch.setenv(name, value)
        import litellm

        yield litellm


def _chat(server: Running) -> dict[str, Any]:
    return {"model": f"openai/{SMOL}", "api_base": server.v1, "api_key": "unused"}


ASK = [{"role": "user", "content": "What is the capital of Indonesia?"}]


def test_litellm_chat_and_stream(
    litellm: Any, server: Running, smol: Any, reached: list[str]
) -> None:
    answer = litellm.completion(**_chat(server), messages=ASK, max_tokens=12)
    direct = smol.generate(ASK[0]["content"], max_tokens=12)
    assert answer.choices[0].message.content == direct.text  # greedy: the same words
    assert answer.usage.completion_tokens == direct.usage.completion_tokens
    chunks = litellm.completion(**_chat(server), messages=ASK, max_tokens=12, stream=True)
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert streamed == direct.text


def test_litellm_required_tool_call(litellm: Any, server: Running, reached: list[str]) -> None:
    answer = litellm.completion(
        **_chat(server),
        messages=[{"role": "user", "content": "What is the weather in Jakarta?"}],
        tools=[WEATHER],
        tool_choice="required",
        max_tokens=64,
    )
    calls = answer.choices[0].message.tool_calls
    assert calls  # one or more: parallel calls are allowed, the model chooses
    for call in calls:
        assert call.function.name == "get_weather"
        assert isinstance(json.loads(call.function.arguments)["city"], str)
    assert answer.choices[0].finish_reason == "tool_calls"


def test_litellm_json_schema_answer(litellm: Any, server: Running, reached: list[str]) -> None:
    answer = litellm.completion(
        **_chat(server),
        messages=[{"role": "user", "content": "Jakarta is a city in Indonesia. Reply as JSON."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": CITY, "strict": True},
        },
        max_tokens=64,
    )
    jsonschema.validate(json.loads(answer.choices[0].message.content), CITY)


def test_litellm_async(litellm: Any, server: Running, smol: Any, reached: list[str]) -> None:
    async def ask() -> Any:
        return await litellm.acompletion(**_chat(server), messages=ASK, max_tokens=12)

    answer = asyncio.run(ask())
    assert answer.choices[0].message.content == smol.generate(ASK[0]["content"], max_tokens=12).text


def test_litellm_embedding(litellm: Any, server: Running, e5: Any, reached: list[str]) -> None:
    texts = ["Saya suka makan nasi goreng.", "I like fried rice."]
    result = litellm.embedding(
        model=f"openai/{E5}", api_base=server.v1, api_key="unused", input=texts
    )
    got = np.array([row["embedding"] for row in result.data])
    expected = np.asarray(e5.embed(texts))
    assert got.shape == expected.shape
    assert np.allclose(got, expected, atol=1e-4)
