"""Text helpers shared by the filters: words with their spans, normalised the way people
obfuscate them (l33t, repeated letters, slang, look-alike letters, s p a c i n g), sentences,
and characters that hide text from a human reader.

Normalisation never changes the text a filter reports on: each word keeps the span it had
in the original, so findings point at what the user wrote.
"""

from __future__ import annotations

import csv
import functools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

from fondasi.extras import require

WORD = re.compile(r"[\w@$!*#]+(?:[-'][\w@$!*#]+)*")
# Letters written one by one ("a n j i n g", "b.o.d.o.h") are read as one word.
SPACED = re.compile(r"\b(?:\w[ ._-]){2,}\w\b")
SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")
# Latin look-alikes from Cyrillic and Greek, the usual homoglyph substitutions.
CONFUSABLES = str.maketrans(
    "аеорсухіјѕԁɡАВЕКМНОРСТХІЈЅαοτυνκιΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
    "aeopcyxijsdgABEKMHOPCTXIJSaotuvkiABEZHIKMNOPTYX",
)
HIDDEN = re.compile(
    "[\u200b-\u200f\u2060-\u2064\ufeff\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]"
)


@dataclass(frozen=True)
class Word:
    """A word as written (its span) and as meant (its normalised form)."""

    start: int
    end: int
    norm: str


@functools.cache
def slang_map() -> dict[str, str]:
    """indo-normalizer's slang -> formal Indonesian pairs, read as data (no pandas)."""
    require("indo_normalizer", "guard", "normalising Indonesian slang")
    corpus = resources.files("indo_normalizer") / "corpus" / "slangs.csv"
    with corpus.open(encoding="utf-8") as handle:
        return {row["slang"].lower(): row["formal"].lower() for row in csv.DictReader(handle)}


@functools.cache
def _normalisers() -> tuple[object, object]:
    functions = require("indo_normalizer.functions", "guard", "normalising Indonesian slang")
    return functions.normalize_repetitions, functions.normalize_forced_leet


def fold(text: str) -> str:
    """NFKC (full-width letters), look-alike letters to Latin, hidden characters removed."""
    return HIDDEN.sub("", unicodedata.normalize("NFKC", text)).translate(CONFUSABLES)


def normalise(token: str) -> str:
    """One token as meant: folded, l33t decoded, letters repeated 3+ times once, slang mapped."""
    repetitions, leet = _normalisers()
    word = fold(token).lower()
    if any(char.isdigit() or char in "@$!" for char in word) and any(c.isalpha() for c in word):
        word = str(leet(word)).lower()  # type: ignore[operator]
    word = str(repetitions(word))  # type: ignore[operator]
    return slang_map().get(word, word)


def words(text: str) -> Iterator[Word]:
    """Every word with its span in ``text`` and its normalised form, spaced-out words joined."""
    joined: list[tuple[int, int]] = [m.span() for m in SPACED.finditer(text)]
    for start, end in joined:
        yield Word(start, end, normalise(re.sub(r"[ ._-]", "", text[start:end])))
    for match in WORD.finditer(text):
        if any(s <= match.start() < e for s, e in joined):
            continue
        raw = match.group()
        token = raw.strip("!*#")
        if token:
            start = match.start() + raw.index(token)
            yield Word(start, start + len(token), normalise(token))


def sentences(text: str, limit: int = 400) -> Iterator[tuple[int, int]]:
    """Spans of sentences (or lines), long ones cut into pieces of at most ``limit`` chars."""
    start = 0
    for match in [*SENTENCE_END.finditer(text), None]:
        end = match.start() if match else len(text)
        while end - start > limit:
            cut = text.rfind(" ", start, start + limit)
            cut = cut if cut > start else start + limit
            yield start, cut
            start = cut
        if text[start:end].strip():
            yield start, end
        if match:
            start = match.end()


def hidden_spans(text: str) -> Iterator[tuple[int, int]]:
    """Runs of invisible characters: zero-width, bidi overrides, Unicode tag characters."""
    for match in re.finditer(HIDDEN.pattern + "+", text):
        yield match.span()


def mixed_script(token: str) -> bool:
    """Whether a word mixes Latin letters with Cyrillic or Greek ones (a homoglyph trick)."""
    scripts = set()
    for char in token:
        if char.isalpha():
            name = unicodedata.name(char, "")
            scripts.add(name.split(" ")[0])
    return "LATIN" in scripts and bool(scripts & {"CYRILLIC", "GREEK"})


def is_binary(text: str) -> bool:
    """Mostly control characters or NULs: not text a person wrote."""
    if not text:
        return False
    sample = text[:4096]
    control = sum(
        1 for c in sample if unicodedata.category(c) in {"Cc", "Cs", "Co"} and c not in "\n\r\t"
    )
    return "\x00" in sample or control / len(sample) > 0.3


FUNCTION_WORDS = {
    "id": {
        "yang",
        "dan",
        "di",
        "itu",
        "ini",
        "dengan",
        "untuk",
        "saya",
        "adalah",
        "tidak",
        "ke",
        "dari",
        "seorang",
        "apakah",
        "dia",
        "sangat",
    },
    "en": {
        "the",
        "and",
        "is",
        "of",
        "to",
        "a",
        "an",
        "with",
        "for",
        "was",
        "are",
        "he",
        "she",
        "about",
        "write",
        "his",
        "her",
    },
}


def language(text: str) -> str:
    """ "id" or "en" by common function words; "" when it cannot tell."""
    tokens = re.findall(r"[a-z]+", text.lower())
    counts = {lang: sum(t in words for t in tokens) for lang, words in FUNCTION_WORDS.items()}
    if counts["id"] == counts["en"]:
        return ""
    return max(counts, key=lambda lang: counts[lang])
