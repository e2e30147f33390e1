"""The tour's instruct-and-speech step, run for real: the packaged Qwen and Whisper base.

The Qwen weights are dequantised once per test run into the session's model cache
(``shared_settings``), the same cache the packaged-instruct tests use.
"""

from __future__ import annotations

import json
import re

import pytest

from fondasi.cli.quickstart import step
from fondasi.cli.tour_instruct import CLIP, ORDER, instruct_and_speech
from fondasi.data import bundled, read_jsonl
from fondasi.settings import Settings


def _line(said: str, opening: str) -> str:
    """The first printed line that starts with ``opening`` once indented text is stripped."""
    return next(line.strip() for line in said.splitlines() if line.strip().startswith(opening))


def _words(text: str) -> set[str]:
    return set(re.sub(r"[^\w\s]", " ", text.lower()).split())


def test_the_instruct_step_extracts_replies_calls_and_transcribes(
    shared_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    instruct_and_speech(shared_settings, 7, step)
    said = capsys.readouterr().out
    assert said.lstrip().startswith("7. Beyond labels")
    assert "this part failed" not in said and "did not load" not in said, said
    assert "wrong order id" not in said and "wrong argument" not in said, said
    ticket, _ = json.JSONDecoder().raw_decode(_line(said, "{"))
    assert ticket["order_id"] == ORDER
    assert ticket["problem"] in {"not_arrived", "damaged", "wrong_item", "refund", "other"}
    assert f'lacak_pesanan(nomor_pesanan="{ORDER}")' in said
    lines = [line.strip() for line in said.splitlines()]
    reply = lines[next(i for i, line in enumerate(lines) if "A reply in Indonesian" in line) + 1]
    assert reply and not reply.startswith("the model wrote nothing")
    heard = _line(said, "heard:").removeprefix("heard:").split("(")[0]
    reference = next(row for row in read_jsonl(bundled("eval-speech-id")) if row["audio"] == CLIP)
    assert "paket" in _words(heard), heard
    # Whisper base gets about half the words of espeak's robotic Indonesian right.
    assert len(_words(heard) & _words(reference["reference"])) >= 3, heard
    assert f"fondasi transcribe {bundled('eval-speech-id').parent / CLIP} --language id" in said


def test_a_model_that_cannot_write_is_reported_and_the_tour_goes_on(
    shared_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # An embedding model as the chat model: it loads, but every writing part fails.
    settings = shared_settings.model_copy(update={"chat_model": "all-minilm-l6-v2"})
    instruct_and_speech(settings, 7, step)
    said = capsys.readouterr().out
    assert said.count("this part failed") == 3 and said.count("the tour goes on") == 3
    assert "heard:" in said  # speech still ran


def test_a_chat_model_that_does_not_load_skips_to_speech(
    shared_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = shared_settings.model_copy(update={"chat_model": "no-such-model"})
    instruct_and_speech(settings, 7, step)
    said = capsys.readouterr().out
    assert "no-such-model did not load" in said and "skipping to speech" in said
    assert "heard:" in said and "this part failed" not in said
