"""Prompt templates: exact rendering, example selection, the sandbox, the bundled library."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import fondasi
from fondasi.errors import UnknownChoiceError
from fondasi.prompts.library import PromptLibrary
from fondasi.prompts.render import Budget, render
from fondasi.prompts.sandbox import PromptError
from fondasi.prompts.select import Pick, selector
from fondasi.prompts.template import PromptTemplate
from fondasi.types import Message, Role

SEED_FEWSHOT = """Contoh 1:
Input: Saya suka apel
Output: I like apples

Contoh 2:
Input: Kucing itu berwarna hitam
Output: The cat is black

Input: Saya suka belajar tentang AI
Output:"""

SEED_ZERO_SHOT = (
    "Terjemahkan kalimat berikut ke dalam bahasa Inggris: 'Saya suka belajar tentang AI'"
)


def user(text: str) -> Message:
    return Message(role=Role.USER, content=text)


def assistant(text: str) -> Message:
    return Message(role=Role.ASSISTANT, content=text)


def tiny(**fields: Any) -> PromptTemplate:
    base: dict[str, Any] = {
        "name": "tiny",
        "description": "a test template",
        "instruction": "Label the review: {{ labels | join(' or ') }}.",
        "input": "Review: {{ input }}\nLabel:",
        "output": {"format": "label", "labels": ["good", "bad"]},
        "examples": [
            {"input": "great", "output": "good"},
            {"input": "awful", "output": "bad"},
            {"input": "lovely", "output": "good"},
            {"input": "broken", "output": "bad"},
        ],
        "fewshot": {"k": 2},
    }
    return PromptTemplate.model_validate({**base, **fields})


def test_the_seed_examples_render_verbatim() -> None:
    fewshot = PromptTemplate.load("translate-id-en-fewshot")
    rendered = fewshot.render(input="Saya suka belajar tentang AI")
    assert rendered.text == SEED_FEWSHOT
    assert rendered.messages == (user(SEED_FEWSHOT),)  # layout single: one turn
    zero = PromptTemplate.load("translate-id-en").render(input="Saya suka belajar tentang AI")
    assert rendered.examples and not zero.examples
    assert zero.text == SEED_ZERO_SHOT and zero.messages == (user(SEED_ZERO_SHOT),)


def test_turns_layout_makes_user_assistant_pairs() -> None:
    rendered = tiny().render(input="meh")
    assert rendered.messages == (
        user("Label the review: good or bad.\n\nReview: great\nLabel:"),
        assistant("good"),
        user("Review: awful\nLabel:"),
        assistant("bad"),
        user("Review: meh\nLabel:"),
    )
    # A base model reads the same prompt as one text.
    assert rendered.text == (
        "Label the review: good or bad.\n\nReview: great\nLabel: good\n\n"
        "Review: awful\nLabel: bad\n\nReview: meh\nLabel:"
    )


def test_single_layout_and_system_prompt() -> None:
    template = tiny(system="Be brief.", fewshot={"k": 1, "layout": "single"})
    rendered = template.render(input="meh")
    assert rendered.messages == (
        Message(role=Role.SYSTEM, content="Be brief."),
        user("Label the review: good or bad.\n\nReview: great\nLabel: good\n\nReview: meh\nLabel:"),
    )
    assert rendered.text.startswith("Be brief.\n\nLabel the review")
    assert template.render(input="meh", layout="turns").messages[2] == assistant("good")


def test_shots_zero_is_zero_shot_and_labels_can_be_replaced() -> None:
    rendered = tiny().render(input="meh", shots=0, labels=["pos", "neg", "mixed"])
    assert rendered.messages == (
        user("Label the review: pos or neg or mixed.\n\nReview: meh\nLabel:"),
    )
    assert rendered.parse("Label: MIXED.") == "mixed"
    # Examples of labels left out of the set are not shown.
    only = tiny().render(input="meh", shots=4, labels=["good", "neutral"])
    assert [example["output"] for example in only.examples] == ["good", "good"]


def test_random_selection_is_repeatable_with_a_seed() -> None:
    pool = [{"input": str(i), "output": "x"} for i in range(20)]
    choose = selector("random").choose
    first = choose(pool, Pick(query="q", k=5, seed=7))
    assert first == choose(pool, Pick(query="q", k=5, seed=7))
    assert first != choose(pool, Pick(query="q", k=5, seed=8))
    assert len(set(first)) == 5


def test_balanced_selection_shows_every_label_before_repeating() -> None:
    pool = [{"input": str(i), "output": label} for i, label in enumerate("aaaaaabbbc")]
    for seed in range(5):
        chosen = selector("balanced").choose(pool, Pick(query="q", k=3, seed=seed))
        assert sorted(pool[i]["output"] for i in chosen) == ["a", "b", "c"]
    # Which label leads changes with the seed, so none is always the one cut.
    leads = {
        pool[selector("balanced").choose(pool, Pick("q", 1, seed))[0]]["output"]
        for seed in range(12)
    }
    assert leads == {"a", "b", "c"}


def test_knn_selection_returns_the_nearest_examples(e5: Any) -> None:
    pool = [
        {"input": "Pesawat saya ditunda tiga jam di bandara", "output": "travel"},
        {"input": "Resep rendang daging sapi yang empuk", "output": "food"},
        {"input": "Tiket kereta ke Bandung sudah habis", "output": "travel"},
        {"input": "Cara membuat sambal terasi pedas", "output": "food"},
        {"input": "Harga saham bank naik tajam hari ini", "output": "finance"},
    ]
    template = tiny(examples=pool, output={"format": "text"}, instruction="")
    rendered = template.render(
        input="Bagaimana memasak nasi goreng?", shots=2, select="knn", embedder=e5
    )
    assert [example["output"] for example in rendered.examples] == ["food", "food"]
    # The nearest example is shown last, next to the question.
    chosen = selector("knn").choose(pool, Pick("Bagaimana memasak nasi goreng?", 2, embed=e5.embed))
    assert rendered.examples[-1] == pool[chosen[0]]
    flights = template.render(
        input="Penerbangan dibatalkan karena cuaca", shots=1, select="knn", embedder=e5
    )
    assert flights.examples[0]["output"] == "travel"


def test_examples_that_overflow_the_context_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    template = tiny(fewshot={"k": 4})
    words = len(template.render(input="meh", shots=2).text.split())
    budget = Budget(lambda text: len(text.split()), words + 1)
    with caplog.at_level(logging.WARNING):
        rendered = render(template, {"input": "meh"}, budget=budget, chat=False)
    assert len(rendered.examples) == 2 and rendered.dropped == 2
    assert "2 of 4 examples dropped" in caplog.text
    with pytest.raises(PromptError, match="longer than the model's context"):
        render(template, {"input": "word " * 50}, budget=budget, chat=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({}, "missing variable 'input'"),
        ({"input": "x", "inptu": "y"}, "unknown variable 'inptu'; did you mean 'input'"),
        ({"input": ["a list"]}, "variable 'input' must be text"),
    ],
)
def test_bad_variables_are_clear_errors(change: dict[str, Any], message: str) -> None:
    with pytest.raises(PromptError, match=message):
        tiny().render(change)


@pytest.mark.parametrize(
    ("field", "source", "message"),
    [
        ("instruction", "{{ input | shout }}", "No filter named 'shout'"),
        ("instruction", "{% if %}", "tiny.instruction"),
        ("input", "{{ input.__class__.__mro__ }}", "not allowed in a prompt template"),
        ("input", "{{ cycler.__init__.__globals__ }}", "not allowed in a prompt template"),
        ("input", "{{ input }} {{ secret }}", "'secret' is undefined"),
    ],
)
def test_template_errors_and_sandbox_escapes_are_refused(
    field: str, source: str, message: str
) -> None:
    # Syntax and unknown filters fail when the template is built; the rest when rendered.
    with pytest.raises((PromptError, ValidationError), match=message):
        tiny(**{field: source}).render(input="x")


def test_a_template_that_mutates_data_is_refused() -> None:
    with pytest.raises(PromptError, match="not allowed"):
        tiny(instruction="{{ labels.append('evil') }}").render(input="x")


def test_user_templates_override_and_load_from_files(home: Path) -> None:
    folder = home / "prompts"
    folder.mkdir(parents=True)
    (folder / "sentiment-id.yaml").write_text(
        "description: mine\ninstruction: 'Sentimen? {{ input }}'\ninput: ''\n", encoding="utf-8"
    )
    mine = PromptTemplate.load("sentiment-id", home)
    assert mine.description == "mine" and mine.render(input="x").text == "Sentimen? x"
    loose = folder.parent / "loose.yaml"
    loose.write_text("name: loose\ndescription: d\ninput: 'Q: {{ input }}'\n", encoding="utf-8")
    assert fondasi.Prompt.load(str(loose)).render(input="hi").text == "Q: hi"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("description: [unclosed", "not valid YAML"),
        ("- a list", "a mapping of fields"),
        ("description: d\nfewshot: {k: -1}", "fewshot.k"),
        ("description: d\nunknown_field: 1", "unknown_field"),
        ("description: d\noutput: {format: label, labels: [only]}", "at least two labels"),
        ("description: d\ninstruction: '{{ x | nope }}'", "No filter named 'nope'"),
    ],
)
def test_malformed_template_files_name_the_problem(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PromptError, match=message):
        PromptTemplate.load(str(path))


def test_unknown_template_names_suggest_close_ones() -> None:
    with pytest.raises(UnknownChoiceError, match="sentiment-id"):
        PromptTemplate.load("sentimen-id")
    with pytest.raises(UnknownChoiceError, match="example selection"):
        tiny().render(input="x", select="nearest")


def test_every_bundled_template_renders_in_both_languages() -> None:
    templates = PromptLibrary.load().all()
    names = {template.name for template in templates}
    for stem in ("sentiment", "intent", "topic", "extract-json", "summarize", "classify"):
        assert {f"{stem}-id", f"{stem}-en"} <= names
    for template in templates:
        values = dict.fromkeys(template.variables, "contoh teks")
        labels = None if template.label_names or template.output.format != "label" else ["a", "b"]
        rendered = template.render(values, labels=labels, select="fixed")
        assert "contoh teks" in rendered.text
        for example in template.examples:  # example answers are readable by the parser
            if template.output.format != "text":
                assert rendered.parse(example["output"]) not in (None, "")


def test_intent_routing_template_matches_its_bundled_splits() -> None:
    from collections import Counter

    from fondasi.data import bundled, read_jsonl
    from fondasi.prompts.parse import normalise

    template = PromptTemplate.load("intent-routing-id")
    train = read_jsonl(bundled("intent-id-train"))
    test = read_jsonl(bundled("intent-id-test"))
    labels = set(template.label_names)
    assert len(labels) == 8
    assert Counter(r["label"] for r in train) == dict.fromkeys(labels, 40)
    assert Counter(r["label"] for r in test) == dict.fromkeys(labels, 20)
    texts = [normalise(r["text"]) for r in train + test]
    assert len(set(texts)) == len(texts)  # no repeats within or across the splits
    held_out = {normalise(r["text"]) for r in test}
    assert not held_out & {normalise(e["input"]) for e in template.examples}
    assert template.render({"input": "resi?"}).text.endswith("Pesan: resi?\nIntent:")  # zero-shot
    shown = template.render({"input": "resi?"}, shots=8, select="balanced")
    assert shown.text.count("Intent:") == 9  # one example per intent, then the question
