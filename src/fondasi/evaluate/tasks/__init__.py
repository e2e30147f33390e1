"""Evaluation tasks, registered by name: the fields they need and how a candidate predicts.

A task knows which example fields it reads, its default metrics (the first is the
headline), how to score one example for the "worst examples" view, and how to build a
``Predictor`` for a candidate. A predictor turns a batch of examples into outputs with one
model; the runner times, caches and parallelises it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from fondasi.registry import Registry, instances_of

if TYPE_CHECKING:
    from fondasi.evaluate.config import CandidateSpec, EvalConfig
    from fondasi.evaluate.datasets import Example
    from fondasi.models.contract import ModelHandle


@dataclass
class Context:
    """What every predictor may read: the run's config, labels, train split and corpus."""

    config: EvalConfig
    labels: list[str] = field(default_factory=list)
    descriptions: dict[str, str] = field(default_factory=dict)
    train: list[Example] = field(default_factory=list)
    test: list[Example] = field(default_factory=list)
    corpus: list[Example] = field(default_factory=list)
    data_folder: str = "."
    home: Any = None  # FONDASI_HOME, where user templates live


@dataclass
class Output:
    """One prediction: what the model answered, and what the call used when known."""

    value: Any
    tokens: int | None = None
    cost_usd: float | None = None
    note: str | None = None  # e.g. why an answer could not be read


class Predictor:
    """A candidate's way of predicting; ``setup`` once per model, then batches."""

    per_example: bool = False  # one call per example (prompted hosted models)

    def fingerprint(self) -> dict[str, Any]:
        """Everything besides the model and the example that decides a prediction."""
        return {}

    def setup(self, model: ModelHandle) -> None:
        """Work done once per model (embedding a corpus, choosing a mode)."""

    def predict(self, model: ModelHandle, examples: Sequence[Example]) -> list[Output]:
        """Outputs for a batch, in order."""
        raise NotImplementedError


class Task:
    """One kind of evaluation."""

    name: ClassVar[str]
    summary: ClassVar[str]
    needed: ClassVar[tuple[str, ...]]
    optional: ClassVar[tuple[str, ...]] = ()
    input_field: ClassVar[str]
    reference_field: ClassVar[str]
    default_metrics: ClassVar[tuple[str, ...]]
    corpus_fields: ClassVar[tuple[str, ...]] = ()

    def prepare(self, example: Example) -> Example:
        """Check and normalise one example's fields (parse JSON references ...)."""
        return example

    def predictor(self, candidate: CandidateSpec, context: Context) -> Predictor:
        """How ``candidate`` predicts for this task."""
        raise NotImplementedError

    def example_score(self, reference: Any, output: Any) -> float:
        """How good one prediction is, 0–1, for ranking examples."""
        raise NotImplementedError

    def details(self, references: Sequence[Any], outputs: Sequence[Any]) -> dict[str, Any]:
        """Extra views of a candidate's results (per class, confusion matrix)."""
        return {}

    def shown(self, value: Any) -> str:
        """A prediction or reference as text for the report."""
        if value is None:
            return ""
        if isinstance(value, list):
            return ", ".join(str(item) for item in value[:5])
        if isinstance(value, dict):
            import json

            return json.dumps(value, ensure_ascii=False)
        return str(value)


# Each built-in module registers its tasks on import.
TASKS: Registry[Task] = Registry(
    "task",
    group="fondasi.eval_tasks",
    builtins=(
        "fondasi.evaluate.tasks.classify",
        "fondasi.evaluate.tasks.extract",
        "fondasi.evaluate.tasks.rank",
        "fondasi.evaluate.tasks.speech",
        "fondasi.evaluate.tasks.text",
        "fondasi.evaluate.tasks.tools",
    ),
    adopt=instances_of(Task, "task"),
)
T = TypeVar("T", bound=type[Task])


def register(kind: T) -> T:
    """Make a task available by its name."""
    TASKS.register(kind.name, kind())
    return kind


def get_task(name: str) -> Task:
    """The task called ``name``; an unknown name lists the tasks."""
    return TASKS.get(name)
