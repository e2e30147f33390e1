"""Cloud fine-tuning jobs through the real openai SDK against a local fake of the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from pydantic import SecretStr

from fondasi.backends.remote import ProviderError
from fondasi.errors import BadInputError, UnknownChoiceError
from fondasi.providers import ProviderConfig
from fondasi.settings import Settings
from fondasi.tune.cloud import (
    JobInfo,
    cancel_job,
    create_job,
    job_status,
    list_jobs,
    to_chat_rows,
    validate_chat_file,
)

from .conftest import Cli
from .fakes.openai_finetune_server import KEY, FinetuneState, running
from .fakes.serve import free_port

WRONG_KEY = "sk-wrong-secret-4242424242"


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[str, FinetuneState]]:
    state = FinetuneState()
    with running(state) as url:
        yield url, state


def settings_for(url: str, tmp_path: Path, key: str = KEY) -> Settings:
    provider = ProviderConfig(adapter="openai", base_url=url, api_key=SecretStr(key), timeout_s=5)
    return Settings.load(home=tmp_path / "home", providers={"fake": provider})


def chat_row(number: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "Jawab dengan sopan."},
            {"role": "user", "content": f"Apa kabar nomor {number}?"},
            {"role": "assistant", "content": f"Baik, terima kasih ({number})."},
        ]
    }


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def train(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "train.jsonl", [chat_row(i) for i in range(12)])


def uploaded_rows(state: FinetuneState, file_id: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in state.files[file_id]["content"].decode().splitlines()]


def follow(settings: Settings, job: JobInfo) -> tuple[list[str], JobInfo]:
    seen = []
    for _ in range(10):
        job = job_status(settings, "fake", job.id)
        seen.append(job.status)
        if job.done:
            break
    return seen, job


def test_the_seed_job_is_created_and_followed_to_success(
    fake: tuple[str, FinetuneState], tmp_path: Path, train: Path
) -> None:
    url, state = fake
    settings = settings_for(url, tmp_path)
    job = create_job(settings, "fake", "gpt-3.5-turbo", train, n_epochs=3)
    assert job.status == "validating_files" and job.base_model == "gpt-3.5-turbo"
    assert job.n_epochs == 3 and job.fine_tuned_model is None and not job.done
    sent = state.bodies[-1]
    assert sent["method"] == {
        "type": "supervised",
        "supervised": {"hyperparameters": {"n_epochs": 3}},
    }
    assert "hyperparameters" not in sent and "seed" not in sent and "suffix" not in sent
    assert state.files[sent["training_file"]]["content"] == train.read_bytes()
    assert state.files[sent["training_file"]]["filename"] == "train.jsonl"

    seen, done = follow(settings, job)
    assert seen == ["running", "succeeded"]
    assert done.fine_tuned_model == "ft:gpt-3.5-turbo:fondasi::abc123"
    assert done.trained_tokens and done.trained_tokens > 0 and done.finished_at
    assert done.error is None
    assert done.events[0].startswith("Created fine-tuning job")  # oldest first
    assert done.events[-1] == "The job has successfully completed"
    assert KEY not in repr(done) and KEY not in done.model_dump_json()


def test_validation_file_suffix_and_seed_reach_the_api(
    fake: tuple[str, FinetuneState], tmp_path: Path, train: Path
) -> None:
    url, state = fake
    settings = settings_for(url, tmp_path)
    valid = write_jsonl(tmp_path / "valid.jsonl", [chat_row(100), chat_row(101)])
    job = create_job(
        settings, "fake", "gpt-4o-mini", train, valid, n_epochs=None, suffix="ulasan", seed=7
    )
    sent = state.bodies[-1]
    assert sent["method"] == {"type": "supervised"} and sent["seed"] == 7
    assert uploaded_rows(state, sent["validation_file"]) == [chat_row(100), chat_row(101)]
    assert job.n_epochs is None  # "auto" until the provider picks
    _, done = follow(settings, job)
    assert done.fine_tuned_model == "ft:gpt-4o-mini:fondasi:ulasan:abc123"


def test_list_and_cancel(fake: tuple[str, FinetuneState], tmp_path: Path, train: Path) -> None:
    url, _ = fake
    settings = settings_for(url, tmp_path)
    first = create_job(settings, "fake", "gpt-4o-mini", train)
    second = create_job(settings, "fake", "gpt-4o-mini", train)
    newest = list_jobs(settings, "fake", limit=1)
    assert [job.id for job in newest] == [second.id]  # one page only, though has_more
    ids = [job.id for job in list_jobs(settings, "fake", limit=100)]
    assert ids.index(second.id) < ids.index(first.id)

    cancelled = cancel_job(settings, "fake", first.id)
    assert cancelled.status == "cancelled" and cancelled.done
    assert job_status(settings, "fake", first.id).events[-1] == "Job cancelled"
    with pytest.raises(ProviderError, match=r"HTTP 400.*already finished"):
        cancel_job(settings, "fake", first.id)
    with pytest.raises(ProviderError, match=r"HTTP 404.*No such fine-tuning job"):
        job_status(settings, "fake", "ftjob-nope")
    with pytest.raises(BadInputError, match="no job id"):
        cancel_job(settings, "fake", " ")
    with pytest.raises(BadInputError, match="limit"):
        list_jobs(settings, "fake", limit=0)


def test_prompt_completion_rows_are_converted_and_uploaded_as_chat(
    fake: tuple[str, FinetuneState], tmp_path: Path
) -> None:
    url, state = fake
    rows = [{"prompt": f"Terjemahkan: kucing {i}", "completion": f"cat {i}"} for i in range(10)]
    source = write_jsonl(tmp_path / "pc.jsonl", rows)
    source.write_text(source.read_text() + "\n\n", encoding="utf-8")  # stray blank lines too
    report = validate_chat_file(source)
    assert report.converted and report.path != source and report.examples == 10
    expected = to_chat_rows(rows)
    assert expected[0]["messages"] == [
        {"role": "user", "content": "Terjemahkan: kucing 0"},
        {"role": "assistant", "content": "cat 0"},
    ]
    assert [json.loads(line) for line in report.path.read_text().splitlines()] == expected
    report.path.unlink()

    create_job(settings_for(url, tmp_path), "fake", "gpt-4o-mini", source)
    assert uploaded_rows(state, state.bodies[-1]["training_file"]) == expected
    assert not list(Path(report.path).parent.glob("pc-chat-*.jsonl"))  # the copy is removed


def test_tokens_and_cost_are_estimated(train: Path) -> None:
    report = validate_chat_file(train, price_per_1m=8.0, n_epochs=3)
    assert not report.converted and report.path == train and report.examples == 12
    assert 12 * 20 < report.tokens < 12 * 60
    assert report.estimated_cost_usd == pytest.approx(report.tokens * 3 * 8.0 / 1e6)
    assert validate_chat_file(train).estimated_cost_usd is None


BAD_LINES = [
    ("{not json", "not valid JSON"),
    ('["a list"]', "must be a JSON object"),
    ('{"text": "hi"}', 'expected {"messages"'),
    ('{"messages": []}', 'expected {"messages"'),
    ('{"messages": [{"role": "bot", "content": "x"}]}', "message 1 has role 'bot'"),
    (
        '{"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "x"}]}',
        r"message 1 \(user\) is empty",
    ),
    ('{"messages": [{"role": "user", "content": ["x"]}]}', "content must be a string"),
    (
        '{"messages": [{"role": "system", "content": "a"}, {"role": "user", "content": "b"}]}',
        "no assistant message",
    ),
    (
        '{"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]}',
        "last message must be the assistant's",
    ),
    ('{"prompt": "only a prompt", "completion": 3}', r"message 2 \(assistant\) content"),
]


@pytest.mark.parametrize(("line", "problem"), BAD_LINES)
def test_bad_lines_are_named(tmp_path: Path, line: str, problem: str) -> None:
    lines = [json.dumps(chat_row(i)) for i in range(12)]
    lines[3] = line
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(BadInputError, match=rf"bad\.jsonl:4: .*{problem}"):
        validate_chat_file(path)


def test_too_few_examples_and_missing_files(tmp_path: Path) -> None:
    small = write_jsonl(tmp_path / "small.jsonl", [chat_row(i) for i in range(9)])
    with pytest.raises(BadInputError, match=r"has 9 example.*at least 10"):
        validate_chat_file(small)
    with pytest.raises(BadInputError, match="no such training file"):
        validate_chat_file(tmp_path / "nowhere.jsonl")


def test_a_provider_without_the_jobs_api_is_refused(tmp_path: Path, train: Path) -> None:
    settings = settings_for("http://127.0.0.1:9/v1", tmp_path)
    with pytest.raises(BadInputError, match=r"anthropic .*providers that do: fake, ollama, openai"):
        create_job(settings, "anthropic", "claude-x", train)
    with pytest.raises(UnknownChoiceError, match="Did you mean: openai"):
        list_jobs(settings, "opnai")


def test_a_wrong_key_is_a_clear_error_without_the_key(
    fake: tuple[str, FinetuneState], tmp_path: Path, train: Path
) -> None:
    url, _ = fake
    settings = settings_for(url, tmp_path, key=WRONG_KEY)
    with pytest.raises(ProviderError, match=r"fake \(HTTP 401\): the API key was refused") as info:
        create_job(settings, "fake", "gpt-4o-mini", train)
    assert WRONG_KEY not in str(info.value) and WRONG_KEY not in repr(info.value)


def test_an_unknown_model_passes_the_providers_message_on(
    fake: tuple[str, FinetuneState], tmp_path: Path, train: Path
) -> None:
    url, _ = fake
    with pytest.raises(ProviderError, match=r"HTTP 400.*missing is not available") as info:
        create_job(settings_for(url, tmp_path), "fake", "missing", train)
    assert info.value.status == 400 and not info.value.retryable
    assert KEY not in str(info.value) and KEY not in repr(info.value)


def test_a_key_echoed_by_the_server_is_masked(
    fake: tuple[str, FinetuneState], tmp_path: Path, train: Path
) -> None:
    url, _ = fake
    with pytest.raises(ProviderError, match=r"Bearer \*\*\*\*") as info:
        create_job(settings_for(url, tmp_path), "fake", "echo-key", train)
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert info.value.__cause__ is None  # the SDK's exception would carry the key


def test_an_unreachable_server_is_a_retryable_error(tmp_path: Path) -> None:
    settings = settings_for(f"http://127.0.0.1:{free_port()}/v1", tmp_path)
    with pytest.raises(ProviderError, match="cannot reach the server") as info:
        list_jobs(settings, "fake")
    assert info.value.retryable and KEY not in str(info.value)


def test_the_fake_checks_what_was_uploaded(fake: tuple[str, FinetuneState]) -> None:
    url, _ = fake
    bad = ("x.jsonl", b'{"messages": []}\nnope\n')
    with (
        openai.OpenAI(api_key=KEY, base_url=url, max_retries=0) as client,
        pytest.raises(openai.BadRequestError, match="line 2 is not JSON"),
    ):
        client.files.create(file=bad, purpose="fine-tune")


def test_the_cli_starts_and_follows_a_job(
    cli: Cli, fake: tuple[str, FinetuneState], home: Path, tmp_path: Path
) -> None:
    url, _ = fake
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'[providers.fake]\nadapter = "openai"\nbase_url = "{url}"\napi_key = "{KEY}"\n'
    )
    train = write_jsonl(tmp_path / "train.jsonl", [chat_row(i) for i in range(12)])
    started = cli(
        "tune", "gpt-3.5-turbo", "--provider", "fake", "--data", str(train), "--epochs", "3",
        "--json",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    job = json.loads(started.stdout)[0]
    assert job["base_model"] == "gpt-3.5-turbo" and "12 examples" in started.stderr
    for _ in range(5):
        followed = cli("tune", "status", job["id"], "--provider", "fake", "--json")
        assert followed.returncode == 0, followed.stderr
        if json.loads(followed.stdout)[0]["status"] == "succeeded":
            break
    assert json.loads(followed.stdout)[0]["fine_tuned_model"].startswith("ft:gpt-3.5-turbo")
    listed = cli("tune", "list", "--provider", "fake")
    assert listed.returncode == 0 and job["id"] in listed.stdout
    refused = cli("tune", "gpt-3.5-turbo", "--provider", "anthropic", "--data", str(train))
    assert refused.returncode == 2 and "no fine-tuning jobs" in refused.stderr
    assert KEY not in started.stdout + started.stderr + listed.stdout + refused.stderr
