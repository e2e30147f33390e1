"""Closing: a held answer that nears its token budget is finished the shortest way the
grammar allows, on SmolLM2's real vocabulary (llguidance's tokenizer of the bundled model)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from fondasi.backends import constrained
from fondasi.backends.closing import INSIDE, OUTSIDE, Closing, Nesting

ORDER = {
    "type": "object",
    "properties": {
        "nama": {"type": "string"},
        "berat_kg": {"type": "number"},
        "kurir": {"enum": ["JNE", "SiCepat"]},
        "barang": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "catatan": {"type": "string"},
    },
    "required": ["nama", "berat_kg", "kurir", "barang"],
}


@pytest.fixture(scope="module")
def vocabulary(smol: Any) -> tuple[Any, Any]:
    """SmolLM2's llguidance tokenizer and its token shapes."""
    backend = smol.backend
    tokenizer = constrained.lltokenizer(backend, backend._lltokenizer)
    return tokenizer, constrained.shapes(backend, tokenizer)


def started(vocabulary: tuple[Any, Any], text: str, budget: int = 200) -> tuple[Any, Closing]:
    """A matcher for ORDER that has read ``text``, and a closing that followed it."""
    tokenizer, shapes = vocabulary
    matcher = constrained.matcher(tokenizer, constrained.json_grammar(ORDER))
    closing = Closing(shapes, budget)
    for token in tokenizer.tokenize_str(text):
        assert matcher.consume_token(token), text
        closing.seen(token)
    return matcher, closing


def test_nesting_counts_strings_arrays_objects_and_escapes() -> None:
    assert Nesting().feed(b'{"a": ["x", {"b": "c') == Nesting(4, INSIDE, 4)
    assert Nesting().feed(b'{"a": "say \\"hi\\"", "b": [1, 2]}') == Nesting(0, OUTSIDE, 14)
    assert Nesting(1, INSIDE).feed(b'\\\\"}').depth == -1  # an escaped backslash, then close


@pytest.mark.parametrize(
    "text",
    [
        "",
        '{"nama": "Budi dari Bandung yang sangat',
        '{"nama": "Ani", "berat_kg": 2.5',
        '{"nama": "Ani", "berat_kg": 2, "kurir": "Si',
        '{"nama": "Ani", "berat_kg": 2, "kurir": "JNE", "barang": ["kopi", "gula pa',
        '{"nama": "Ani\\',  # just after a backslash
    ],
)
def test_the_way_out_validates_and_keeps_what_was_written(
    vocabulary: tuple[Any, Any], text: str
) -> None:
    tokenizer, _ = vocabulary
    matcher, closing = started(vocabulary, text)
    way = closing.shortest(matcher, 60)
    assert way is not None
    whole = text + tokenizer.decode_str(way)
    jsonschema.validate(json.loads(whole), ORDER)
    assert whole.startswith(text)
    for token in way:  # the grammar accepts the way as written, and then it is done
        assert matcher.consume_token(token)
    assert matcher.is_accepting()


def test_a_run_on_string_is_closed_with_the_end_of_text_token_last(
    vocabulary: tuple[Any, Any],
) -> None:
    text = '{"nama": "Sinan_Sinan_Sinan_Sinan_Sinan_Sinan'
    matcher, closing = started(vocabulary, text, budget=72)
    used = len(vocabulary[0].tokenize_str(text))
    written = []
    while (token := closing.next(matcher, used)) is None:  # the model writes on: one more
        assert used < 72, "closing never took over"
        token = vocabulary[0].tokenize_str("_Sinan")[0]
        assert matcher.consume_token(token)
        closing.seen(token)
        used += 1
    while token != vocabulary[1].eos:  # then closing writes every token to the end
        written.append(token)
        assert matcher.consume_token(token)
        closing.seen(token)
        used += 1
        token = closing.next(matcher, used)
    assert used < 72  # the end-of-text token fits in the budget
    assert matcher.is_accepting() and written


def test_no_way_out_within_the_limit_is_none(vocabulary: tuple[Any, Any]) -> None:
    matcher, closing = started(vocabulary, "", budget=5)
    assert closing.shortest(matcher, 5) is None  # four required fields need more
    assert closing.next(matcher, 0) is None  # so closing leaves it to the model (cut short)
