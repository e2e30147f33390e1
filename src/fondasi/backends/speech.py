"""What speech-to-text answers share: Whisper's language names, and subtitles (SRT, WebVTT).

OpenAI's verbose transcripts name the language in English words (``"indonesian"``) where
Whisper and fondasi use ISO 639-1 codes (``"id"``); the table turns one into the other.
"""

from __future__ import annotations

from fondasi.types import Segment, Transcription

# Whisper's languages, code -> the English name OpenAI's API reports (openai/whisper).
LANGUAGES = {
    "en": "english",
    "zh": "chinese",
    "de": "german",
    "es": "spanish",
    "ru": "russian",
    "ko": "korean",
    "fr": "french",
    "ja": "japanese",
    "pt": "portuguese",
    "tr": "turkish",
    "pl": "polish",
    "ca": "catalan",
    "nl": "dutch",
    "ar": "arabic",
    "sv": "swedish",
    "it": "italian",
    "id": "indonesian",
    "hi": "hindi",
    "fi": "finnish",
    "vi": "vietnamese",
    "he": "hebrew",
    "uk": "ukrainian",
    "el": "greek",
    "ms": "malay",
    "cs": "czech",
    "ro": "romanian",
    "da": "danish",
    "hu": "hungarian",
    "ta": "tamil",
    "no": "norwegian",
    "th": "thai",
    "ur": "urdu",
    "hr": "croatian",
    "bg": "bulgarian",
    "lt": "lithuanian",
    "la": "latin",
    "mi": "maori",
    "ml": "malayalam",
    "cy": "welsh",
    "sk": "slovak",
    "te": "telugu",
    "fa": "persian",
    "lv": "latvian",
    "bn": "bengali",
    "sr": "serbian",
    "az": "azerbaijani",
    "sl": "slovenian",
    "kn": "kannada",
    "et": "estonian",
    "mk": "macedonian",
    "br": "breton",
    "eu": "basque",
    "is": "icelandic",
    "hy": "armenian",
    "ne": "nepali",
    "mn": "mongolian",
    "bs": "bosnian",
    "kk": "kazakh",
    "sq": "albanian",
    "sw": "swahili",
    "gl": "galician",
    "mr": "marathi",
    "pa": "punjabi",
    "si": "sinhala",
    "km": "khmer",
    "sn": "shona",
    "yo": "yoruba",
    "so": "somali",
    "af": "afrikaans",
    "oc": "occitan",
    "ka": "georgian",
    "be": "belarusian",
    "tg": "tajik",
    "sd": "sindhi",
    "gu": "gujarati",
    "am": "amharic",
    "yi": "yiddish",
    "lo": "lao",
    "uz": "uzbek",
    "fo": "faroese",
    "ht": "haitian creole",
    "ps": "pashto",
    "tk": "turkmen",
    "nn": "nynorsk",
    "mt": "maltese",
    "sa": "sanskrit",
    "lb": "luxembourgish",
    "my": "myanmar",
    "bo": "tibetan",
    "tl": "tagalog",
    "mg": "malagasy",
    "as": "assamese",
    "tt": "tatar",
    "haw": "hawaiian",
    "ln": "lingala",
    "ha": "hausa",
    "ba": "bashkir",
    "jw": "javanese",
    "su": "sundanese",
    "yue": "cantonese",
}
CODES = {name: code for code, name in LANGUAGES.items()}


def language_name(code: str | None) -> str | None:
    """``"id"`` -> ``"indonesian"``; an unknown code is returned as it is."""
    return None if code is None else LANGUAGES.get(code, code)


def language_code(name: str | None) -> str | None:
    """``"indonesian"`` (or ``"id"``) -> ``"id"``; an unknown name is returned lower-cased."""
    if not name:
        return None
    lowered = name.strip().lower()
    return lowered if lowered in LANGUAGES else CODES.get(lowered, lowered)


def _clock(seconds: float, mark: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole:02d}{mark}{millis:03d}"


def _cues(transcription: Transcription) -> list[Segment]:
    # A transcript without timings (some hosted models) is one cue over the whole audio.
    if transcription.segments:
        return [s for s in transcription.segments if s.text.strip()]
    end = transcription.duration or 0.0
    return [Segment(start=0.0, end=end, text=transcription.text)] if transcription.text else []


def srt(transcription: Transcription) -> str:
    """SubRip subtitles: numbered cues, ``HH:MM:SS,mmm`` times."""
    blocks = [
        f"{number}\n{_clock(cue.start, ',')} --> {_clock(cue.end, ',')}\n{cue.text.strip()}\n"
        for number, cue in enumerate(_cues(transcription), start=1)
    ]
    return "\n".join(blocks)


def vtt(transcription: Transcription) -> str:
    """WebVTT subtitles: a ``WEBVTT`` header, ``HH:MM:SS.mmm`` times."""
    blocks = [
        f"{_clock(cue.start, '.')} --> {_clock(cue.end, '.')}\n{cue.text.strip()}\n"
        for cue in _cues(transcription)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)
