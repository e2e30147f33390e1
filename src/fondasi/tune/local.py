"""A local tuning run on the transformers Trainer: load, adapt, train, measure, save.

No training loop of our own: the Trainer does the loop, checkpoints and resumption, and
runs unchanged under ``accelerate launch`` or ``torchrun`` on many GPUs.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from fondasi import __version__
from fondasi.backends.tuned import META, base_folder, load_transformers
from fondasi.errors import BadInputError
from fondasi.extras import require
from fondasi.settings import Settings
from fondasi.tune import data, encode
from fondasi.tune.methods import method
from fondasi.tune.options import TuneOptions
from fondasi.tune.progress import RichProgress
from fondasi.tune.report import baseline, model_card

log = logging.getLogger(__name__)


@dataclass
class TuneResult:
    """What a run produced and measured."""

    out: Path
    base: str
    task: str
    method: str
    trainable: int
    total: int
    seconds: float
    peak_ram_mb: float
    metrics: dict[str, float]
    labels: list[str] = field(default_factory=list)
    baseline: dict[str, float] | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    @property
    def trainable_share(self) -> float:
        """Trainable parameters as a share of all."""
        return self.trainable / self.total if self.total else 0.0


def _check_out(out: Path, resume: bool) -> None:
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out {out} is a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"--out {out}: cannot create it ({exc.strerror})") from None
    if not os.access(out, os.W_OK):
        raise BadInputError(f"--out {out} is not writable")
    if (out / META).exists() and not resume:
        raise BadInputError(f"{out} already holds a tuned model; choose another --out")


def _warn_memory(model: Any, adapter: bool) -> None:
    """Full fine-tuning with Adam needs about four copies of the weights."""
    import psutil

    params = sum(p.numel() for p in model.parameters())
    need = params * 4 * (1.2 if adapter else 4)
    free = psutil.virtual_memory().available
    if need > 0.8 * free:
        log.warning(
            "training may run out of memory: about %.1f GB needed, %.1f GB free",
            need / 1e9,
            free / 1e9,
        )


def _arguments(options: TuneOptions, epochs: float, rate: float, steps_per_epoch: int) -> Any:
    from transformers import TrainingArguments

    every = max(1, options.max_steps // 2) if options.max_steps else steps_per_epoch
    return TrainingArguments(
        output_dir=str(options.out / "checkpoints"),
        num_train_epochs=epochs,
        max_steps=options.max_steps or -1,
        learning_rate=rate,
        per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=options.batch_size * 2,
        eval_strategy="steps",
        eval_steps=every,
        save_strategy="steps",
        save_steps=every,
        save_total_limit=2,
        logging_steps=max(1, min(every, 10)),
        warmup_steps=0,
        report_to=[],
        disable_tqdm=True,
        seed=options.seed,
        data_seed=options.seed,
        use_cpu=not _has_gpu(),
    )


def _has_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def tune(options: TuneOptions, settings: Settings, progress: bool = True) -> TuneResult:
    """Fine-tune ``options.base`` on ``options.data`` with ``options.method``."""
    require("peft", "tune", "fine-tuning")
    from transformers import (
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        DataCollatorWithPadding,
        PrinterCallback,
        Trainer,
    )

    chosen = method(options.method)
    rows = data.read_rows(options.data)
    task = options.task or data.detect_task(rows, options.data)
    data.check_rows(rows, task, options.data)
    if options.eval_data:
        train, dev = rows, data.read_rows(options.eval_data)
        data.check_rows(dev, task, options.eval_data)
    else:
        train, dev = data.split(rows, task, options.dev_fraction, options.seed)
    labels = data.labels_of(train, dev) if task == "classification" else []
    _check_out(options.out, options.resume)
    resume_from = None
    if options.resume:
        resume_from = last_checkpoint(options.out / "checkpoints")
        if resume_from is None:
            raise BadInputError(f"--resume: no checkpoint in {options.out / 'checkpoints'}")

    from transformers import set_seed

    set_seed(options.seed)  # the new head's initial weights too, not only the shuffling
    folder = base_folder(options.base, settings)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    base = load_transformers(folder, task, labels)
    if base.config.pad_token_id is None:
        base.config.pad_token_id = tokenizer.pad_token_id
    model = chosen.apply(base, options.model_copy(update={"task": task}))
    _warn_memory(model, chosen.adapter)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    if task == "classification":
        train_set = encode.classification(train, tokenizer, labels, options.max_length)
        dev_set = encode.classification(dev, tokenizer, labels, options.max_length)
        collator: Any = DataCollatorWithPadding(tokenizer)
    else:
        train_set = encode.causal(train, tokenizer, options.max_length)
        dev_set = encode.causal(dev, tokenizer, options.max_length)
        collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=encode.IGNORE)
    epochs = options.epochs or chosen.epochs
    rate = options.learning_rate or chosen.learning_rate
    steps_per_epoch = max(1, -(-len(train_set) // options.batch_size))
    trainer = Trainer(
        model=model,
        args=_arguments(options, epochs, rate, steps_per_epoch),
        train_dataset=train_set,
        eval_dataset=dev_set,
        data_collator=collator,
        compute_metrics=_classification_metrics if task == "classification" else None,
        callbacks=[RichProgress()] if progress else [],
    )
    # Our bar shows progress; the Trainer's own printer would repeat every log on stdout.
    trainer.remove_callback(PrinterCallback)
    before = None if resume_from else float(trainer.evaluate()["eval_loss"])
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    seconds = time.perf_counter() - start
    metrics = {
        key.removeprefix("eval_"): float(value)
        for key, value in trainer.evaluate().items()
        if key in {"eval_loss", "eval_accuracy", "eval_macro_f1"}
    }
    if before is not None:
        metrics["loss_before"] = before
    model.save_pretrained(options.out, safe_serialization=True)
    tokenizer.save_pretrained(options.out)
    result = TuneResult(
        out=options.out,
        base=options.base,
        task=task,
        method=chosen.name,
        trainable=trainable,
        total=total,
        seconds=seconds,
        peak_ram_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        metrics=metrics,
        labels=labels,
        baseline=baseline(train, dev) if task == "classification" else None,
        hyperparameters={
            "epochs": epochs,
            "learning_rate": rate,
            "batch_size": options.batch_size,
            "max_steps": options.max_steps,
            "max_length": options.max_length,
            "seed": options.seed,
            **(_adapter_settings(options) if chosen.adapter else {}),
        },
    )
    _write_meta(result, options, chosen.adapter)
    return result


def last_checkpoint(folder: Path) -> str | None:
    """The newest checkpoint that was written whole.

    A run killed while saving leaves a folder without ``trainer_state.json`` (the Trainer
    writes it last); resuming from that one would fail, so the one before it is used.
    """
    if not folder.is_dir():
        return None
    numbered = [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    for path in sorted(numbered, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        if (path / "trainer_state.json").is_file():
            return str(path)
    return None


def _adapter_settings(options: TuneOptions) -> dict[str, Any]:
    if options.method == "lora":
        return {
            "r": options.r,
            "lora_alpha": options.alpha,
            "lora_dropout": options.dropout,
            "target_modules": options.target_modules,
        }
    if options.method == "prompt-tuning":
        return {"num_virtual_tokens": options.virtual_tokens}
    return {"target_modules": options.target_modules}


def _classification_metrics(prediction: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    guesses = prediction.predictions.argmax(axis=-1)
    truth = prediction.label_ids
    return {
        "accuracy": float(accuracy_score(truth, guesses)),
        "macro_f1": float(f1_score(truth, guesses, average="macro")),
    }


def _write_meta(result: TuneResult, options: TuneOptions, adapter: bool) -> None:
    meta = {
        **{k: v for k, v in asdict(result).items() if k != "out"},
        "adapter": adapter,
        "max_length": options.max_length,
        "data_sha256": data.fingerprint(options.data, options.eval_data),
        "fondasi": __version__,
        "created": date.today().isoformat(),
    }
    (options.out / META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    (options.out / "README.md").write_text(model_card(meta), encoding="utf-8")
