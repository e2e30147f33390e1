"""Prompt injection and jailbreak attempts, Indonesian and English: named rules for the
known shapes (ignore previous instructions, reveal the system prompt, role-play without
limits, fake chat-template turns, questions fishing for what the model was told), text
hidden from a human reader (zero-width and bidi characters, Unicode tag characters, HTML
comments, look-alike letters), the same rules read through the encodings attacks use to get
past them (base64, base32 and hex payloads of any length, rot13, leetspeak), and a
classifier over the bundled embeddings for the phrasings no rule names.

This filter only reports or blocks: it never edits what the user wrote.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Callable, Iterator
from typing import ClassVar

from fondasi.guard.base import Filter, Finding, ScanContext, register
from fondasi.guard.classifier import sentence_findings
from fondasi.guard.text import CONFUSABLES, HIDDEN, WORD, hidden_spans, mixed_script

_IGNORE_EN = r"(?:ignore|disregard|forget|skip|override|bypass|drop)"
_PRIOR_EN = (
    r"(?:all |any |the |your |my )*"
    r"(?:(?:previous|prior|above|earlier|preceding|original|initial|system|old)"
    # "ignore any previous and following instructions" (PromptInject's goal hijacking)
    r"(?:\s+(?:and|or|&)\s+(?:following|subsequent|future|upcoming|later))?)?"
)
_RULES_EN = (
    r"(?:instructions?|rules?|prompts?|directions?|guidelines?|context|constraints?"
    r"|directives?|programming)"
)
_IGNORE_ID = (
    r"(?:abaikan|lupakan|acuhkan|hiraukan|lewati|buang|tinggalkan"
    r"|jangan (?:ikuti|hiraukan|pedulikan|patuhi))"
)
_RULES_ID = r"(?:instruksi|perintah|aturan|arahan|pedoman|batasan|prompt|konteks)"
_SHOW_EN = (
    r"(?:reveal|show|print|repeat|output|display|leak|tell me|write out|give me"
    r"|what (?:is|are|was|were))"
)
_SHOW_ID = (
    r"(?:tampilkan|tunjukkan|bocorkan|ulangi|sebutkan|cetak|berikan|tuliskan|beritahu|apa isi)"
)
_SECRET_PROMPT = (
    r"(?:(?:your|the|kamu|mu) )?(?:system prompt|system message|initial (?:prompt|instructions)"
    r"|hidden (?:prompt|instructions)|original (?:prompt|instructions)"
    r"|instructions above|prompt above"
    r"|prompt sistem|instruksi sistem|pesan sistem|perintah awal|instruksi awal|instruksi rahasia"
    r"|prompt awal|aturan rahasia)"
)
RULES: dict[str, tuple[re.Pattern[str], float]] = {
    name: (re.compile(pattern, re.IGNORECASE | re.MULTILINE), score)
    for name, pattern, score in [
        ("ignore-instructions", rf"\b{_IGNORE_EN}\s+{_PRIOR_EN}\s*{_RULES_EN}", 0.95),
        (
            "abaikan-instruksi",
            rf"\b{_IGNORE_ID}\s+(?:semua\s+|seluruh\s+|segala\s+)?{_RULES_ID}"
            r"(?:\s+(?:sebelumnya|di atas|sebelum ini|awal|lama|sistem|yang (?:diberikan|ada)))?",
            0.95,
        ),
        ("reveal-system-prompt", rf"\b{_SHOW_EN}\b.{{0,30}}{_SECRET_PROMPT}", 0.9),
        ("bocorkan-prompt-sistem", rf"\b{_SHOW_ID}\b.{{0,30}}{_SECRET_PROMPT}", 0.9),
        (
            "role-play-unrestricted",
            r"\b(?:you are|act as|pretend (?:to be|you are)|role-?play as"
            r"|from now on,? you(?: are|'re)"
            r"|kamu (?:sekarang )?adalah|berperan(?:lah)? sebagai|bertindak(?:lah)? sebagai"
            r"|berpura-pura(?:lah)? (?:menjadi|sebagai)|pura-pura jadi|mulai sekarang,? kamu)\b"
            r".{0,80}\b(?:(?-i:DAN)|do anything now|unrestricted|unfiltered|uncensored|jailbroken"
            r"|evil|no (?:rules|limits|restrictions|filters|ethics)"
            r"|without (?:any )?(?:rules|limits|restrictions|filters|censorship)"
            r"|tanpa (?:batasan|aturan|filter|sensor|etika|batas)|bebas dari (?:aturan|batasan)"
            r"|tidak punya (?:aturan|batasan))",
            0.9,
        ),
        (
            "developer-mode",
            r"\b(?:developer mode|mode pengembang|god mode|jailbreak(?:ed)? mode|(?-i:DAN) mode"
            r"|do anything now)\b",
            0.85,
        ),
        (
            "disable-safety",
            r"\b(?:bypass|disable|turn off|ignore|circumvent|matikan|nonaktifkan|lewati|abaikan)\s+"
            r"(?:your |the |all |semua )?"
            r"(?:safety|content|security|ethical|moral|keamanan|etika|pengaman|sensor)"
            r"(?:\s+(?:filters?|guidelines?|policy|policies|rules|restrictions|checks|filter"
            r"|kebijakan|aturan|batasan))?",
            0.85,
        ),
        (
            "matikan-pengaman",
            r"\b(?:matikan|nonaktifkan|lewati|abaikan|hapus)\s+(?:semua\s+)?(?:filter|sensor|pengaman|aturan|batasan|kebijakan)"
            r"\s+(?:keamanan|konten|etika|moral|kamu|mu)",
            0.85,
        ),
        (
            "fake-turn",
            r"(?:<\|im_start\|>\s*system|<\|system\|>|\[/?INST\]|<<SYS>>|^\s*#{2,}\s*(?:system|instruction)s?\s*:?"
            r"|^\s*(?:system|sistem)\s*:\s|<start_of_turn>|<\|start_header_id\|>)",
            0.8,
        ),
        (
            # Fishing for the system prompt without naming it.
            "extraction-question",
            r"\bwhat (?:were|was|have) you (?:been )?(?:told|instructed|asked|given|programmed)\b"
            r".{0,40}\b(?:before|at the (?:start|beginning)|initially|prior to)"
            r"|\b(?:repeat|print|output|copy) (?:all |everything |the (?:text|words) )?"
            r"(?:above|before) (?:this|my) (?:line|message|sentence)"
            r"|\bapa (?:saja )?yang (?:di)?(?:beritahu|katakan|perintahkan|instruksikan)(?:kan)?"
            r" (?:ke(?:pada)?|pada) ?(?:mu|kamu)\b.{0,40}\bsebelum"
            r"|\bulangi (?:semua )?(?:teks|kalimat|tulisan) (?:di atas|sebelum)"
            r" (?:pesan|baris) ini",
            0.85,
        ),
        (
            "new-instructions",
            r"\b(?:new instructions|updated instructions|instruksi baru|perintah baru)\s*:",
            0.75,
        ),
    ]
}
HTML_COMMENT = re.compile(r"<!--[\s\S]*?-->")
# Payloads are decoded whatever their length: what decodes is only flagged if a rule then
# matches it, so a short ordinary token (an id, a hash) that happens to decode costs nothing.
BASE64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{8,}={0,2}")
BASE32 = re.compile(r"(?<![A-Za-z0-9])[A-Z2-7]{8,}={0,6}")
HEX = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[ :]?){6,}")
# Digits and signs read as letters (one character for one, so offsets stay put).
LEET = str.maketrans("0134578@$|!", "oieastbasii")


def _base64(token: str) -> bytes:
    return base64.b64decode(token + "=" * (-len(token) % 4), validate=True)


def _base32(token: str) -> bytes:
    return base64.b32decode(token + "=" * (-len(token) % 8))


def _hex(token: str) -> bytes:
    return bytes.fromhex(re.sub(r"[ :]", "", token))


PAYLOADS: dict[str, tuple[re.Pattern[str], Callable[[str], bytes]]] = {
    "base64 payload": (BASE64, _base64),
    "base32 payload": (BASE32, _base32),
    "hex payload": (HEX, _hex),
}
# Whole-text readings with the same offsets as the text: (detail, reading).
READINGS: dict[str, Callable[[str], str]] = {
    "rot13": lambda text: codecs.encode(text, "rot13"),
    "leetspeak": lambda text: text.translate(LEET),
}


def _any_rule(text: str) -> bool:
    return any(pattern.search(text) for pattern, _ in RULES.values())


def _folded(text: str) -> str:
    """Look-alike letters to Latin and invisible characters to spaces, offsets unchanged."""
    return HIDDEN.sub(" ", text).translate(CONFUSABLES)


def rule_hits(text: str) -> Iterator[Finding]:
    """Named-rule findings, hidden text and encoded payloads."""
    folded = _folded(text)
    for name, (pattern, score) in RULES.items():
        for match in pattern.finditer(folded):
            yield Finding("injection", *match.span(), score, "injection", name)
    for start, end in hidden_spans(text):
        yield Finding("hidden_text", start, end, 0.9, "injection", "invisible characters")
    for match in HTML_COMMENT.finditer(text):
        yield Finding("hidden_text", *match.span(), 0.6, "injection", "html comment")
    for match in WORD.finditer(text):
        if mixed_script(match.group()):
            yield Finding("hidden_text", *match.span(), 0.6, "injection", "mixed scripts")
    yield from _encoded(folded)
    yield from _unhidden(text)


def _unhidden(text: str) -> Iterator[Finding]:
    """The rules on the text with its invisible characters taken out ("ign\u200bore"),
    each finding spanning the characters it covers in the text as written."""
    if not HIDDEN.search(text):
        return
    kept = [i for i, char in enumerate(text) if not HIDDEN.match(char)]
    joined = "".join(text[i] for i in kept).translate(CONFUSABLES)
    for name, (pattern, score) in RULES.items():
        for match in pattern.finditer(joined):
            start, end = match.span()
            if end > start:
                yield Finding("injection", kept[start], kept[end - 1] + 1, score, "injection", name)


def _encoded(folded: str) -> Iterator[Finding]:
    """The rules again, on payloads decoded and on the text read as rot13 or leetspeak."""
    plain = {match.span() for pattern, _ in RULES.values() for match in pattern.finditer(folded)}
    for detail, read in READINGS.items():
        reading = read(folded)
        for pattern, score in RULES.values():
            for match in pattern.finditer(reading):
                if match.span() not in plain:  # already found as written
                    yield Finding("injection", *match.span(), score, "injection", detail)
    for detail, (pattern, decode) in PAYLOADS.items():
        for match in pattern.finditer(folded):
            try:
                decoded = decode(match.group()).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                continue
            if _any_rule(decoded) or _any_rule(decoded.translate(LEET)):
                yield Finding("injection", *match.span(), 0.9, "injection", detail)


@register("injection")
class InjectionFilter(Filter):
    """Attempts to override the instructions, leak the system prompt or unlock a jailbreak."""

    summary = "prompt injection and jailbreaks, ID+EN (rules + embedding classifier)"
    stages = frozenset({"input"})
    actions = frozenset({"flag", "block"})
    threshold = 0.5
    # The classifier's own findings count from these scores, by the text's language: the
    # lowest thresholds that flagged at most 5% of ordinary text (tweets, statements,
    # application prompts) on the validation half of bench/guard_real.py. At 0.5 it flagged
    # 14%. A policy's own threshold for the filter replaces them.
    operating_points: ClassVar[dict[str, float]] = {"id": 0.70, "en": 0.75, "": 0.70}

    def scan(self, text: str, context: ScanContext) -> list[Finding]:
        """Rule hits, then classifier hits per sentence."""
        found = [item for item in rule_hits(text) if item.score >= self.min_score]
        found.extend(sentence_findings("injection", text, self))
        return sorted(found, key=lambda f: (f.start, f.end))
