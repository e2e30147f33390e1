"""``POST /v1/audio/transcriptions``: speech to text in OpenAI's multipart shape.

The form carries ``file`` and ``model`` and, optionally, ``language``, ``prompt``,
``response_format`` (json, text, srt, verbose_json, vtt), ``temperature`` and
``timestamp_granularities[]`` (segment, word; verbose_json only), as OpenAI documents them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from starlette.datastructures import FormData, UploadFile

from fondasi.backends.base import Capability
from fondasi.backends.speech import language_name, srt, vtt
from fondasi.errors import FondasiError
from fondasi.server.auth import Caller, state_of
from fondasi.server.generation import bad
from fondasi.server.serving import note_guard, serve_model
from fondasi.types import TranscribeOptions, Transcription

router = APIRouter()
FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES = ("segment", "word")


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if isinstance(value, UploadFile):
        raise bad(f"{name} must be a text field, not a file", name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _temperature(form: FormData) -> float:
    raw = _text(form, "temperature")
    try:
        value = float(raw) if raw is not None else 0.0
    except ValueError:
        raise bad(f"temperature must be a number, not {raw!r}", "temperature") from None
    if not 0 <= value <= 1:
        raise bad("temperature must be between 0 and 1", "temperature")
    return value


def _granularities(form: FormData, shape: str) -> list[str]:
    asked = [str(g) for g in form.getlist("timestamp_granularities[]")]
    unknown = [g for g in asked if g not in GRANULARITIES]
    if unknown:
        raise bad(
            f"timestamp_granularities[] takes segment or word, not {unknown[0]!r}",
            "timestamp_granularities[]",
        )
    if asked and shape != "verbose_json":
        raise bad(
            "timestamp_granularities[] needs response_format verbose_json",
            "timestamp_granularities[]",
        )
    return asked


def verbose_json(result: Transcription, temperature: float, words: bool) -> dict[str, Any]:
    """OpenAI's ``verbose_json`` answer: language by name, duration, timed segments."""
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": language_name(result.language) or "",
        "duration": result.duration or 0.0,
        "text": result.text,
        "segments": [
            {
                "id": index,
                "seek": 0,
                "start": part.start,
                "end": part.end,
                "text": " " + part.text,
                "tokens": [],
                "temperature": temperature,
                "avg_logprob": part.avg_logprob or 0.0,
                "compression_ratio": 0.0,
                "no_speech_prob": part.no_speech_prob or 0.0,
            }
            for index, part in enumerate(result.segments)
        ],
        "usage": {"type": "duration", "seconds": round(result.duration or 0.0)},
    }
    if words:
        body["words"] = [{"word": w.text, "start": w.start, "end": w.end} for w in result.words]
    return body


@router.post("/v1/audio/transcriptions", response_model=None)
async def transcriptions(request: Request, key: Caller) -> Any:
    """Transcribe an uploaded audio file with a speech-to-text model."""
    state, call = state_of(request), request.state.call
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise bad("send the audio as multipart/form-data with a 'file' field", "file")
    async with request.form() as form:
        model = _text(form, "model")
        if model is None:
            raise bad("model is required", "model", "missing_required_parameter")
        call.model = model
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise bad("file is required: the audio to transcribe", "file")
        audio = await upload.read()
        shape = _text(form, "response_format") or "json"
        if shape not in FORMATS:
            raise bad(f"response_format must be one of {', '.join(FORMATS)}", "response_format")
        granularities = _granularities(form, shape)
        try:
            options = TranscribeOptions(
                language=_text(form, "language"),
                prompt=_text(form, "prompt"),
                temperature=_temperature(form),
                words="word" in granularities,
            )
        except ValueError as exc:
            raise bad(f"bad field: {exc}", None) from None
    if not audio:
        raise bad("the uploaded file is empty", "file")
    served, _ = await serve_model(state, call, model, key)
    if not served.can(Capability.TRANSCRIBE):
        raise bad(f"{served.ref} does not transcribe speech: use a speech model", "model")
    async with served.lane.slot():
        try:
            result = await state.runner.run(
                lambda: served.handle.transcribe(audio, options=options),
                timeout=state.config.timeout_s,
            )
        except FondasiError as exc:
            note_guard(call, exc)
            raise
    call.first()
    if state.config.log_text:
        call.response_text = state.redact(result.text)
    if shape == "text":
        return PlainTextResponse(result.text + "\n")
    if shape in ("srt", "vtt"):
        return PlainTextResponse(srt(result) if shape == "srt" else vtt(result))
    if shape == "verbose_json":
        return verbose_json(result, options.temperature, options.words)
    usage = {"type": "duration", "seconds": round(result.duration or 0.0)}
    return {"text": result.text, "usage": usage}
