"""Toxicity and abuse, Indonesian and English: a lexicon read through the obfuscations people
use (l33t, repeated letters, slang, s p a c e d letters, f*ck), plus a classifier over the
bundled embeddings for abuse the word list does not know.

Words with an innocent meaning ("anjing" is a dog) count only when aimed at someone: next to
a cue such as "dasar", "lo", "kamu", "you".
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources

from fondasi.guard.base import Filter, Finding, ScanContext, register
from fondasi.guard.classifier import sentence_findings
from fondasi.guard.text import normalise, words

MAX_PHRASE = 5


@dataclass(frozen=True)
class Entry:
    """A lexicon entry: how bad, what kind, which language."""

    weight: float
    category: str
    lang: str


@dataclass(frozen=True)
class Lexicon:
    """Normalised words and phrases, with the cue words that sharpen ambiguous ones."""

    words: dict[str, Entry]
    phrases: dict[tuple[str, ...], Entry]
    cues: frozenset[str]
    cue_boost: float
    cue_window: int
    by_length: dict[int, list[str]]


@functools.cache
def lexicon() -> Lexicon:
    """The shipped word list, normalised the same way as the text it is matched against."""
    source = resources.files("fondasi.guard") / "data" / "toxicity_lexicon.json"
    data = json.loads(source.read_text(encoding="utf-8"))
    single: dict[str, Entry] = {}
    multi: dict[tuple[str, ...], Entry] = {}
    for lang in ("id", "en"):
        for category, terms in data[lang].items():
            entry = Entry(data["weights"][category], category, lang)
            for term in terms:
                key = tuple(normalise(part) for part in term.split())
                if len(key) == 1:
                    single.setdefault(key[0], entry)
                else:
                    multi.setdefault(key, entry)
    cues = frozenset(normalise(cue) for lang in ("id", "en") for cue in data["cues"][lang])
    lengths: dict[int, list[str]] = {}
    for word in single:
        lengths.setdefault(len(word), []).append(word)
    return Lexicon(single, multi, cues, data["cue_boost"], data["cue_window"], lengths)


def _starred(token: str, lex: Lexicon) -> str | None:
    """f*ck, b*ngs*t: the one lexicon word of that length the stars could stand for."""
    if "*" not in token and "#" not in token:
        return None
    pattern = re.compile(
        re.sub(r"[*#]", ".", re.escape(token).replace(r"\*", "*").replace(r"\#", "#"))
    )
    hits = [word for word in lex.by_length.get(len(token), []) if pattern.fullmatch(word)]
    return hits[0] if len(hits) == 1 else None


def lexicon_hits(text: str) -> list[Finding]:
    """Abusive words and phrases in ``text``, scored by the lexicon's weights."""
    lex = lexicon()
    tokens = sorted(words(text), key=lambda w: w.start)
    norms = [w.norm for w in tokens]
    found: list[Finding] = []
    for index, token in enumerate(tokens):
        for size in range(min(MAX_PHRASE, len(tokens) - index), 1, -1):
            entry = lex.phrases.get(tuple(norms[index : index + size]))
            if entry:
                end = tokens[index + size - 1].end
                found.append(
                    Finding(
                        "toxicity",
                        token.start,
                        end,
                        entry.weight,
                        "toxicity",
                        f"{entry.category} ({entry.lang})",
                    )
                )
                break
        word = token.norm if token.norm in lex.words else _starred(token.norm, lex)
        if word is None:
            continue
        entry = lex.words[word]
        score = entry.weight
        if entry.category == "ambiguous":
            near = norms[max(index - lex.cue_window, 0) : index + lex.cue_window + 1]
            if any(cue in lex.cues for cue in near):
                score = lex.cue_boost
        found.append(
            Finding(
                "toxicity",
                token.start,
                token.end,
                score,
                "toxicity",
                f"{entry.category} ({entry.lang})",
            )
        )
    return found


@register("toxicity")
class ToxicityFilter(Filter):
    """Insults, profanity, slurs and threats in Indonesian and English."""

    summary = "abuse, slurs and threats, ID+EN (lexicon + embedding classifier)"
    actions = frozenset({"flag", "mask", "block"})
    threshold = 0.5

    def scan(self, text: str, context: ScanContext) -> list[Finding]:
        """Lexicon hits per word or phrase, classifier hits per sentence."""
        found = [item for item in lexicon_hits(text) if item.score >= self.min_score]
        found.extend(sentence_findings("toxicity", text, self))
        return sorted(found, key=lambda f: (f.start, f.end))

    def placeholder(self, finding: Finding) -> str:
        """Masked abuse reads as a marker, so the reader knows something was removed."""
        return "[removed: toxicity]"
