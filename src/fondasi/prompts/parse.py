"""Reading a model's answer: one label of a closed set, or JSON checked against a schema.

Small models rarely answer with exactly what was asked for. They add markdown, a preamble
or an explanation, answer with a synonym in the other language, or leave a trailing
comma in their JSON. These functions accept that mess. When they cannot, the error is one
line that can go back to the model in a repair turn (``repair_message``).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeAlias, TypeVar, overload

from pydantic import BaseModel, ValidationError

from fondasi.errors import BadInputError

ModelT = TypeVar("ModelT", bound=BaseModel)
Schema: TypeAlias = type[BaseModel] | Mapping[str, Any] | None


class OutputParseError(BadInputError):
    """A model's answer holds no usable value; the message says why in one line."""


# Keyed by a concept; every member is already in normalise() form. A label named by any
# member (or by the key) also matches the other members, whichever language it is in.
LABEL_SYNONYMS: dict[str, tuple[str, ...]] = {
    "positive": ("positif", "positive", "pos", "bagus", "senang", "puas"),
    "negative": ("negatif", "negative", "neg", "buruk", "jelek", "kecewa"),
    "neutral": ("netral", "neutral", "biasa saja"),
    "yes": ("ya", "iya", "yes", "benar", "betul", "true"),
    "no": ("tidak", "tak", "nggak", "enggak", "bukan", "no", "false", "salah"),
    "sport": ("olahraga", "sport", "sports"),
    "politics": ("politik", "politics"),
    "economy": ("ekonomi", "economy", "bisnis", "business"),
    "technology": ("teknologi", "technology", "tech"),
    "health": ("kesehatan", "health"),
    "entertainment": ("hiburan", "entertainment"),
}

# A label word right after one of these is being denied, not given. "kurang" and "belum"
# ("not very", "not yet") deny as well; "t" is what is left of "isn't" after normalise().
_NEGATIONS = frozenset(
    {"tidak", "tak", "bukan", "nggak", "enggak", "gak", "kurang", "belum"}
    | {"not", "no", "non", "never", "t"}
)
# Negation does not reach across these: in "No. Positive." the answer is positive.
_CLAUSE_BREAK = re.compile(r"[.,;:!?()\[\]\n—–]+")
_JSON_FENCE = re.compile(r"```[ \t]*json[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)
_CLOSER_AHEAD = re.compile(r"\s*[}\]]")


def normalise(text: str) -> str:
    """Casefold, strip accents, turn everything but letters and digits into single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[\W_]+", " ", bare).split())


def parse_label(text: str, labels: Sequence[str] | Mapping[str, Sequence[str]]) -> str | None:
    """The one label of ``labels`` that a model's answer gives, or None when it gives none."""
    terms = _label_terms(labels)
    whole = tuple(normalise(text).split())
    if whole in terms:
        return terms[whole]
    # Earliest match wins; at one position the longest, so "tidak relevan" beats "relevan".
    by_first_word: dict[str, list[tuple[str, ...]]] = {}
    for term in sorted(terms, key=len, reverse=True):
        by_first_word.setdefault(term[0], []).append(term)
    for clause in _CLAUSE_BREAK.split(text):
        words = normalise(clause).split()
        for i, word in enumerate(words):
            if i and words[i - 1] in _NEGATIONS:
                continue
            for term in by_first_word.get(word, ()):
                if tuple(words[i : i + len(term)]) == term:
                    return terms[term]
    return None


def _label_terms(
    labels: Sequence[str] | Mapping[str, Sequence[str]],
) -> dict[tuple[str, ...], str]:
    """Every way of writing each label, as a tuple of words, mapped to the label."""
    if isinstance(labels, str):
        raise BadInputError(f"labels must be a list of names, not one string ({labels!r})")
    named = labels.items() if isinstance(labels, Mapping) else ((name, ()) for name in labels)
    own: dict[str, str] = {}
    for name, extra in named:
        key = normalise(name)
        if not key:
            raise BadInputError(f"label {name!r} has no letters or digits")
        if key in own:
            raise BadInputError(f"label {name!r} is the same as {own[key]!r} after normalising")
        own[key] = name
        for synonym in (extra,) if isinstance(extra, str) else extra:
            term = normalise(synonym)
            if term and own.setdefault(term, name) != name:
                raise BadInputError(f"synonym {synonym!r} of {name!r} also names {own[term]!r}")
    if not own:
        raise BadInputError("no labels to choose from")
    # Built-in synonyms never override what a template said. A group reached through a
    # label's name outranks one reached through a template synonym; a group two labels
    # reach alike (labels "baik" and "bagus" both reach "positive") names neither.
    names = {normalise(name) for name in labels}
    claims: dict[str, tuple[set[str], set[str]]] = {}
    for term, label in own.items():
        for concept, members in LABEL_SYNONYMS.items():
            if term == concept or term in members:
                for member in (concept, *members):
                    claims.setdefault(member, (set(), set()))[term not in names].add(label)
    terms = dict(own)
    for term, (by_name, by_synonym) in claims.items():
        owners = by_name or by_synonym
        if term not in own and len(owners) == 1:
            terms[term] = next(iter(owners))
    return {tuple(term.split()): label for term, label in terms.items()}


def extract_json(text: str) -> Any:
    """The JSON value in a model's answer: a ```json block, else the first bracketed value."""
    fence = _JSON_FENCE.search(text)
    region = fence.group(1) if fence else text
    try:
        return json.loads(region)  # the whole region, so a fenced scalar works too
    except ValueError:
        pass
    starts = [i for i, ch in enumerate(region) if ch in "{["]
    if not starts:
        raise OutputParseError("the answer holds no JSON object or array")
    problem = ""
    # Prose may hold brackets of its own ("[1]", "{name}"): try each start in turn.
    for start in starts:
        candidate = _bracketed(region, start)
        if candidate is None:
            problem = problem or "the JSON is cut off, or its brackets do not match"
            continue
        try:
            return _loads(candidate)
        except json.JSONDecodeError as exc:
            problem = problem or f"invalid JSON: {exc}"
    raise OutputParseError(problem)


def _outside_strings(text: str, start: int = 0) -> Iterator[tuple[int, str]]:
    """Positions and characters of ``text`` from ``start`` that are not inside a JSON string."""
    in_string = escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        in_string = ch == '"'
        yield i, ch


def _bracketed(text: str, start: int) -> str | None:
    """The balanced {...} or [...] that opens at ``start``; None if it never closes properly."""
    expected: list[str] = []
    for i, ch in _outside_strings(text, start):
        if ch in "{[":
            expected.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if ch != expected.pop():
                return None
            if not expected:
                return text[start : i + 1]
    return None


def _loads(candidate: str) -> Any:
    """json.loads, retried once without trailing commas, a common small-model slip."""
    try:
        return json.loads(candidate)
    except json.JSONDecodeError:
        drop = {
            i
            for i, ch in _outside_strings(candidate)
            if ch == "," and _CLOSER_AHEAD.match(candidate, i + 1)
        }
        if not drop:
            raise
    return json.loads("".join(ch for i, ch in enumerate(candidate) if i not in drop))


@overload
def parse_json(text: str, schema: type[ModelT]) -> ModelT: ...
@overload
def parse_json(text: str, schema: Mapping[str, Any] | None = None) -> Any: ...
def parse_json(text: str, schema: Schema = None) -> Any:
    """The JSON in a model's answer, validated by a pydantic model or a JSON Schema if given."""
    value = extract_json(text)
    if schema is None:
        return value
    if isinstance(schema, type):
        try:
            return schema.model_validate(value)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            raise OutputParseError(
                _problem(first["loc"], first["msg"], exc.error_count())
            ) from None
    # A core dependency, but only a JSON-schema template needs it: keep imports light.
    import jsonschema  # type: ignore[import-untyped]

    checker = jsonschema.validators.validator_for(schema)
    try:
        checker.check_schema(schema)
    except jsonschema.SchemaError as exc:  # the template is wrong, not the answer
        raise BadInputError(f"the JSON schema is invalid: {exc.message}") from None
    errors = list(checker(schema, format_checker=checker.FORMAT_CHECKER).iter_errors(value))
    if errors:
        first = jsonschema.exceptions.best_match(errors)
        raise OutputParseError(_problem(list(first.absolute_path), first.message, len(errors)))
    return value


def _problem(path: Sequence[str | int], what: str, count: int) -> str:
    """One short line: where in the answer, what was wrong, how many more problems."""
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    what = what if len(what) <= 160 else what[:157] + "..."  # the answer may be echoed whole
    more = f" (and {count - 1} more problem{'s' * (count > 2)})" if count > 1 else ""
    return f"{where or 'the answer'}: {what}{more}"


def repair_message(error: OutputParseError, schema: Schema = None, language: str = "en") -> str:
    """A follow-up user turn asking the model to answer again with only valid JSON."""
    reason = str(error).rstrip(".")
    if isinstance(schema, type):
        shown: Mapping[str, Any] | None = schema.model_json_schema()
    else:
        shown = schema
    spec = (
        "" if shown is None else json.dumps(dict(shown), separators=(",", ":"), ensure_ascii=False)
    )
    if language.casefold().replace("_", "-").split("-")[0] in ("id", "ind"):
        head = f"Jawaban Anda sebelumnya tidak dapat dibaca: {reason}."
        if spec:
            return f"{head} Balas hanya dengan JSON, sesuai skema JSON ini: {spec}"
        return f"{head} Balas hanya dengan JSON, tanpa teks lain."
    head = f"Your previous answer could not be read: {reason}."
    if spec:
        return f"{head} Reply with only the JSON, matching this JSON schema: {spec}"
    return f"{head} Reply with only the JSON, no other text."
