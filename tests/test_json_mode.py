"""JSON mode: the provider's own flag where it has one, fondasi's check everywhere else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fondasi.models import json_mode
from fondasi.prompts.parse import OutputParseError
from fondasi.types import Chunk, Usage

from .conftest import Cli
from .fakes.openai_server import KEY, FakeState, running


def test_a_local_model_answers_one_json_object(smol: Any) -> None:
    answer = smol.generate(
        "Give the capital of France as JSON with the key capital.", json_mode=True, max_tokens=60
    )
    value = json.loads(answer.text)
    assert isinstance(value, dict) and "Paris" in value.values()
    assert answer.usage.completion_tokens > 0


def test_a_local_stream_carries_the_object_at_the_end(smol: Any) -> None:
    chunks = list(smol.stream("Describe a cat as JSON with keys name and color.", json_mode=True))
    assert chunks[-1].usage is not None and chunks[-1].finish_reason is not None
    # JSON mode promises one object, not its keys (a schema does that): a 135M model
    # may nest the cat under a key of its own choosing.
    value = json.loads("".join(c.text for c in chunks))
    assert isinstance(value, dict) and value


def stream_of(*parts: str) -> Iterator[Chunk]:
    yield from (Chunk(text=part) for part in parts[:-1])
    yield Chunk(
        text=parts[-1], usage=Usage(prompt_tokens=3, completion_tokens=5), finish_reason="stop"
    )


def test_prose_around_the_object_is_dropped() -> None:
    chunks = list(
        json_mode.enforce(stream_of("Tentu! ", '{"kota": ', '"Bandung"}', " Semoga membantu."))
    )
    assert len(chunks) == 1 and json.loads(chunks[0].text) == {"kota": "Bandung"}
    assert chunks[0].usage == Usage(prompt_tokens=3, completion_tokens=5)


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        (("Ibu kota Prancis adalah Paris.",), "no JSON object"),
        (('["a", "b"]',), "a JSON list, not an object"),
        (('{"kota": "Band',), "cut off"),
    ],
)
def test_an_answer_without_one_object_is_an_error_quoting_it(
    parts: tuple[str, ...], message: str
) -> None:
    with pytest.raises(OutputParseError, match=message) as caught:
        list(json_mode.enforce(stream_of(*parts)))
    assert parts[0][:10] in str(caught.value)


def test_openai_gets_the_word_json_it_requires() -> None:
    plain = [{"role": "user", "content": "Kota terbesar di Jawa Barat?"}]
    asked = json_mode.INSTRUCTION
    from fondasi.backends.openai_api import mention_json

    assert mention_json(plain)[0] == {"role": "system", "content": asked}
    said = [{"role": "user", "content": "Answer in JSON: the biggest city?"}]
    assert mention_json(said) == said


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[str, FakeState]]:
    state = FakeState()
    with running(state) as url:
        yield url, state


def test_run_json_mode_from_the_cli(cli: Cli, fake: tuple[str, FakeState], home: Path) -> None:
    url, state = fake
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'[providers.fake]\nadapter = "openai"\nbase_url = "{url}"\napi_key = "{KEY}"\n'
    )
    done = cli("run", "fake:gpt-test", "kota terbesar di Jawa Barat", "--json-mode")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"echo": "kota terbesar di Jawa Barat"}
    assert state.bodies[-1]["response_format"] == {"type": "json_object"}
