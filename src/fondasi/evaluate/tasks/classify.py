"""Text classification: a label per text, by whatever route the model offers.

- a classifier with its own labels (a tuned model, the intent classifier) answers directly;
- an embedding model compares texts with the label descriptions (zero-shot) or with class
  centres of ``shots`` train examples per the selector (few-shot); with ``head`` (or
  ``select: knn``) a head fitted on the train split's embeddings reads the label instead;
- a local language model ranks labels by log-probability after a template;
- a hosted model (or one that cannot score, or a candidate with ``by: generation``) answers
  through ``fondasi.ask`` and its answer is read as a label; the call's tokens and cost are
  kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fondasi.backends.base import Capability
from fondasi.errors import BadInputError
from fondasi.evaluate import metrics
from fondasi.evaluate.cache import cache_key
from fondasi.evaluate.tasks import Context, Output, Predictor, Task, register

if TYPE_CHECKING:
    from fondasi.evaluate.config import CandidateSpec
    from fondasi.evaluate.datasets import Example
    from fondasi.models.contract import ModelHandle


def template_fingerprint(name: str | None, home: Any) -> Any:
    """A template's whole content, so editing it invalidates cached predictions."""
    if name is None:
        return None
    from fondasi.prompts.template import PromptTemplate

    return PromptTemplate.load(name, home).model_dump(mode="json")


def shot_pool(context: Context, input_field: str, output_field: str) -> list[dict[str, str]]:
    """The train split as template examples (``input``/``output``)."""
    return [
        {"input": str(e.fields[input_field]), "output": _text(e.fields[output_field])}
        for e in context.train
    ]


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        import json

        return json.dumps(value, ensure_ascii=False)
    return str(value)


class ClassifyPredictor(Predictor):
    """Chooses the route from the model's capabilities at setup."""

    def __init__(self, candidate: CandidateSpec, context: Context) -> None:
        self.candidate = candidate
        self.context = context
        self.mode = ""
        self.pool = shot_pool(context, "text", "label")
        self.fitted: Any = None  # the head over the train split's embeddings, once fitted

    def fingerprint(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "template": template_fingerprint(c.template, self.context.home),
            "shots": c.shots,
            "select": c.select,
            "calibrate": c.calibrate,
            "by": c.by,
            "labels": self.context.labels,
            "descriptions": self.context.descriptions,
            "head": c.head,
            "pool": cache_key(self.pool) if c.shots or c.head else None,
            "seed": self.context.config.seed,
        }

    def setup(self, model: ModelHandle) -> None:
        c = self.candidate
        scores = model.can(Capability.SCORE) and not model.remote
        if c.by == "generation" and not model.can(Capability.GENERATE):
            raise BadInputError(f"{model.id} does not generate text: drop `by: generation`")
        if c.by == "logprob" and not scores:
            raise BadInputError(
                f"{model.id} cannot score labels by log-probability (a local language model "
                "can): use `by: generation`"
            )
        if c.head and not model.can(Capability.EMBED):
            raise BadInputError(
                f"`head: {c.head}` fits on embeddings and {model.id} does not embed text: "
                "drop head, or use an embedding model"
            )
        if c.by == "generation":
            self.mode = "ask"
            self.per_example = True
        elif model.can(Capability.EMBED) and not c.template:
            self.mode = "embed"
            if (c.shots or c.head) and not self.pool:
                raise BadInputError("few-shot and heads need train examples")
        elif model.can(Capability.CLASSIFY) and not c.template and not c.shots:
            self.mode = "own"
        elif scores:
            self.mode = "logprob"
        elif model.can(Capability.GENERATE):
            self.mode = "ask"
            self.per_example = True
        else:
            raise BadInputError(f"{model.id} cannot classify text")

    def _shots(self) -> list[dict[str, str]]:
        """The embedding route's examples: k per the selector, balanced by default."""
        from fondasi.prompts.select import Pick, selector

        pick = Pick(query="", k=self.candidate.shots, seed=self.context.config.seed)
        chosen = selector(self.candidate.select or "balanced").choose(self.pool, pick)
        return [{"text": self.pool[i]["input"], "label": self.pool[i]["output"]} for i in chosen]

    def predict(self, model: ModelHandle, examples: Sequence[Example]) -> list[Output]:
        texts = [str(example.fields["text"]) for example in examples]
        c, labels = self.candidate, self.context.labels
        if self.mode == "own":
            rankings = model.classify(texts, None)
        elif self.mode == "embed" and (c.head or c.select == "knn"):
            return [Output(label) for label in self._by_head(model, texts)]
        elif self.mode == "embed":
            wanted: Any = {name: self.context.descriptions.get(name, name) for name in labels}
            if not self.context.descriptions:
                wanted = labels
            shots = self._shots() if c.shots else None
            rankings = model.classify(texts, wanted, shots=shots)
        elif self.mode == "logprob":
            rankings = model.classify(
                texts,
                labels,
                shots=[{"text": s["input"], "label": s["output"]} for s in self.pool]
                if c.shots
                else None,
                template=c.template,
                k=c.shots if c.shots else None,
                select=c.select,
                calibrate=c.calibrate,
            )
        else:
            return [self._ask(model, text) for text in texts]
        return [Output(ranking[0].label if ranking else None) for ranking in rankings]

    def _by_head(self, model: ModelHandle, texts: list[str]) -> list[str]:
        """Labels from a head fitted on the train split's embeddings: ``head``, or for
        ``select: knn`` a vote of the ``shots`` nearest train examples."""
        from fondasi.backends import heads

        # E5 embeds classification text as a query; other embedders ignore the purpose.
        if self.fitted is None:
            train = [shot["input"] for shot in self.pool]
            self.fitted = heads.fit(
                self.candidate.head or "knn",
                heads.as_matrix(model.embed(train, purpose="query")),
                train,
                [shot["output"] for shot in self.pool],
                seed=self.context.config.seed,
                k=self.candidate.shots or None,
            )
        vectors = heads.as_matrix(model.embed(texts, purpose="query"))
        chosen = heads.predict(self.fitted, vectors, texts).argmax(axis=1)
        return [self.fitted.labels[i] for i in chosen]

    def _ask(self, model: ModelHandle, text: str) -> Output:
        from fondasi.models.classifying import DEFAULT_CLASSIFY_TEMPLATE
        from fondasi.models.prompting import ask
        from fondasi.types import GenerateOptions

        c = self.candidate
        answer = ask(
            model,
            c.template or DEFAULT_CLASSIFY_TEMPLATE,
            input=text,
            labels=self.context.labels,
            shots=c.shots,
            select=c.select,
            seed=self.context.config.seed,
            examples=self.pool if c.shots else None,
            options=GenerateOptions(
                max_tokens=min(c.max_tokens, 16), seed=self.context.config.seed
            ),
        )
        usage = answer.completion.usage
        note = None if answer.value is not None else f"unreadable answer: {answer.text[:80]!r}"
        return Output(answer.value, usage.total_tokens, answer.completion.cost_usd, note)


@register
class Classification(Task):
    """A label per text."""

    name = "classification"
    summary = "one label per text (accuracy, macro-F1, per-class, confusion matrix)"
    needed = ("text", "label")
    input_field = "text"
    reference_field = "label"
    default_metrics = ("accuracy", "macro_f1")

    def prepare(self, example: Example) -> Example:
        text, label = example.fields["text"], example.fields["label"]
        if not isinstance(text, str) or not text.strip():
            raise BadInputError(f"example {example.index + 1}: text is empty")
        if label is None or str(label).strip() == "":
            raise BadInputError(f"example {example.index + 1}: label is empty")
        return type(example)(example.index, example.id, {"text": text, "label": str(label)})

    def predictor(self, candidate: CandidateSpec, context: Context) -> Predictor:
        return ClassifyPredictor(candidate, context)

    def example_score(self, reference: Any, output: Any) -> float:
        return float(output is not None and str(output) == str(reference))

    def details(self, references: Sequence[Any], outputs: Sequence[Any]) -> dict[str, Any]:
        refs = [str(r) for r in references]
        predicted = {str(o) for o in outputs if o is not None}
        never = sorted(set(refs) - predicted)
        return {
            "per_class": metrics.per_class(references, outputs),
            "confusion": metrics.confusion(references, outputs),
            "never_predicted": never,
            "outside_labels": sorted(predicted - set(refs)),
        }
