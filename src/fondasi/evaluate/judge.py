"""Model-graded scoring: a judge model grades each answer 1–5 against the reference.

The judge's prompt is a template like any other (variables ``input``, ``reference``,
``output``; labels ``1`` to ``5``), so a user can replace it, and the report shows it in
full. Grades are cached like predictions: same judge, prompt, example and answer, same grade.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fondasi.evaluate.cache import PredictionCache, cache_key

if TYPE_CHECKING:
    from fondasi.evaluate.config import JudgeSpec
    from fondasi.models.contract import ModelHandle
    from fondasi.prompts.template import PromptTemplate

DEFAULT_JUDGE = {
    "name": "eval-judge",
    "description": "Grade an answer against a reference answer, 1 (wrong) to 5 (as good).",
    "variables": ["input", "reference", "output"],
    "system": "You are a strict, fair grader. You answer with a single digit.",
    "instruction": (
        "Grade the candidate answer to the task below against the reference answer.\n"
        "5: same meaning as the reference, fluent. 4: same meaning, small slips. "
        "3: partly right. 2: mostly wrong. 1: wrong, empty or off-topic.\n"
        "The task and answers may be in Indonesian or English."
    ),
    "input": (
        "Task input: {{ input }}\nReference answer: {{ reference }}\n"
        "Candidate answer: {{ output }}\nGrade (1-5):"
    ),
    "output": {"format": "label", "labels": ["1", "2", "3", "4", "5"]},
}


def judge_template(spec: JudgeSpec, home: Any) -> PromptTemplate:
    """The judge's prompt: the configured template, or fondasi's default."""
    from fondasi.prompts.template import PromptTemplate

    if spec.template:
        return PromptTemplate.load(spec.template, home)
    return PromptTemplate.model_validate(DEFAULT_JUDGE)


def grade_all(
    judge: ModelHandle,
    template: PromptTemplate,
    items: list[tuple[str, str, str]],
    cache: PredictionCache,
    seed: int,
) -> list[float | None]:
    """A grade 1–5 per (input, reference, output); None where the judge's answer is unreadable."""
    from fondasi.models.prompting import ask
    from fondasi.types import GenerateOptions

    fingerprint = [judge.id, template.model_dump(mode="json")]
    keys = [cache_key("judge", fingerprint, item) for item in items]
    known = cache.get_many(keys)
    grades: list[float | None] = []
    fresh: dict[str, dict[str, Any]] = {}
    for key, (text, reference, output) in zip(keys, items, strict=True):
        if key in known:
            grades.append(known[key]["output"])
            continue
        answer = ask(
            judge,
            template,
            input=text,
            reference=reference,
            output=output or "(no answer)",
            options=GenerateOptions(max_tokens=4, seed=seed),
        )
        grade = float(answer.value) if answer.value is not None else None
        grades.append(grade)
        if grade is not None:
            fresh[key] = {"output": grade, "error": None}
    cache.put_many(f"judge:{judge.id}", fresh)
    return grades
