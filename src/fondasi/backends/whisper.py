"""Whisper speech recognition on CTranslate2 (faster-whisper), int8 on the CPU.

The weights are a CTranslate2 conversion: the bundled Whisper base that fondasi joins from
two pip packages (``backends/packages.py``), or a ``Systran/faster-whisper-*`` folder in the
local Hugging Face cache. Nothing is downloaded: the model loads with ``local_files_only``.
Audio is decoded by PyAV (FFmpeg), so any format FFmpeg reads is accepted.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fondasi.backends.base import Audio, Backend, Capability, ModelSpec
from fondasi.errors import BadInputError
from fondasi.extras import require
from fondasi.registry import close_matches
from fondasi.types import Segment, TranscribeOptions, Transcription

if TYPE_CHECKING:
    from fondasi.settings import Settings

BEAM = 5  # faster-whisper's (and OpenAI's reference) default beam width


def is_whisper(folder: Path | None) -> bool:
    """Whether a CTranslate2 folder holds a Whisper model (its config lists languages)."""
    if folder is None or not (folder / "config.json").is_file():
        return False
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(config, dict) and "lang_ids" in config


class WhisperTranscriber:
    """A loaded Whisper model."""

    capabilities = frozenset({Capability.TRANSCRIBE})

    def __init__(self, model: Any, name: str) -> None:
        self.model = model
        self.name = name

    def transcribe(self, audio: Audio, options: TranscribeOptions) -> Transcription:
        """Decode the audio, detect (or take) its language, and transcribe it greedily."""
        language = options.language
        if language is not None and language not in self.model.supported_languages:
            known = list(self.model.supported_languages)
            hint = close_matches(language, known)
            raise BadInputError(
                f"{self.name} does not know the language {language!r}"
                + (f"; did you mean {', '.join(hint)}?" if hint else "; use an ISO 639-1 code")
            )
        source: Any = io.BytesIO(audio) if isinstance(audio, bytes) else str(audio)
        try:
            segments, info = self.model.transcribe(
                source,
                language=language,
                initial_prompt=options.prompt or None,
                temperature=options.temperature,  # one temperature: repeatable, no sampling
                beam_size=BEAM,
                word_timestamps=options.words,
            )
            said = list(segments)  # the generator decodes as it is read
        except Exception as exc:
            import av

            if isinstance(exc, av.error.FFmpegError | OSError | ValueError):
                raise BadInputError(f"not audio that FFmpeg can read ({exc})") from None
            raise
        words = [
            Segment(start=word.start, end=word.end, text=word.word.strip())
            for part in said
            for word in part.words or []
        ]
        return Transcription(
            text="".join(part.text for part in said).strip(),
            language=info.language,
            language_probability=round(float(info.language_probability), 4),
            duration=round(float(info.duration), 3),
            segments=[
                Segment(
                    start=part.start,
                    end=part.end,
                    text=part.text.strip(),
                    avg_logprob=round(float(part.avg_logprob), 4),
                    no_speech_prob=round(float(part.no_speech_prob), 4),
                )
                for part in said
            ],
            words=words,
            model=self.name,
        )


class WhisperFactory:
    """Loads CTranslate2 Whisper folders with faster-whisper."""

    name = "faster-whisper"
    priority = 10

    def claims(self, spec: ModelSpec) -> bool:
        """CTranslate2 folders whose config lists Whisper's languages."""
        return spec.format == "ctranslate2" and is_whisper(spec.path)

    def load(self, spec: ModelSpec, settings: Settings) -> Backend:
        """int8 on the CPU, from local files only."""
        require("faster_whisper", "speech", "speech to text")
        from faster_whisper import WhisperModel

        model = WhisperModel(
            str(spec.path), device="cpu", compute_type="int8", local_files_only=True
        )
        return WhisperTranscriber(model, spec.id)
