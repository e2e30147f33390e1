"""Classify with models that were never trained to: by prompt, log-probability or prototypes.

- ``by_logprob``: a local language model reads the rendered prompt and each label is
  scored by its log-probability as the answer; no text is generated, so even a 135M
  model gives a full ranking. Contextual calibration (Zhao et al., 2021) subtracts what
  the model would answer for a content-free input, which removes its bias towards
  whichever label it likes regardless of the text.
- ``by_generation``: any generating model (hosted APIs too) answers, and the answer is
  read as one label of the set.
- ``by_prototypes``: an embedding model compares a text with the mean embedding of each
  label's examples (few-shot) and its description.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from fondasi.errors import BadInputError
from fondasi.prompts.render import Budget, Rendered, render
from fondasi.prompts.select import Embed
from fondasi.prompts.template import PromptTemplate
from fondasi.types import Label, Message

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# What a text is for, to embedders that embed queries and passages apart (e5); the same
# alias as ``fondasi.backends.base.Purpose``, declared here because prompts sit below backends.
Purpose = Literal["query", "passage"] | None


class ContinuationScorer(Protocol):
    """What ``by_logprob`` needs: a local language model's ``Scorer`` backend meets it."""

    def score(self, prompt: str | Sequence[Message], continuations: Sequence[str]) -> list[float]:
        """Summed natural-log probability of each continuation's tokens after ``prompt``."""


class TextEmbedder(Protocol):
    """What ``by_prototypes`` needs: any ``Embedder`` backend meets it."""

    def embed(self, texts: Sequence[str], purpose: Purpose = None) -> npt.NDArray[np.float32]:
        """One L2-normalised float32 row per text, in input order."""


# Stand-ins for "no text at all", averaged: the model's answer to them is its bias.
CONTENT_FREE = ("N/A", "", "[MASK]")
PROTOTYPE_TEMPERATURE = 0.05


def as_examples(shots: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> list[dict[str, str]]:
    """Labelled rows (``text``/``label`` or ``input``/``output``) as template examples."""
    examples: list[dict[str, str]] = []
    for number, row in enumerate(shots, 1):
        text = row.get("text", row.get("input")) if isinstance(row, Mapping) else None
        label = row.get("label", row.get("output")) if isinstance(row, Mapping) else None
        if not isinstance(text, str) or not isinstance(label, str):
            raise BadInputError(f"shot {number}: needs string fields 'text' and 'label'")
        if labels and label not in labels:
            raise BadInputError(f"shot {number}: label {label!r} is not one of {', '.join(labels)}")
        examples.append({"input": text, "output": label})
    return examples


def _softmax(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(score - top) for score in scores]
    total = sum(exps)
    return [value / total for value in exps]


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(value - top) for value in values))


def _ranking(names: Sequence[str], probabilities: Sequence[float]) -> list[Label]:
    pairs = sorted(zip(names, probabilities, strict=True), key=lambda pair: -pair[1])
    return [Label(label=name, score=float(score)) for name, score in pairs]


class PromptClassifier:
    """Renders one prompt per text with a label template; shared by the strategies below."""

    def __init__(
        self,
        template: PromptTemplate,
        labels: Sequence[str] | None,
        *,
        examples: Sequence[Mapping[str, str]] | None = None,
        shots: int | None = None,
        select: str | None = None,
        embed: Embed | None = None,
        budget: Budget | None = None,
        chat: bool = True,
    ) -> None:
        if "input" not in template.variables or len(template.variables) != 1:
            raise BadInputError(f"{template.name}: a classification template takes just 'input'")
        self.template = template
        self.names = list(labels) if labels is not None else template.label_names
        self.examples = examples
        self.shots = shots
        self.select = select
        self.embed = embed
        self.budget = budget
        self.chat = chat

    def render(self, text: str) -> Rendered:
        """The prompt for one text."""
        return render(
            self.template,
            {"input": text},
            labels=self.names,
            shots=self.shots,
            select=self.select,
            examples=self.examples,
            embed=self.embed,
            budget=self.budget,
            chat=self.chat,
        )


def by_logprob(
    scorer: ContinuationScorer,
    classifier: PromptClassifier,
    texts: Sequence[str],
    calibrate: bool = True,
) -> list[list[Label]]:
    """Rank labels by the model's log-probability of each as the answer."""
    bias: dict[tuple[tuple[str, str], ...], list[float]] = {}

    def label_scores(rendered: Rendered) -> list[float]:
        prompt = rendered.prompt(classifier.chat)
        spaced = not classifier.chat and not rendered.text[-1:].isspace()
        forms = [
            [
                ("" if not spaced else " ") + form
                for form in dict.fromkeys((name, name.capitalize()))
            ]
            for name in classifier.names
        ]
        flat = scorer.score(prompt, [form for group in forms for form in group])
        scores, at = [], 0
        # A label is any of its surface forms: its probability is theirs summed.
        for group in forms:
            scores.append(_logsumexp(flat[at : at + len(group)]))
            at += len(group)
        return scores

    rankings = []
    for text in texts:
        rendered = classifier.render(text)
        scores = label_scores(rendered)
        if calibrate:
            key = tuple(sorted((k, v) for example in rendered.examples for k, v in example.items()))
            if key not in bias:
                neutral = [
                    label_scores(_with_examples(classifier, rendered, blank))
                    for blank in CONTENT_FREE
                ]
                bias[key] = [sum(column) / len(column) for column in zip(*neutral, strict=True)]
            scores = [score - prior for score, prior in zip(scores, bias[key], strict=True)]
        rankings.append(_ranking(classifier.names, _softmax(scores)))
    return rankings


def _with_examples(classifier: PromptClassifier, rendered: Rendered, text: str) -> Rendered:
    """The same prompt and examples around a different input."""
    return render(
        classifier.template,
        {"input": text},
        labels=classifier.names,
        examples=list(rendered.examples),
        shots=len(rendered.examples),
        select="fixed",
        chat=classifier.chat,
    )


def by_generation(
    generate: Callable[[Rendered], str], classifier: PromptClassifier, texts: Sequence[str]
) -> list[list[Label]]:
    """Let the model answer and read the label from its text; unreadable answers tie."""
    rankings = []
    for text in texts:
        rendered = classifier.render(text)
        answer = rendered.parse(generate(rendered))
        names = classifier.names
        if answer is None:
            rankings.append([Label(label=name, score=1 / len(names)) for name in names])
            continue
        others = [Label(label=name, score=0.0) for name in names if name != answer]
        rankings.append([Label(label=answer, score=1.0), *others])
    return rankings


def by_prototypes(
    embedder: TextEmbedder,
    texts: Sequence[str],
    examples: Sequence[Mapping[str, str]],
    labels: Sequence[str] | Mapping[str, str],
    purpose: Purpose = None,
) -> list[list[Label]]:
    """Nearest class centre: each label is the mean of its examples (and description)."""
    import numpy as np

    names = list(labels)
    vectors = embedder.embed([example["input"] for example in examples], purpose)
    centres = []
    for name in names:
        rows = [i for i, example in enumerate(examples) if example["output"] == name]
        parts: list[npt.NDArray[np.float32]] = [vectors[rows]] if rows else []
        if isinstance(labels, Mapping):
            parts.append(embedder.embed([labels[name] or name], purpose))
        if not parts:
            raise BadInputError(f"label {name!r} has no examples and no description")
        centre = np.concatenate(parts).mean(axis=0)
        centres.append(centre / np.linalg.norm(centre))
    similarity = embedder.embed(list(texts), purpose) @ np.stack(centres).T
    return [
        _ranking(names, _softmax([float(v) / PROTOTYPE_TEMPERATURE for v in row]))
        for row in similarity
    ]
