"""Filters backed by a model the user has: a sequence classifier or a guard LLM.

A policy names one in a line, ``"classifier:hf:~/models/prompt-guard-86m" = "block"``, or
under a name with options in ``[guard.policies.NAME.models.NAME]``. The model loads through
``fondasi.models.load`` like any other (local folders, GGUF files, catalog ids, hosted
providers), once per process, and the filter is built when the policy is: a missing model is
an error at start-up, not at the first request.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from fondasi.backends.base import Capability
from fondasi.errors import BadInputError
from fondasi.guard.base import Filter, Finding, ScanContext
from fondasi.guard.config import MODEL_ACTIONS, ModelFilterConfig, ModelKind
from fondasi.guard.judges import Judge, judge_for
from fondasi.guard.text import sentences

if TYPE_CHECKING:
    from fondasi.guard.config import PolicyConfig
    from fondasi.models.contract import ModelHandle as Model
    from fondasi.settings import Settings

# Label names that mean "nothing wrong" across published guard classifiers: Prompt Guard's
# BENIGN, ProtectAI's SAFE, LABEL_0 of an unnamed binary head, "non-toxic", "neutral" ...
BENIGN = re.compile(
    r"(safe|benign|legit(imate)?|neutral|normal|clean|ok|none|"
    r"(non|not|no)[-_ ]?(toxic|hate|offensive|injection|harmful|abusive))",
    re.IGNORECASE,
)
BATCH = 16  # windows per classify call: bounded memory on long texts

_LOADED: dict[tuple[str, str], Model] = {}
_LOCK = threading.Lock()


def loaded(ref: str, settings: Settings | None) -> Model:
    """``ref`` loaded once per process and settings home: policies built often share it."""
    from fondasi.models.load import load
    from fondasi.settings import Settings

    settings = settings or Settings.load()
    key = (ref, str(settings.home))
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = load(ref, settings)
        return _LOADED[key]


def windows(text: str, size: int) -> Iterator[tuple[int, int]]:
    """Sentence-aligned spans of at most ``size`` characters that together cover ``text``."""
    start = end = -1
    for s, e in sentences(text, limit=size):
        if start >= 0 and e - start > size:
            yield start, end
            start = -1
        if start < 0:
            start = s
        end = e
    if start >= 0:
        yield start, end


def unsafe_labels(names: Sequence[str], asked: Sequence[str] | None) -> list[str]:
    """The labels whose probability counts: those asked for, or all but the benign ones."""
    if asked:
        unknown = [label for label in asked if label not in names]
        if unknown:
            raise BadInputError(
                f"the classifier has no label {', '.join(map(repr, unknown))}; "
                f"its labels are {', '.join(names)}"
            )
        return list(asked)
    if [n.upper() for n in names] == ["LABEL_0", "LABEL_1"]:
        return [names[1]]  # an unnamed binary head: 1 is the positive (unsafe) class
    return [n for n in names if not BENIGN.fullmatch(n.strip())]


class ModelFilter(Filter):
    """Base of the model-backed kinds; each policy name gets a subclass carrying its spec."""

    kind: ClassVar[ModelKind]
    spec: ClassVar[ModelFilterConfig]
    actions = frozenset(MODEL_ACTIONS)


class ClassifierFilter(ModelFilter):
    """A sequence classifier's unsafe-label probability over each window of the text."""

    kind = "classifier"
    summary = "your sequence classifier (Prompt Guard, ProtectAI DeBERTa, Detoxify-style)"

    def __init__(self, config: PolicyConfig, settings: Settings | None) -> None:
        super().__init__(config, settings)
        self.model = loaded(self.spec.model, settings)
        if not self.model.can(Capability.CLASSIFY) or not self.model.labels:
            raise BadInputError(
                f"{self.spec.model} is not a classifier with its own labels; a classifier "
                "filter needs a *ForSequenceClassification model (guard-llm takes chat models)"
            )
        names = list(self.model.labels)
        self.unsafe = unsafe_labels(names, self.spec.unsafe)
        if not self.unsafe:
            raise BadInputError(
                f"every label of {self.spec.model} looks benign ({', '.join(names)}); "
                "say which count with unsafe = [...]"
            )
        # Softmax heads share one distribution: the unsafe mass is the sum of its labels
        # (Prompt Guard's INJECTION + JAILBREAK). Multi-label heads score each label alone.
        probe = self.model.classify(["ok"])[0]
        self.shared = abs(sum(label.score for label in probe) - 1.0) < 1e-3

    def scan(self, text: str, context: ScanContext) -> list[Finding]:
        """One finding per window whose unsafe score reaches the threshold."""
        spans = list(windows(text, self.spec.window_chars))
        found: list[Finding] = []
        for first in range(0, len(spans), BATCH):
            batch = spans[first : first + BATCH]
            rankings = self.model.classify([text[s:e] for s, e in batch])
            for (s, e), ranking in zip(batch, rankings, strict=True):
                score, label = self._score(ranking)
                if score >= self.min_score:
                    kind = self.spec.type or label.lower()
                    found.append(Finding(kind, s, e, round(score, 4), self.name, label))
        return found

    def _score(self, ranking: Sequence[Any]) -> tuple[float, str]:
        unsafe = [label for label in ranking if label.label in self.unsafe]
        top = max(unsafe, key=lambda label: label.score)
        score = sum(label.score for label in unsafe) if self.shared else top.score
        return min(score, 1.0), str(top.label)


class GuardLLMFilter(ModelFilter):
    """A guard LLM's verdict on the whole text, asked the way the model was trained."""

    kind = "guard-llm"
    summary = "your guard LLM (Llama Guard, ShieldGemma, any chat model asked for JSON)"
    whole_text = True  # a verdict is on the whole answer: a stream is held back

    def __init__(self, config: PolicyConfig, settings: Settings | None) -> None:
        super().__init__(config, settings)
        self.judge: Judge = judge_for(self.spec)
        self.model = loaded(self.spec.model, settings)
        self.judge.check(self.model, self.spec)

    def scan(self, text: str, context: ScanContext) -> list[Finding]:
        """One finding over the whole text when the verdict's score reaches the threshold."""
        if not text.strip():
            return []
        verdict = self.judge.judge(self.model, text, context, self.spec)
        if verdict.score < self.min_score:
            return []
        kind = self.spec.type or (verdict.categories[0] if verdict.categories else "unsafe")
        detail = verdict.note or ",".join(verdict.categories)
        return [Finding(kind, 0, len(text), round(verdict.score, 4), self.name, detail)]


KINDS: dict[str, type[ModelFilter]] = {cls.kind: cls for cls in (ClassifierFilter, GuardLLMFilter)}


def model_filter_class(name: str, spec: ModelFilterConfig) -> type[Filter]:
    """A filter class for the policy name ``name``, carrying its model and options."""
    base = KINDS[spec.kind]
    return type(base.__name__, (base,), {"name": name, "spec": spec})
