"""``fondasi transcribe``: speech to text as a timed transcript, plain text, SRT, WebVTT, JSON."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from fondasi.cli._render import console, errors, esc
from fondasi.cli.run import load_model
from fondasi.errors import BadInputError
from fondasi.types import Transcription

DEFAULT_MODEL = "whisper-base"  # bundled: runs offline from its pip packages
FORMATS = ("text", "srt", "vtt", "json")
SUFFIXES = {".txt": "text", ".srt": "srt", ".vtt": "vtt", ".json": "json"}


def rendered(result: Transcription, shape: str) -> str:
    """The transcript in one of ``FORMATS``."""
    from fondasi.backends.speech import srt, vtt

    if shape == "srt":
        return srt(result)
    if shape == "vtt":
        return vtt(result)
    if shape == "json":
        return result.model_dump_json(indent=2) + "\n"
    return result.text + "\n"


def _stamp(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes):02d}:{rest:05.2f}"


def language_line(result: Transcription, given: str | None) -> str:
    """``Language: id (indonesian), detected with 97% confidence``, or ``… as given``."""
    from fondasi.backends.speech import language_name

    name = language_name(result.language)
    said = f"{result.language} ({name})" if name and name != result.language else result.language
    if given:
        how = "as given"
    elif result.language_probability is not None:
        how = f"detected with {result.language_probability:.0%} confidence"
    else:
        how = "detected"
    length = f" · {result.duration:.1f} s of audio" if result.duration is not None else ""
    return f"Language: {said or 'unknown'}, {how}{length}"


def _shown(result: Transcription, given: str | None) -> None:
    console.print(f"[bold]{esc(language_line(result, given))}[/]")
    if not result.segments:
        console.print(esc(result.text))
        return
    for part in result.segments:
        console.print(f"[dim]\\[{_stamp(part.start)} → {_stamp(part.end)}][/] {esc(part.text)}")


def transcribe(
    ctx: typer.Context,
    audio: Path = typer.Argument(..., help="An audio file (WAV, MP3, FLAC, Ogg, M4A ...)."),
    model_id: str = typer.Option(
        DEFAULT_MODEL, "--model", "-m", help="A speech-to-text model (default: bundled Whisper)."
    ),
    language: str | None = typer.Option(
        None, "--language", "-l", help="ISO 639-1 code of the speech (id, en ...); else detected."
    ),
    prompt: str | None = typer.Option(
        None, "--prompt", help="Words the speech uses (names, spelling) to guide the model."
    ),
    words: bool = typer.Option(False, "--words", help="Also time each word (JSON output)."),
    shape: str | None = typer.Option(
        None, "--format", "-f", help="text, srt, vtt or json (default: a timed transcript)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file (its suffix picks the format)."
    ),
) -> None:
    """Transcribe speech: the text, its language (detected unless given) and timestamps."""
    if as_json:
        shape = "json"
    if shape is None and output is not None:
        shape = SUFFIXES.get(output.suffix.lower(), "text")
    if shape is not None and shape not in FORMATS:
        raise BadInputError(f"unknown format {shape!r}; use one of: {', '.join(FORMATS)}")
    if not audio.is_file():
        raise BadInputError(f"no such audio file: {audio}")
    model = load_model(ctx, model_id)
    with errors.status(f"Transcribing {esc(audio.name)} …", spinner="dots"):
        result = model.transcribe(audio, language=language, prompt=prompt, words=words)
    if output is not None:
        output.write_text(rendered(result, shape or "text"), encoding="utf-8")
        errors.print(f"{esc(language_line(result, language))}\nWrote {esc(str(output))}")
        return
    if shape is None:
        _shown(result, language)
        return
    sys.stdout.write(rendered(result, shape))
