"""Reading labels and JSON out of messy model answers, in Indonesian and English."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from fondasi.errors import BadInputError
from fondasi.prompts.parse import (
    LABEL_SYNONYMS,
    OutputParseError,
    extract_json,
    normalise,
    parse_json,
    parse_label,
    repair_message,
)

SENTIMENT_ID = ["positif", "negatif", "netral"]
SENTIMENT_EN = ["positive", "negative", "neutral"]
YES_NO_ID = ["ya", "tidak"]
RELEVANCE = ["relevan", "tidak relevan"]
INTENT = {"customer service": ["cs", "layanan pelanggan"], "billing": ["tagihan"]}
TOPICS = ["olahraga", "politik", "ekonomi", "teknologi"]
POS_CODES = ["pos", "neg"]


@pytest.mark.parametrize(
    ("answer", "labels", "expected"),
    [
        ("positif", SENTIMENT_ID, "positif"),
        ("Label: Positif", SENTIMENT_ID, "positif"),
        ("**negatif**", SENTIMENT_ID, "negatif"),
        ("Sentimen: POSITIF.", SENTIMENT_ID, "positif"),
        ("Jawaban: netral", SENTIMENT_ID, "netral"),
        ("'negative'", SENTIMENT_EN, "negative"),
        ("1. positif", SENTIMENT_ID, "positif"),
        ("`neutral`", SENTIMENT_EN, "neutral"),
        ("## Négatif", SENTIMENT_ID, "negatif"),
        ("The answer is positive because the reviewer liked it.", SENTIMENT_EN, "positive"),
        # Synonyms cross languages, whichever member the labels are named by.
        ("Positive.", SENTIMENT_ID, "positif"),
        ("Sentimennya negatif.", SENTIMENT_EN, "negative"),
        ("Pelanggan merasa kecewa dengan produk ini.", SENTIMENT_EN, "negative"),
        ("Ulasan ini bagus sekali", SENTIMENT_ID, "positif"),
        ("biasa saja", SENTIMENT_EN, "neutral"),
        ("Yes, it is.", YES_NO_ID, "ya"),
        ("Iya", YES_NO_ID, "ya"),
        ("False", YES_NO_ID, "tidak"),
        ("Tidak, itu salah.", YES_NO_ID, "tidak"),
        ("This article is about sports.", TOPICS, "olahraga"),
        ("Kategori: Business", TOPICS, "ekonomi"),
        # Negation: a denied label does not count; the next one that is given does.
        ("Ulasan ini tidak positif, melainkan negatif.", SENTIMENT_ID, "negatif"),
        ("It is not positive; it is negative.", SENTIMENT_EN, "negative"),
        ("bukan positif", SENTIMENT_ID, None),
        ("The review isn't positive. Negative.", SENTIMENT_EN, "negative"),
        ("No. Positive.", SENTIMENT_EN, "positive"),
        ("Produknya kurang bagus, agak jelek", SENTIMENT_ID, "negatif"),
        # Multi-word labels: the longest match at a position wins.
        ("Tidak relevan.", RELEVANCE, "tidak relevan"),
        ("Dokumen ini tidak relevan dengan pertanyaan", RELEVANCE, "tidak relevan"),
        ("Relevan", RELEVANCE, "relevan"),
        ("Intent: Customer Service", INTENT, "customer service"),
        ("customer_service", INTENT, "customer service"),
        ("Ini soal layanan pelanggan.", INTENT, "customer service"),
        ("Pertanyaan tentang tagihan bulan lalu", INTENT, "billing"),
        # Whole words only.
        ("Posisi pemain sudah jelas.", POS_CODES, None),
        ("pos", POS_CODES, "pos"),
        ("Negara ini", POS_CODES, None),
        ("Positivity is high", SENTIMENT_EN, None),
        # Earliest wins.
        ("negative, although parts are positive", SENTIMENT_EN, "negative"),
        # Nothing there.
        ("Saya tidak tahu.", SENTIMENT_ID, None),
        ("", SENTIMENT_EN, None),
        ("???", SENTIMENT_ID, None),
    ],
)
def test_parse_label(answer: str, labels: Any, expected: str | None) -> None:
    assert parse_label(answer, labels) == expected


def test_parse_label_returns_the_label_as_written() -> None:
    assert parse_label("positive", ["Positif", "Negatif"]) == "Positif"


def test_template_synonyms_beat_built_in_ones() -> None:
    # "bagus" is a built-in synonym of positive, but this template gives it to "excellent".
    labels = {"positif": [], "excellent": ["bagus"], "negatif": []}
    assert parse_label("Bagus!", labels) == "excellent"
    assert parse_label("Senang", labels) == "positif"


def test_template_synonyms_reach_built_in_ones_too() -> None:
    labels = {"1": ["positif"], "0": ["negatif"]}
    assert parse_label("Positive", labels) == "1"
    assert parse_label("Sentimen: buruk", labels) == "0"


def test_built_in_synonym_shared_by_two_labels_names_neither() -> None:
    labels = ["senang", "bagus", "jelek"]
    assert parse_label("positive", labels) is None
    assert parse_label("bagus", labels) == "bagus"
    assert parse_label("negative", labels) == "jelek"


@pytest.mark.parametrize(
    "labels",
    [
        ["positif", "Positif"],
        ["Tidak relevan", "tidak-relevan"],
        {"a": ["same"], "b": ["SAME"]},
        {"a": [], "b": ["a"]},
        ["positif", "!!!"],
        [],
        "positif",
    ],
)
def test_bad_label_sets_are_refused(labels: Any) -> None:
    with pytest.raises(BadInputError):
        parse_label("positif", labels)


def test_normalise() -> None:
    assert normalise("  **Négatif**!\n\t`Ya`  ") == "negatif ya"
    assert normalise("«Sentimen»: “POSITIF”.") == "sentimen positif"
    assert normalise("# customer_service") == "customer service"


def test_synonym_table_is_normalised_and_unambiguous() -> None:
    seen: dict[str, str] = {}
    for concept, members in LABEL_SYNONYMS.items():
        for term in (concept, *members):
            assert normalise(term) == term
            assert seen.setdefault(term, concept) == concept, term


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('```json\n{"label": "positif", "score": 0.9}\n```', {"label": "positif", "score": 0.9}),
        ("Berikut hasilnya:\n```JSON\n[1, 2, 3]\n```\nSemoga membantu!", [1, 2, 3]),
        ("```json\n42\n```", 42),
        (
            'Sure! Here it is: {"a": {"b": [1, 2]}} Let me know if you need more.',
            {"a": {"b": [1, 2]}},
        ),
        (
            '{"text": "kurung } dan { di dalam string", "n": 1}',
            {"text": "kurung } dan { di dalam string", "n": 1},
        ),
        ('{"quote": "dia berkata \\"}\\"", "ok": true}', {"quote": 'dia berkata "}"', "ok": True}),
        ('{"items": [1, 2, 3,], "name": "x",}', {"items": [1, 2, 3], "name": "x"}),
        ('{"keep": "a,}"  ,}', {"keep": "a,}"}),
        ('Lihat [catatan] di bawah. {"a": 1}', {"a": 1}),
        ('Use the format {name}. Answer: {"name": "Budi"}', {"name": "Budi"}),
        ('  {"a": null}  ', {"a": None}),
    ],
)
def test_extract_json(answer: str, expected: Any) -> None:
    assert extract_json(answer) == expected


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("Maaf, saya tidak bisa menjawab.", "no JSON"),
        ('{"name": "Budi", "age": 3', "cut off"),
        ("{'name': 'Budi'}", "invalid JSON"),
        ('```json\n{"a": 1,, "b": 2}\n```', "invalid JSON"),
    ],
)
def test_extract_json_failures_say_why(answer: str, reason: str) -> None:
    with pytest.raises(OutputParseError, match=reason) as info:
        extract_json(answer)
    assert isinstance(info.value, BadInputError)
    assert "\n" not in str(info.value)


class Person(BaseModel):
    name: str
    age: int
    tags: list[str] = []


PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "age"],
}


def test_parse_json_with_a_pydantic_model() -> None:
    person = parse_json('Jawaban:\n```json\n{"name": "Siti", "age": 30}\n```', Person)
    assert person == Person(name="Siti", age=30)


def test_parse_json_pydantic_failure_names_the_field() -> None:
    with pytest.raises(OutputParseError) as info:
        parse_json('{"name": "Siti", "age": "tiga puluh", "tags": ["a", 5]}', Person)
    message = str(info.value)
    assert message.startswith("age: ")
    assert "integer" in message
    assert "(and 1 more problem)" in message
    assert "\n" not in message and len(message) < 200


def test_parse_json_pydantic_nested_path() -> None:
    with pytest.raises(OutputParseError, match=r"^tags\[1\]: "):
        parse_json('{"name": "Siti", "age": 1, "tags": ["a", 5]}', Person)


def test_parse_json_with_a_json_schema() -> None:
    value = parse_json('{"name": "Siti", "age": 30, "tags": ["x"]}', PERSON_SCHEMA)
    assert value == {"name": "Siti", "age": 30, "tags": ["x"]}


@pytest.mark.parametrize(
    ("answer", "start", "words"),
    [
        ('{"name": "Siti", "age": -1}', "age: ", "minimum"),
        ('{"name": "Siti", "age": 3, "tags": ["a", 7]}', "tags[1]: ", "not of type 'string'"),
        ('{"name": "Siti"}', "the answer: ", "'age' is a required property"),
        ('{"name": "' + "x" * 500 + '", "age": "old"}', "age: ", "not of type 'integer'"),
    ],
)
def test_parse_json_schema_failure_names_the_field(answer: str, start: str, words: str) -> None:
    with pytest.raises(OutputParseError) as info:
        parse_json(answer, PERSON_SCHEMA)
    message = str(info.value)
    assert message.startswith(start)
    assert words in message
    assert "\n" not in message and len(message) < 220


def test_an_invalid_schema_is_the_caller_s_fault_not_the_model_s() -> None:
    with pytest.raises(BadInputError, match="schema is invalid") as info:
        parse_json('{"a": 1}', {"type": "no-such-type"})
    assert not isinstance(info.value, OutputParseError)


def test_parse_json_without_schema_returns_the_value() -> None:
    assert parse_json("[true, false]", None) == [True, False]


def test_repair_message_in_english_with_a_json_schema() -> None:
    with pytest.raises(OutputParseError) as info:
        parse_json('{"name": "Siti"}', PERSON_SCHEMA)
    message = repair_message(info.value, PERSON_SCHEMA, "en")
    assert "'age' is a required property" in message
    assert "reply with only the json" in message.casefold()
    assert json.dumps(PERSON_SCHEMA, separators=(",", ":")) in message


def test_repair_message_in_indonesian_with_a_pydantic_model() -> None:
    with pytest.raises(OutputParseError) as info:
        parse_json("Maaf, tidak ada.", Person)
    message = repair_message(info.value, Person, "id")
    assert message.startswith("Jawaban Anda sebelumnya tidak dapat dibaca: ")
    assert "no JSON" in message
    assert "Balas hanya dengan JSON" in message
    assert '"required":["name","age"]' in message
    assert repair_message(info.value, Person, "id-ID") == message


def test_repair_message_without_schema() -> None:
    error = OutputParseError("invalid JSON: Expecting value: line 1 column 1 (char 0)")
    english = repair_message(error, None, "en")
    indonesian = repair_message(error, None, "id")
    assert "Expecting value" in english and "Expecting value" in indonesian
    assert "no other text" in english
    assert "tanpa teks lain" in indonesian
    assert "schema" not in english and "skema" not in indonesian
