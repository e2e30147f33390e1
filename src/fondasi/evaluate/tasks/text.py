"""Generation (translation, summaries, answers) and extraction (JSON fields) tasks.

Both prompt a language model: through the candidate's template with ``fondasi.ask`` (its
few-shot examples drawn from the train split), or, for generation without a template, the
input as the prompt itself. Extraction without a template gets a generic one that asks for
the reference's keys.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fondasi.errors import BadInputError
from fondasi.evaluate.cache import cache_key
from fondasi.evaluate.metrics import field_items
from fondasi.evaluate.tasks import Context, Output, Predictor, Task, register
from fondasi.evaluate.tasks.classify import shot_pool, template_fingerprint

if TYPE_CHECKING:
    from fondasi.evaluate.config import CandidateSpec
    from fondasi.evaluate.datasets import Example
    from fondasi.models.contract import ModelHandle
    from fondasi.prompts.template import PromptTemplate


class PromptPredictor(Predictor):
    """One ``ask`` (or plain generate) per example; the answer read by the template."""

    per_example = True

    def __init__(self, candidate: CandidateSpec, context: Context, input_field: str) -> None:
        self.candidate = candidate
        self.context = context
        self.input_field = input_field
        self.pool = shot_pool(context, input_field, "reference")

    def template(self) -> str | PromptTemplate | None:
        """The candidate's template (None: the input is the prompt)."""
        return self.candidate.template

    def fingerprint(self) -> dict[str, Any]:
        c = self.candidate
        chosen = self.template()
        return {
            "template": chosen.model_dump(mode="json")
            if not isinstance(chosen, str | None)
            else template_fingerprint(chosen, self.context.home),
            "shots": c.shots,
            "select": c.select,
            "max_tokens": c.max_tokens,
            "stop": c.stop,
            "pool": cache_key(self.pool) if c.shots else None,
            "seed": self.context.config.seed,
        }

    def setup(self, model: ModelHandle) -> None:
        from fondasi.backends.base import Capability

        if not model.can(Capability.GENERATE):
            raise BadInputError(f"{model.id} cannot generate text")

    def predict(self, model: ModelHandle, examples: Sequence[Example]) -> list[Output]:
        return [self.one(model, str(example.fields[self.input_field])) for example in examples]

    def one(self, model: ModelHandle, text: str) -> Output:
        """Ask the model about one input."""
        from fondasi.models.prompting import ask
        from fondasi.types import GenerateOptions

        c = self.candidate
        options = GenerateOptions(
            max_tokens=c.max_tokens, stop=c.stop, seed=self.context.config.seed
        )
        template = self.template()
        if template is None and not c.shots:
            completion = model.generate(text, options=options)
            return Output(
                completion.text.strip(), completion.usage.total_tokens, completion.cost_usd
            )
        answer = ask(
            model,
            template or _plain(),
            input=text,
            shots=c.shots,
            select=c.select,
            seed=self.context.config.seed,
            examples=self.pool or None,
            options=options,
        )
        usage = answer.completion.usage
        value = answer.value if not isinstance(answer.value, str) else answer.value.strip()
        return Output(value, usage.total_tokens, answer.completion.cost_usd, answer.error)


def _plain() -> PromptTemplate:
    """Few-shot without a template: examples as input/answer turns, then the input."""
    from fondasi.prompts.template import PromptTemplate

    return PromptTemplate.model_validate({"name": "eval-plain", "description": "input as is"})


@register
class Generation(Task):
    """Free text compared with a reference: translation, summaries, short answers."""

    name = "generation"
    summary = "text against a reference (chrF, BLEU, ROUGE-L, exact match, judge)"
    needed = ("input", "reference")
    input_field = "input"
    reference_field = "reference"
    default_metrics = ("chrf", "bleu", "rouge_l", "exact_match")

    def prepare(self, example: Example) -> Example:
        text, reference = example.fields["input"], example.fields["reference"]
        if not isinstance(text, str) or not text.strip():
            raise BadInputError(f"example {example.index + 1}: input is empty")
        return type(example)(
            example.index, example.id, {"input": text, "reference": str(reference)}
        )

    def predictor(self, candidate: CandidateSpec, context: Context) -> Predictor:
        return PromptPredictor(candidate, context, "input")

    def example_score(self, reference: Any, output: Any) -> float:
        import sacrebleu

        if output is None:
            return 0.0
        return float(sacrebleu.sentence_chrf(str(output), [str(reference)]).score) / 100


class ExtractPredictor(PromptPredictor):
    """Asks for JSON; without a template, for the keys the references use."""

    def __init__(self, candidate: CandidateSpec, context: Context, keys: list[str]) -> None:
        super().__init__(candidate, context, "input")
        self.keys = keys

    def template(self) -> str | PromptTemplate | None:
        from fondasi.prompts.template import PromptTemplate

        if self.candidate.template:
            return self.candidate.template
        schema = {"type": "object", "properties": {key: {} for key in self.keys}}
        return PromptTemplate.model_validate(
            {
                "name": "eval-extract",
                "description": "extract the reference's fields as JSON",
                "instruction": "Extract these fields from the text as one JSON object with the "
                "keys {{ fields | join(', ') }}. Use null for a field the text does not give.",
                "input": "Text: {{ input }}\nJSON:",
                "output": {"format": "json", "schema": schema},
            }
        )


@register
class Extraction(Task):
    """Structured fields from text, as a JSON object."""

    name = "extraction"
    summary = "JSON fields from text (JSON validity, field-level F1)"
    needed = ("input", "reference")
    input_field = "input"
    reference_field = "reference"
    default_metrics = ("field_f1", "json_valid", "field_precision", "field_recall", "exact_match")

    def prepare(self, example: Example) -> Example:
        reference = example.fields["reference"]
        if isinstance(reference, str):
            try:
                reference = json.loads(reference)
            except json.JSONDecodeError:
                reference = None
        if not isinstance(reference, dict):
            raise BadInputError(f"example {example.index + 1}: the reference must be a JSON object")
        fields = {"input": str(example.fields["input"]), "reference": reference}
        return type(example)(example.index, example.id, fields)

    def predictor(self, candidate: CandidateSpec, context: Context) -> Predictor:
        keys: dict[str, None] = {}
        for example in [*context.train, *context.test]:
            keys.update(dict.fromkeys(example.fields["reference"]))
        return ExtractPredictor(candidate, context, list(keys))

    def example_score(self, reference: Any, output: Any) -> float:
        ref, out = field_items(reference), field_items(output)
        if not ref and not out:
            return 1.0
        return 2 * len(ref & out) / (len(ref) + len(out))
