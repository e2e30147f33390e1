"""Tune tasks, registered by name: classification, causal-lm and seq2seq.

A task is a backends ``TaskModel`` (the transformers class and head, and the backend that
serves the tuned model) plus how it trains: its labels, how rows become token ids, the
collator that pads a batch, the dev metrics that pick the best checkpoint, the classical
baseline it is measured against, and what a teacher gives it when distilling. Another
package adds one through the ``fondasi.tune_tasks`` entry-point group, naming its ``Task``
class; ``fondasi.backends.tuned`` reads the same group, so the models it makes load back
too. (A module that calls ``register_task`` works as well.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from fondasi.backends.tuned import (
    TASK_MODELS,
    CausalLanguageModel,
    Seq2SeqLanguageModel,
    SequenceClassification,
    TaskModel,
    generation_task,
)
from fondasi.extras import require
from fondasi.registry import Registry, instances_of
from fondasi.tune import encode

Rows = list[dict[str, Any]]


class Task(TaskModel):
    """One kind of tuning; a subclass sets the class attributes and overrides hooks."""

    peft_type: ClassVar[str]  # peft's TaskType for adapters on this task's model
    best: ClassVar[str] = "loss"  # the dev metric that picks the best checkpoint
    higher_is_better: ClassVar[bool] = False
    exports_onnx: ClassVar[bool] = False  # `tune export --onnx` traces it without a KV cache
    stratify: ClassVar[str | None] = None  # the field whose values keep their share in a split
    fields: ClassVar[tuple[str, ...]] = ("prompt", "completion")  # what every row must hold
    chat_rows: ClassVar[bool] = False  # rows may be {"messages": [...]} conversations instead

    def for_base(self, folder: Path) -> Task:
        """The task this one becomes on the base model in ``folder`` when none was asked for."""
        return self

    def labels(self, train: Rows, dev: Rows) -> list[str]:
        """The label set the model learns; none for generation."""
        return []

    def encode(self, rows: Rows, tokenizer: Any, labels: list[str], limit: int) -> Any:
        """A ``datasets.Dataset`` of token ids (and labels) for ``rows``."""
        raise NotImplementedError

    def collator(self, tokenizer: Any, model: Any) -> Any:
        """What pads a batch of encoded rows."""
        raise NotImplementedError

    def compute_metrics(self) -> Callable[[Any], dict[str, float]] | None:
        """The Trainer's dev metrics besides the loss; None: the loss alone."""
        return None

    def baseline(self, train: Rows, dev: Rows) -> dict[str, float] | None:
        """A classical model's dev scores on the same split; None where there is none."""
        return None

    def trained_with_adapter(self, model: Any) -> list[str] | None:
        """Layers that train whole beside an adapter (peft's ``modules_to_save``)."""
        return None

    def teach(self, teacher: Any, rows: Rows, labels: list[str], advance: Any) -> Rows:
        """``rows`` with what ``teacher`` says about them, for the distill method."""
        raise NotImplementedError


TASKS: Registry[Task] = Registry(
    "tune task", "fondasi.tune_tasks", builtins=(__name__,), adopt=instances_of(Task, "tune task")
)
T = TypeVar("T", bound=Task)


def register_task(kind: type[T]) -> type[T]:
    """Make a task from another package available to ``fondasi tune``, and its models
    loadable as ``tuned:`` folders."""
    made = kind()
    TASKS.register(made.name, made)
    TASK_MODELS.register(made.name, made)
    return kind


def _builtin(kind: type[T]) -> type[T]:
    # backends.tuned registers how fondasi's own tasks load; only the training side is new.
    TASKS.register(kind.name, kind())
    return kind


def task(name: str) -> Task:
    """The task called ``name``; an unknown one lists the close ones."""
    return TASKS.get(name)


@_builtin
class Classification(SequenceClassification, Task):
    """A label per text: cross-entropy over a new head, accuracy and macro-F1 on dev."""

    peft_type = "SEQ_CLS"
    best = "accuracy"
    higher_is_better = True
    exports_onnx = True
    stratify = "label"
    fields = ("text", "label")

    def labels(self, train: Rows, dev: Rows) -> list[str]:
        from fondasi.tune.data import labels_of

        return labels_of(train, dev)

    def encode(self, rows: Rows, tokenizer: Any, labels: list[str], limit: int) -> Any:
        return encode.classification(rows, tokenizer, labels, limit)

    def collator(self, tokenizer: Any, model: Any) -> Any:
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def compute_metrics(self) -> Callable[[Any], dict[str, float]] | None:
        return accuracy_and_f1

    def baseline(self, train: Rows, dev: Rows) -> dict[str, float] | None:
        from fondasi.tune.report import baseline

        return baseline(train, dev)

    def trained_with_adapter(self, model: Any) -> list[str] | None:
        return head_inputs(model)

    def teach(self, teacher: Any, rows: Rows, labels: list[str], advance: Any) -> Rows:
        """The teacher's probabilities over the labels, learned beside the true ones."""
        from fondasi.tune.distill import soft_labels

        return soft_labels(teacher, rows, labels, advance)


def accuracy_and_f1(prediction: Any) -> dict[str, float]:
    """Dev accuracy and macro-F1 of a classifier's logits."""
    require("sklearn", "local", "scoring a tuned classifier")  # the extra, named
    from sklearn.metrics import accuracy_score, f1_score

    guesses = prediction.predictions.argmax(axis=-1)
    truth = prediction.label_ids
    return {
        "accuracy": float(accuracy_score(truth, guesses)),
        "macro_f1": float(f1_score(truth, guesses, average="macro", zero_division=0)),
    }


def head_inputs(model: Any) -> list[str] | None:
    """Layers between the encoder and a new classifier head that must train with it.

    BERT-style classifiers read the [CLS] vector through a pooler layer. In a sentence-
    embedding checkpoint (all-MiniLM-L6-v2) that layer was never trained for the task, and
    frozen it caps what adapters on attention can reach: on the bundled data LoRA on
    ``query,value`` went from 0.61 to 0.80 dev accuracy with the pooler training whole.
    """
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    return ["pooler"] if "pooler" in names else None


class Generation(Task):
    """Answers after prompts: only the answer's tokens are learned; the dev loss decides."""

    chat_rows = True

    def teach(self, teacher: Any, rows: Rows, labels: list[str], advance: Any) -> Rows:
        """The teacher's own answers to the prompts in place of the references."""
        from fondasi.tune.distill import answers

        return answers(teacher, rows, advance)


@_builtin
class CausalLM(CausalLanguageModel, Generation):
    """Prompt and answer as one sequence for a decoder-only model."""

    peft_type = "CAUSAL_LM"

    def for_base(self, folder: Path) -> Task:
        """Prompt/completion rows on an encoder-decoder (T5, BART) are learned as seq2seq."""
        return TASKS.get(generation_task(folder))

    def encode(self, rows: Rows, tokenizer: Any, labels: list[str], limit: int) -> Any:
        return encode.causal(rows, tokenizer, limit)

    def collator(self, tokenizer: Any, model: Any) -> Any:
        from transformers import DataCollatorForSeq2Seq

        return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=encode.IGNORE)


@_builtin
class Seq2Seq(Seq2SeqLanguageModel, Generation):
    """The prompt into the encoder, the answer as the decoder's target."""

    peft_type = "SEQ_2_SEQ_LM"

    def encode(self, rows: Rows, tokenizer: Any, labels: list[str], limit: int) -> Any:
        return encode.seq2seq(rows, tokenizer, limit)

    def collator(self, tokenizer: Any, model: Any) -> Any:
        from transformers import DataCollatorForSeq2Seq

        # With the model, the collator also builds the decoder's shifted inputs.
        return DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=encode.IGNORE)
