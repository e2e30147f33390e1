"""Knowledge distillation: what a teacher model says about the training rows, and the loss
that makes a student say the same.

Classifiers: the teacher's probabilities over the student's labels (any model that
classifies: a tuned classifier, an embedding model zero-shot, a language model through a
label template), learned with the softened KL term of Hinton et al. (2015) beside the
true labels. Language models: the teacher's own answers to the training prompts replace
the references (sequence-level distillation, Kim and Rush 2016).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from transformers import Trainer

from fondasi.errors import BadInputError, FondasiError

if TYPE_CHECKING:
    from fondasi.settings import Settings

from fondasi.tune import tasks
from fondasi.tune.encode import SOFT

BATCH = 32
ANSWER_TOKENS = 128  # longest teacher answer learned from


def teach(
    rows: list[dict[str, Any]], task: str, labels: list[str], teacher: str, settings: Settings
) -> list[dict[str, Any]]:
    """``rows`` with the teacher's probabilities (classification) or answers (generation)."""
    from fondasi.models.load import load

    try:
        model = load(teacher, settings)
    except FondasiError as exc:
        raise BadInputError(f"--teacher {teacher}: {exc}") from None
    with _bar(f"teacher {teacher}", len(rows)) as (bar, job):
        return tasks.task(task).teach(model, rows, labels, lambda n: bar.advance(job, n))


def _bar(what: str, total: int) -> Any:
    from contextlib import contextmanager

    @contextmanager
    def running() -> Any:
        bar = Progress(
            TextColumn(f"[bold]{what}[/]"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} rows"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        with bar:
            yield bar, bar.add_task("teach", total=total)

    return running()


def soft_labels(
    model: Any, rows: list[dict[str, Any]], labels: list[str], advance: Any
) -> list[dict[str, Any]]:
    """``rows`` with the teacher's probabilities over ``labels``, renormalised."""
    taught = []
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        try:
            rankings = model.classify([str(row["text"]) for row in chunk], labels=labels)
        except FondasiError as exc:
            raise BadInputError(f"the teacher cannot classify into {labels}: {exc}") from None
        for row, ranking in zip(chunk, rankings, strict=True):
            scores = {label.label: label.score for label in ranking}
            missing = [name for name in labels if name not in scores]
            if missing:
                raise BadInputError(
                    f"the teacher gives no score for {', '.join(missing)}; its labels are "
                    f"{', '.join(sorted(scores))}"
                )
            total = sum(scores[name] for name in labels) or 1.0
            taught.append({**row, SOFT: [scores[name] / total for name in labels]})
        advance(len(chunk))
    return taught


def answers(model: Any, rows: list[dict[str, Any]], advance: Any) -> list[dict[str, Any]]:
    """``rows`` with the teacher's answers to their prompts as the completions."""
    from fondasi.tune.encode import turns

    taught = []
    for row in rows:
        context, _ = turns(row)
        # A single question goes as text, so a teacher without a chat template answers too.
        prompt: Any = context[0]["content"] if len(context) == 1 else context
        try:
            answer = model.generate(prompt, max_tokens=ANSWER_TOKENS, temperature=0.0).text
        except FondasiError as exc:
            raise BadInputError(f"the teacher cannot answer the training prompts: {exc}") from None
        if answer.strip():  # an empty answer teaches nothing; the reference stays
            taught.append(_with_answer(row, answer.strip()))
        else:
            taught.append(row)
        advance(1)
    return taught


def _with_answer(row: dict[str, Any], answer: str) -> dict[str, Any]:
    if "messages" in row:
        messages = [*row["messages"][:-1], {"role": "assistant", "content": answer}]
        return {**row, "messages": messages}
    return {**row, "completion": answer}


def distillation_loss(
    student_logits: Any, teacher_probs: Any, labels: Any, temperature: float, soft_weight: float
) -> Any:
    """``w T^2 KL(teacher_T || student_T) + (1 - w) CE(student, labels)`` (Hinton et al.)."""
    import torch.nn.functional as F

    # Teacher probabilities softened the same way as the student's logits: p^(1/T), renormalised.
    teacher_logits = teacher_probs.clamp_min(1e-8).log() / temperature
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=-1),
        F.log_softmax(teacher_logits, dim=-1),
        reduction="batchmean",
        log_target=True,
    ) * (temperature**2)
    hard = F.cross_entropy(student_logits, labels)
    return soft_weight * soft + (1 - soft_weight) * hard


class DistillTrainer(Trainer):
    """The Trainer with the distillation loss wherever a batch carries teacher probabilities."""

    def __init__(self, *args: Any, temperature: float, soft_weight: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.temperature = temperature
        self.soft_weight = soft_weight

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        """Distillation loss on taught batches; the model's own loss on the rest (dev)."""
        soft = inputs.pop(SOFT, None)
        if soft is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        outputs = model(**inputs)
        loss = distillation_loss(
            outputs.logits, soft, inputs["labels"], self.temperature, self.soft_weight
        )
        return (loss, outputs) if return_outputs else loss
