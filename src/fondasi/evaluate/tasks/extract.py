"""Structured extraction: a record from text, answered under a JSON schema.

Each model is asked with ``json_schema`` set, so hosted models use their structured output
and local ones grammar-constrained decoding. The schema comes from the config
(``json_schema:``, inline or a ``.json`` file) or from the data's schema file next to it
(``NAME.schema.json`` or ``NAME.schema.jsonl``, as the bundled sets ship theirs).

An answer is kept as ``{"value", "valid", "problem", "text"}``: the parsed JSON, whether it
parsed and validated against the schema (``jsonschema``), and why not. Fields are compared
after light normalisation: strings by case and spacing, numbers by value.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fondasi.errors import BadInputError
from fondasi.evaluate.metrics import metric
from fondasi.evaluate.tasks import Context, Output, Predictor, Task, register

if TYPE_CHECKING:
    from fondasi.evaluate.config import CandidateSpec
    from fondasi.evaluate.datasets import Example
    from fondasi.models.contract import ModelHandle

TASK = "structured"
INSTRUCTION = (
    "Extract the record this JSON schema describes from the text. Answer with one JSON "
    "object only. Use null for a field the text does not give.\n\nSchema: {schema}"
)


# -- comparing values ---------------------------------------------------------------------


def same(expected: Any, got: Any) -> bool:
    """Equal after light normalisation: strings by case and spacing, numbers by value."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return expected is got
    if isinstance(expected, int | float) and isinstance(got, int | float):
        return math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(expected, str) and isinstance(got, str):
        return " ".join(expected.lower().split()) == " ".join(got.lower().split())
    if isinstance(expected, Mapping) and isinstance(got, Mapping):
        keys = set(expected) | set(got)
        return all(same(expected.get(key), got.get(key)) for key in keys)
    if isinstance(expected, list) and isinstance(got, list):
        return len(expected) == len(got) and all(map(same, expected, got))
    return expected is None and got is None


def _value(output: Any) -> Any:
    """The parsed answer of an output record (None when it did not parse)."""
    return output.get("value") if isinstance(output, Mapping) else None


def field_hits(reference: Any, output: Any) -> dict[str, bool]:
    """Each expected field: whether the answer has it right (nothing is right unparsed)."""
    got = _value(output)
    if not isinstance(reference, Mapping):
        return {}
    if not isinstance(got, Mapping):
        return dict.fromkeys(reference, False)
    return {key: key in got and same(value, got[key]) for key, value in reference.items()}


def record_right(reference: Any, output: Any) -> bool:
    """Every expected field right and no extra field with a value."""
    got = _value(output)
    if not isinstance(got, Mapping) or not isinstance(reference, Mapping):
        return False
    extra = [key for key in got if key not in reference and got[key] is not None]
    return not extra and all(field_hits(reference, output).values())


def read_answer(text: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """An answer as the output record: the JSON value, whether it is valid, and why not."""
    import jsonschema  # type: ignore[import-untyped]

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return {"value": None, "valid": False, "problem": f"not JSON: {exc.msg}", "text": text}
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(value)
    )
    problem = None
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "top level"
        problem = f"breaks the schema at {where}: {error.message}"
    return {"value": value, "valid": error is None, "problem": problem, "text": text}


# -- metrics ------------------------------------------------------------------------------


@metric(TASK, "schema_valid", "share of answers that parse and validate against the schema")
def schema_valid(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    hits = [isinstance(out, Mapping) and out.get("valid") is True for out in outputs]
    return sum(hits) / len(hits) if hits else 0.0


@metric(TASK, "field_accuracy", "share of expected fields answered right (all examples)")
def field_accuracy(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    hits = [
        hit
        for ref, out in zip(references, outputs, strict=True)
        for hit in field_hits(ref, out).values()
    ]
    return sum(hits) / len(hits) if hits else 0.0


@metric(TASK, "exact_match", "share of records with every field right and nothing extra")
def exact_record(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    hits = [record_right(ref, out) for ref, out in zip(references, outputs, strict=True)]
    return sum(hits) / len(hits) if hits else 0.0


def per_field(references: Sequence[Any], outputs: Sequence[Any]) -> dict[str, dict[str, float]]:
    """Accuracy and support of each field the references name, in their order."""
    counts: dict[str, list[int]] = {}
    for ref, out in zip(references, outputs, strict=True):
        for key, hit in field_hits(ref, out).items():
            right, seen = counts.setdefault(key, [0, 0])
            counts[key] = [right + hit, seen + 1]
    return {
        key: {"accuracy": right / seen, "support": seen} for key, (right, seen) in counts.items()
    }


# -- the schema ---------------------------------------------------------------------------


def schema_for(context: Context) -> dict[str, Any]:
    """The run's schema: the config's, else the data's schema file; checked to be a schema."""
    from fondasi.evaluate.datasets import source_path

    given = context.config.json_schema
    if isinstance(given, dict):
        return _checked(given, "json_schema")
    if isinstance(given, str):
        return _schema_file(Path(given).expanduser())
    source = source_path(context.config.data)
    stem = source.name.split(".")[0] if source.is_file() else source.name
    folder = source.parent if source.is_file() else source
    for name in (f"{stem}.schema.json", f"{stem}.schema.jsonl"):
        if (folder / name).is_file():
            return _schema_file(folder / name)
    raise BadInputError(
        f"the structured task needs a JSON schema: json_schema: {{...}} or a file in the "
        f"config, or {stem}.schema.json next to the data"
    )


def _schema_file(path: Path) -> dict[str, Any]:
    """A schema from a .json file, or the one object of a .jsonl file."""
    from fondasi.data import read_jsonl

    if not path.is_file():
        raise BadInputError(f"json_schema file not found: {path}")
    if path.suffix == ".jsonl":
        rows = read_jsonl(path)
        if len(rows) != 1:
            raise BadInputError(f"{path}: a schema file holds one JSON object")
        return _checked(rows[0], str(path))
    try:
        return _checked(json.loads(path.read_text(encoding="utf-8")), str(path))
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path} is not JSON: {exc}") from None


def _checked(value: Any, where: str) -> dict[str, Any]:
    """``value`` if it is a JSON schema (Draft 2020-12), else a clear error."""
    import jsonschema

    if not isinstance(value, dict):
        raise BadInputError(f"{where}: a JSON schema is a JSON object")
    try:
        jsonschema.Draft202012Validator.check_schema(value)
    except jsonschema.SchemaError as exc:
        raise BadInputError(f"{where} is not a valid JSON schema: {exc.message}") from None
    return value


# -- predicting ---------------------------------------------------------------------------


class StructuredPredictor(Predictor):
    """One call per example with the schema set; few-shot examples as earlier turns."""

    per_example = True

    def __init__(self, candidate: CandidateSpec, context: Context, schema: dict[str, Any]) -> None:
        self.candidate = candidate
        self.context = context
        self.schema = schema
        chosen = random.Random(context.config.seed).sample(
            context.train, min(candidate.shots, len(context.train))
        )
        self.shots = [(str(e.fields["text"]), e.fields["expected"]) for e in chosen]

    def fingerprint(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "schema": self.schema,
            "shots": self.shots,
            "max_tokens": c.max_tokens,
            "seed": self.context.config.seed,
        }

    def setup(self, model: ModelHandle) -> None:
        from fondasi.backends.base import Capability

        if not model.can(Capability.GENERATE):
            raise BadInputError(f"{model.id} cannot generate text")

    def predict(self, model: ModelHandle, examples: Sequence[Example]) -> list[Output]:
        return [self.one(model, str(example.fields["text"])) for example in examples]

    def one(self, model: ModelHandle, text: str) -> Output:
        """Ask for one record."""
        from fondasi.types import GenerateOptions, Message, Role

        c = self.candidate
        system = INSTRUCTION.format(schema=json.dumps(self.schema, ensure_ascii=False))
        turns = [Message(role=Role.SYSTEM, content=system)]
        for shot, expected in self.shots:
            turns.append(Message(role=Role.USER, content=shot))
            answer = json.dumps(expected, ensure_ascii=False)
            turns.append(Message(role=Role.ASSISTANT, content=answer))
        turns.append(Message(role=Role.USER, content=text))
        options = GenerateOptions(
            max_tokens=c.max_tokens,
            stop=c.stop,
            seed=self.context.config.seed,
            json_schema={"name": "record", "schema": self.schema},
        )
        completion = model.generate(turns, options=options)
        found = read_answer(completion.text.strip(), self.schema)
        return Output(found, completion.usage.total_tokens, completion.cost_usd, found["problem"])


@register
class StructuredExtraction(Task):
    """A record from text, answered under a JSON schema."""

    name = TASK
    summary = "a JSON record under a schema (schema validity, field accuracy, exact records)"
    needed = ("text", "expected")
    input_field = "text"
    reference_field = "expected"
    default_metrics = ("field_accuracy", "schema_valid", "exact_match")

    def prepare(self, example: Example) -> Example:
        text, expected = example.fields["text"], example.fields["expected"]
        if not isinstance(text, str) or not text.strip():
            raise BadInputError(f"example {example.index + 1}: text is empty")
        if isinstance(expected, str):  # a CSV cell
            try:
                expected = json.loads(expected)
            except json.JSONDecodeError:
                expected = None
        if not isinstance(expected, dict):
            raise BadInputError(f"example {example.index + 1}: expected must be a JSON object")
        return type(example)(example.index, example.id, {"text": text, "expected": expected})

    def predictor(self, candidate: CandidateSpec, context: Context) -> Predictor:
        if candidate.template:
            raise BadInputError(
                "the structured task writes its own prompt from the schema; drop template:"
            )
        return StructuredPredictor(candidate, context, schema_for(context))

    def example_score(self, reference: Any, output: Any) -> float:
        hits = list(field_hits(reference, output).values())
        return sum(hits) / len(hits) if hits else float(record_right(reference, output))

    def details(self, references: Sequence[Any], outputs: Sequence[Any]) -> dict[str, Any]:
        problems = [out.get("problem") for out in outputs if isinstance(out, Mapping)]
        return {
            "per_field": per_field(references, outputs),
            "problems": list(dict.fromkeys(p for p in problems if p))[:5],
        }

    def shown(self, value: Any) -> str:
        if isinstance(value, Mapping) and "valid" in value:  # an answer: what the model wrote
            return str(value.get("text") or "")
        return super().shown(value)
