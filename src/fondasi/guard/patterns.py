"""Personal and secret data found by pattern and checksum: payment cards (Luhn), IBAN
(ISO 13616 mod-97), IP addresses, URLs carrying credentials, API keys and other secrets,
and international phone numbers (``phonenumbers``, the library behind Android's dialer).

Each detector yields ``(type, start, end, score)``; checksums keep random digit runs out.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator

Hit = tuple[str, int, int, float]
DETECTORS: dict[str, Callable[[str], Iterator[Hit]]] = {}


def detector(
    kind: str,
) -> Callable[[Callable[[str], Iterator[Hit]]], Callable[[str], Iterator[Hit]]]:
    """Register a pattern detector for one PII type."""

    def add(func: Callable[[str], Iterator[Hit]]) -> Callable[[str], Iterator[Hit]]:
        DETECTORS[kind] = func
        return func

    return add


CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}")
IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]|\.\d)")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
URL_CREDENTIALS = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:[^\s@/]+@[^\s/?#]+")
SECRET = re.compile(
    r"(?:\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}|\bAKIA[0-9A-Z]{16}|\bAIza[0-9A-Za-z_-]{30,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{40,}|\bxox[abpr]-[A-Za-z0-9-]{10,}"
    r"|\bhf_[A-Za-z0-9]{30,}|\b[sr]k_live_[A-Za-z0-9]{20,}|\bglpat-[A-Za-z0-9_-]{20,}"
    r"|\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"
    r"|-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )?PRIVATE KEY-----)"
)
# key = value pairs whose value looks random enough to be a credential.
ASSIGNED = re.compile(
    r"(?i)\b(?:api[_-]?key|secret|token|password|passwd|pwd|kata[_ ]?sandi|sandi)"
    r"[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9_\-/+=.!@#$%^&*]{8,})"
)
# Lengths of IBANs by country (ISO 13616 registry), for the countries met most often.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21, "CY": 28,
    "CZ": 24, "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "KW": 30, "KZ": 20, "LB": 28,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PT": 25, "QA": 29, "RO": 24, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "TR": 26,
}  # fmt: skip


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum that every payment card number satisfies."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(compact: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers, mod 97 == 1."""
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in moved)
    return int(number) % 97 == 1


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def issuer_known(digits: str) -> bool:
    """The number starts like a card network's: Visa, Mastercard, Amex, JCB, Discover, UnionPay,
    Diners."""
    two, four = int(digits[:2]), int(digits[:4])
    return (
        digits[0] == "4"
        or 51 <= two <= 55
        or 2221 <= four <= 2720
        or two in (34, 37, 35, 36, 38, 62, 65)
        or digits.startswith(("6011", "300", "301", "302", "303", "304", "305"))
    )


@detector("CARD")
def cards(text: str) -> Iterator[Hit]:
    """13-19 digit runs, spaced or dashed, with a card network's prefix, that pass Luhn."""
    for match in CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and issuer_known(digits) and luhn_valid(digits):
            yield "CARD", *match.span(), 1.0


@detector("IBAN")
def ibans(text: str) -> Iterator[Hit]:
    """IBANs with valid check digits; the country's length decides where one ends."""
    for match in IBAN.finditer(text):
        raw = match.group()
        want = IBAN_LENGTHS.get(raw[:2])
        taken = 0
        for index, char in enumerate(raw):
            if char != " ":
                taken += 1
            if want and taken == want:
                raw = raw[: index + 1]
                break
        compact = raw.replace(" ", "")
        if (want is None or len(compact) == want) and iban_valid(compact):
            yield "IBAN", match.start(), match.start() + len(raw), 1.0


@detector("EMAIL")
def emails(text: str) -> Iterator[Hit]:
    """Addresses lokal-id leaves out (it skips some reserved domains, e.g. example.com)."""
    for match in EMAIL.finditer(text):
        yield "EMAIL", *match.span(), 1.0


@detector("IP")
def ips(text: str) -> Iterator[Hit]:
    """IPv4 and IPv6 addresses that parse as such (version numbers like 1.2.3 do not)."""
    for pattern in (IPV4, IPV6):
        for match in pattern.finditer(text):
            try:
                address = ipaddress.ip_address(match.group())
            except ValueError:
                continue
            # Loopback and unspecified addresses identify nobody.
            if not (address.is_loopback or address.is_unspecified):
                yield "IP", *match.span(), 0.9


@detector("URL_CREDENTIALS")
def url_credentials(text: str) -> Iterator[Hit]:
    """scheme://user:password@host — the whole authority is sensitive."""
    for match in URL_CREDENTIALS.finditer(text):
        yield "URL_CREDENTIALS", *match.span(), 1.0


@detector("SECRET")
def secrets(text: str) -> Iterator[Hit]:
    """Known API-key shapes, private keys, JWTs, and random-looking values of key=... pairs."""
    for match in SECRET.finditer(text):
        yield "SECRET", *match.span(), 1.0
    for match in ASSIGNED.finditer(text):
        value = match.group(1)
        if entropy(value) >= 3.0 and any(c.isdigit() for c in value):
            yield "SECRET", *match.span(1), 0.8


@detector("PHONE")
def international_phones(text: str) -> Iterator[Hit]:
    """Phone numbers written with a + country code, validated against numbering plans."""
    if "+" not in text:
        return
    import phonenumbers

    for match in phonenumbers.PhoneNumberMatcher(text, None, leniency=phonenumbers.Leniency.VALID):
        yield "PHONE", match.start, match.end, 0.9
