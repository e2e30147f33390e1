"""Classification on any model: its own labels, embedding prototypes, or a label prompt.

One path for every kind of model, chosen by what the model can do: a classifier uses its
own head, an embedding model compares with label descriptions or class prototypes of
labelled shots, a language model reads a label template (by log-probability where it can
score, by its written answer otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from fondasi.backends.base import Capability, Classifier, Embedder, Scorer
from fondasi.backends.classify import label_texts
from fondasi.errors import BadInputError
from fondasi.models.contract import CapabilityError, Labels
from fondasi.prompts.classify import (
    PromptClassifier,
    as_examples,
    by_generation,
    by_logprob,
    by_prototypes,
)
from fondasi.prompts.template import PromptTemplate
from fondasi.types import Label

if TYPE_CHECKING:
    from fondasi.models.handle import Model

# English-first: the small bundled models follow English instructions best.
DEFAULT_CLASSIFY_TEMPLATE = "classify-en"


def classify(
    model: Model,
    texts: str | Sequence[str],
    labels: Labels | None,
    shots: Sequence[Mapping[str, str]] | None,
    template: str | PromptTemplate | None,
    k: int | None,
    select: str | None,
    calibrate: bool,
) -> Any:
    """Ranked labels per text (a single text gives a single ranking); see ``Model.classify``."""
    batch = [texts] if isinstance(texts, str) else list(texts)
    if not batch or any(not isinstance(text, str) or not text.strip() for text in batch):
        raise BadInputError("every text to classify must be a non-empty string")
    if shots is None and template is None and model.can(Capability.CLASSIFY):
        own = cast(Classifier, model.backend)
        ranked: list[list[Label]] = own.classify(batch, labels)
    elif model.can(Capability.EMBED) and template is None:
        names = label_texts(labels)[0] if labels is not None else []
        examples = as_examples(shots or [], names)
        ranked = by_prototypes(
            cast(Embedder, model.backend), batch, examples, labels or labels_of(examples)
        )
    elif model.can(Capability.GENERATE):
        ranked = by_prompt(model, batch, labels, shots, template, k, select, calibrate)
    else:
        can = ", ".join(sorted(c.value for c in model.capabilities)) or "nothing"
        raise CapabilityError(f"{model.id} cannot classify text; it can: {can}")
    return ranked[0] if isinstance(texts, str) else ranked


def by_prompt(
    model: Model,
    texts: list[str],
    labels: Labels | None,
    shots: Sequence[Mapping[str, str]] | None,
    template: str | PromptTemplate | None,
    k: int | None,
    select: str | None,
    calibrate: bool,
) -> list[list[Label]]:
    """A language model picks labels through a label template."""
    from fondasi.models.load import embedder_for

    home = model.settings.home if model.settings else None
    chosen = template if isinstance(template, PromptTemplate) else None
    chosen = chosen or PromptTemplate.load(str(template or DEFAULT_CLASSIFY_TEMPLATE), home)
    names = list(labels) if labels is not None else chosen.label_names
    examples = as_examples(shots, names) if shots is not None else None
    knn = (select or chosen.fewshot.select) == "knn"
    embedder = embedder_for(model.settings) if knn else None
    classifier = PromptClassifier(
        chosen,
        names,
        examples=examples,
        shots=k,
        select=select,
        embed=embedder,
        budget=model.budget(reserve=32),
        chat=model.can(Capability.CHAT),
    )
    if model.can(Capability.SCORE):
        return by_logprob(cast(Scorer, model.backend), classifier, texts, calibrate)
    return by_generation(
        lambda rendered: model.generate(rendered, max_tokens=16).text, classifier, texts
    )


def labels_of(examples: Sequence[Mapping[str, str]]) -> list[str]:
    """The labels the examples use, in order of first appearance."""
    names = list(dict.fromkeys(example["output"] for example in examples))
    if len(names) < 2:
        raise BadInputError("give labels, or shots covering at least two labels")
    return names
