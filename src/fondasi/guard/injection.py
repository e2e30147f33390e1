"""Prompt injection and jailbreak attempts, Indonesian and English: named rules for the
known shapes (ignore previous instructions, reveal the system prompt, role-play without
limits, fake chat-template turns), text hidden from a human reader (zero-width and bidi
characters, Unicode tag characters, HTML comments, look-alike letters, base64 payloads),
and a classifier over the bundled embeddings for the phrasings no rule names.

This filter only reports or blocks: it never edits what the user wrote.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator

from fondasi.guard.base import Filter, Finding, ScanContext, register
from fondasi.guard.classifier import sentence_findings
from fondasi.guard.text import CONFUSABLES, HIDDEN, WORD, hidden_spans, mixed_script

_IGNORE_EN = r"(?:ignore|disregard|forget|skip|override|bypass|drop)"
_PRIOR_EN = (
    r"(?:all |any |the |your |my )*"
    r"(?:previous|prior|above|earlier|preceding|original|initial|system|old)?"
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
            "new-instructions",
            r"\b(?:new instructions|updated instructions|instruksi baru|perintah baru)\s*:",
            0.75,
        ),
    ]
}
HTML_COMMENT = re.compile(r"<!--[\s\S]*?-->")
BASE64 = re.compile(r"\b[A-Za-z0-9+/]{24,}={0,2}")


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
    for match in BASE64.finditer(text):
        try:
            decoded = base64.b64decode(match.group(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if any(pattern.search(decoded) for pattern, _ in RULES.values()):
            yield Finding("injection", *match.span(), 0.9, "injection", "base64 payload")


@register("injection")
class InjectionFilter(Filter):
    """Attempts to override the instructions, leak the system prompt or unlock a jailbreak."""

    summary = "prompt injection and jailbreaks, ID+EN (rules + embedding classifier)"
    stages = frozenset({"input"})
    actions = frozenset({"flag", "block"})
    threshold = 0.5

    def scan(self, text: str, context: ScanContext) -> list[Finding]:
        """Rule hits, then classifier hits per sentence."""
        found = [item for item in rule_hits(text) if item.score >= self.min_score]
        found.extend(sentence_findings("injection", text, self))
        return sorted(found, key=lambda f: (f.start, f.end))
