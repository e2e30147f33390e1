"""Speech to text on any model that transcribes: the audio and the options checked once.

A backend gets a path that exists or the file's bytes, and closed ``TranscribeOptions``;
what the audio holds (a format FFmpeg reads, or not) is the backend's to say.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from fondasi.backends.base import Audio, Transcriber
from fondasi.errors import BadInputError
from fondasi.models import tracing
from fondasi.types import TranscribeOptions, Transcription

if TYPE_CHECKING:
    from fondasi.models.handle import Model


def audio_of(audio: Any) -> Audio:
    """A path that exists, or non-empty bytes; anything else is refused with why."""
    if isinstance(audio, bytes | bytearray | memoryview):
        data = bytes(audio)
        if not data:
            raise BadInputError("the audio is empty")
        return data
    if hasattr(audio, "read"):  # an open file
        return audio_of(audio.read())
    if not isinstance(audio, str | Path):
        raise BadInputError(f"audio must be a path, bytes or an open file, not {type(audio)}")
    path = Path(audio).expanduser()
    if not path.is_file():
        raise BadInputError(f"no such audio file: {path}")
    if path.stat().st_size == 0:
        raise BadInputError(f"{path} is empty")
    return path


def options_for(options: TranscribeOptions | None, overrides: dict[str, Any]) -> TranscribeOptions:
    """``options`` with keyword overrides applied; a bad value names its field."""
    try:
        merged = {**(options.model_dump() if options else {}), **overrides}
        if merged.get("language"):
            merged["language"] = str(merged["language"]).strip().lower()
        return TranscribeOptions(**merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = first["loc"][0] if first["loc"] else "options"
        raise BadInputError(f"bad option {where!r}: {first['msg']}") from None


def transcribe(
    model: Model,
    backend: Transcriber,
    audio: Any,
    options: TranscribeOptions | None,
    overrides: dict[str, Any],
) -> Transcription:
    """The transcript of ``audio`` by ``model``'s backend, which transcribes."""
    chosen = options_for(options, overrides)
    source = audio_of(audio)
    span = tracing.start("transcriptions", model.id, model.provider, None)
    return tracing.around(span, lambda: backend.transcribe(source, chosen))
