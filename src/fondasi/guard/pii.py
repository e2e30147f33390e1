"""Personal data in text, Indonesian and international.

Indonesian identifiers (NIK with its region and birth-date structure, NPWP, KK, +62/08
phone numbers, emails, names after cue words such as "Nama:") come from ``lokal-id``;
cards, IBANs, IPs, URLs with credentials, secrets and international phones from
``patterns.py``. On output, only personal data that was not in the input counts: an answer
that repeats the user's own email back is not a leak.
"""

from __future__ import annotations

import re
from typing import Any

from fondasi.extras import require
from fondasi.guard.base import Filter, Finding, ScanContext, drop_overlaps, register
from fondasi.guard.patterns import DETECTORS, issuer_known, luhn_valid

__all__ = ["Finding", "PiiFilter", "find_pii", "luhn_valid"]

CONFIDENCE = {"high": 1.0, "medium": 0.6}
# lokal types that are facts about a person rather than identifiers in free text; they
# are found from cue words and too often fire on ordinary prose to mask by default.
DESCRIPTIVE = {"GENDER", "RELIGION", "MARITAL_STATUS", "NATIONALITY", "HEALTH", "FINANCIAL"}


def _plausible(lokal: Any, kind: str, value: str) -> bool:
    """A 16-digit number next to the word "NIK" is not a NIK unless its region code and
    birth date are real; a card number needs a card network's prefix as well as Luhn."""
    if kind == "NIK":
        return bool(lokal.is_valid_nik(value))
    if kind == "CARD":
        digits = re.sub(r"\D", "", value)
        return len(digits) >= 13 and issuer_known(digits) and luhn_valid(digits)
    return True


def find_pii(text: str, types: set[str] | None = None) -> list[Finding]:
    """Every piece of personal or secret data in ``text``, in order of position."""
    lokal = require("lokal", "guard", "detecting Indonesian personal data")
    found = [
        Finding(m.type, m.start, m.end, CONFIDENCE.get(m.confidence, 0.6))
        for m in lokal.detect_pii(text)
        if m.type not in DESCRIPTIVE and _plausible(lokal, m.type, text[m.start : m.end])
    ]
    for detect in DETECTORS.values():
        found.extend(Finding(kind, start, end, score) for kind, start, end, score in detect(text))
    if types is not None:
        found = [item for item in found if item.type in types]
    # Where two detectors claim the same span (a +62 phone seen by both), the longest wins.
    return drop_overlaps(found)


def value_key(kind: str, value: str) -> str:
    """A value compared the way people write it: digits only for numbers, else lowercase."""
    digits = re.sub(r"\D", "", value)
    return f"{kind}:{digits}" if len(digits) >= 6 else f"{kind}:{value.strip().lower()}"


@register("pii")
class PiiFilter(Filter):
    """Personal data: NIK, NPWP, KK, phones, emails, cards, IBAN, IPs, secrets, URLs with logins."""

    summary = "personal data and secrets (lokal-id + checksummed patterns)"
    threshold = 0.5

    def scan(self, text: str, context: ScanContext) -> list[Finding]:
        """Personal data at or above the threshold; on output, only what the input lacked."""
        wanted = set(self.config.pii_types) if self.config.pii_types else None
        found = [f for f in find_pii(text, wanted) if f.score >= self.min_score]
        if context.stage == "output" and context.source:
            seen = {
                value_key(f.type, context.source[f.start : f.end]) for f in find_pii(context.source)
            }
            found = [f for f in found if value_key(f.type, text[f.start : f.end]) not in seen]
        return [Finding(f.type, f.start, f.end, f.score, self.name) for f in found]
