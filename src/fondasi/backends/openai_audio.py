"""Speech to text through OpenAI's ``POST /v1/audio/transcriptions`` (and servers that copy it).

``whisper-1`` answers ``verbose_json``: the language, the duration and timed segments (and
words, when asked). The GPT-4o transcribe models answer ``json``: text only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fondasi.backends.base import Audio
from fondasi.backends.hosted import HostedModel
from fondasi.backends.speech import language_code
from fondasi.types import Segment, TranscribeOptions, Transcription


def verbose(model: str) -> bool:
    """Whether the model answers ``verbose_json`` (Whisper does; GPT-4o transcribe does not)."""
    return model.startswith("whisper")


def _upload(audio: Audio) -> Any:
    # The SDK sends (name, bytes) as a multipart file; the name's suffix tells the API the
    # format, and FFmpeg-read bytes need none, so a path keeps its own name.
    if isinstance(audio, bytes):
        return ("audio", audio)
    path = Path(audio)
    return (path.name, path.read_bytes())


class OpenAITranscriber(HostedModel):
    """A hosted speech-to-text model."""

    def transcribe(self, audio: Audio, options: TranscribeOptions) -> Transcription:
        """One request; the answer read into fondasi's ``Transcription``."""
        from fondasi.backends.openai_api import translate

        request: dict[str, Any] = {"model": self.model, "file": _upload(audio)}
        if options.language:
            request["language"] = options.language
        if options.prompt:
            request["prompt"] = options.prompt
        request["temperature"] = options.temperature
        if verbose(self.model):
            request["response_format"] = "verbose_json"
            if options.words:
                request["timestamp_granularities"] = ["segment", "word"]
        try:
            response = self.client.audio.transcriptions.create(**request)
        except Exception as exc:
            raise translate(self.provider, exc, self.key_env) from exc
        segments = [
            Segment(start=float(s.start), end=float(s.end), text=str(s.text).strip())
            for s in getattr(response, "segments", None) or []
        ]
        words = [
            Segment(start=float(w.start), end=float(w.end), text=str(w.word).strip())
            for w in getattr(response, "words", None) or []
        ]
        language = language_code(getattr(response, "language", None)) or options.language
        duration = getattr(response, "duration", None)
        return Transcription(
            text=str(response.text).strip(),
            language=language,
            language_probability=1.0 if options.language else None,
            duration=float(duration) if duration is not None else None,
            segments=segments,
            words=words,
            model=self.model,
        )
