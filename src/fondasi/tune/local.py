"""A local tuning run on the transformers Trainer: load, adapt, train, measure, save.

No training loop of our own: the Trainer does the loop, checkpoints and resumption, and
runs unchanged under ``accelerate launch`` or ``torchrun`` on many GPUs.
"""

from __future__ import annotations

import json
import logging
import resource
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from fondasi.backends.tuned import META, base_folder, load_transformers
from fondasi.errors import BadInputError
from fondasi.extras import require
from fondasi.settings import Settings
from fondasi.tune import data, memory, private
from fondasi.tune.methods import Method, method
from fondasi.tune.options import TuneOptions
from fondasi.tune.progress import RichProgress
from fondasi.tune.report import model_card
from fondasi.tune.tasks import Task, task
from fondasi.version import __version__

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
    privacy: dict[str, float] | None = None
    steps: int = 0
    stopped_early: bool = False

    @property
    def trainable_share(self) -> float:
        """Trainable parameters as a share of all."""
        return self.trainable / self.total if self.total else 0.0


def split_rows(
    options: TuneOptions, kind: Task, rows: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Checked train and dev rows: --eval-data, a folder's dev split, or a seeded split."""
    data.check_rows(rows, kind.name, options.data)
    folder_dev = None if options.eval_data else data.dev_rows(options.data)
    if options.eval_data:
        dev = data.read_rows(options.eval_data)
        data.check_rows(dev, kind.name, options.eval_data)
        return rows, dev
    if folder_dev is not None:  # a folder with train and dev splits: they are the split
        data.check_rows(list(folder_dev), kind.name, options.data)
        return rows, list(folder_dev)
    return data.split(rows, kind.stratify, options.dev_fraction, options.seed)


def check_out(out: Path, resume: bool) -> None:
    """``out`` exists, is writable and holds no tuned model yet (unless resuming)."""
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out {out} is a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"--out {out}: cannot create it ({exc.strerror})") from None
    try:  # a real write: permission bits do not tell for root, read-only mounts or quotas
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise BadInputError(f"--out {out} is not writable ({exc.strerror})") from None
    if (out / META).exists() and not resume:
        raise BadInputError(f"{out} already holds a tuned model; choose another --out")


def _arguments(
    options: TuneOptions, kind: Task, epochs: float, rate: float, steps_per_epoch: int
) -> Any:
    from transformers import TrainingArguments

    # Short runs (--max-steps) check the dev set twice; full runs once per epoch.
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
        # Early stopping keeps the best dev checkpoint, not the last one.
        load_best_model_at_end=bool(options.patience),
        metric_for_best_model=kind.best,
        greater_is_better=kind.higher_is_better,
        logging_steps=max(1, min(every, 10)),
        warmup_steps=0,
        # DP-SGD clips every example's gradient itself; the batch-level clip would be moot.
        max_grad_norm=0.0 if options.dp_epsilon else 1.0,
        # Teacher probabilities travel beside the model's inputs for the distillation loss.
        remove_unused_columns=False,
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
    chosen = method(options.method)
    own = chosen.run(options, settings, progress)
    if own is not None:
        return own
    require("peft", "tune", "fine-tuning")
    from transformers import AutoTokenizer, EarlyStoppingCallback, PrinterCallback, set_seed

    if options.patience is None:
        options = options.model_copy(update={"patience": chosen.patience})
    private.check(options)
    rows = data.read_rows(options.data)
    folder = base_folder(options.base, settings)
    if options.task:
        kind = task(options.task)
    else:  # T5 and BART learn prompt/completion rows as seq2seq: the base decides
        kind = task(data.detect_task(rows, options.data)).for_base(folder)
    train, dev = split_rows(options, kind, rows)
    labels = kind.labels(train, dev)
    check_out(options.out, options.resume)
    resume_from = None
    if options.resume:
        resume_from = last_checkpoint(options.out / "checkpoints")
        if resume_from is None:
            raise BadInputError(f"--resume: no checkpoint in {options.out / 'checkpoints'}")
    taught = chosen.teach(train, kind.name, labels, options, settings)

    if settings.threads:  # FONDASI_THREADS: on a shared machine fewer threads can be faster
        import torch

        torch.set_num_threads(settings.threads)
    set_seed(options.seed)  # the new head's initial weights too, not only the shuffling
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    base = load_transformers(folder, kind.name, labels)
    if base.config.pad_token_id is None:
        base.config.pad_token_id = tokenizer.pad_token_id
    model = chosen.apply(base, options.model_copy(update={"task": kind.name}))
    memory.warn_if_tight(memory.estimate(model, options.batch_size, options.max_length))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    train_set = kind.encode(taught, tokenizer, labels, options.max_length)
    dev_set = kind.encode(dev, tokenizer, labels, options.max_length)
    epochs = options.epochs or chosen.epochs
    rate = options.learning_rate or chosen.learning_rate
    steps_per_epoch = max(1, -(-len(train_set) // options.batch_size))
    trainer_class, extra = _trainer_class(chosen, options, len(train_set))
    callbacks: list[Any] = [RichProgress()] if progress else []
    if options.patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=options.patience))
    trainer = trainer_class(
        model=model,
        args=_arguments(options, kind, epochs, rate, steps_per_epoch),
        train_dataset=train_set,
        eval_dataset=dev_set,
        data_collator=kind.collator(tokenizer, model),
        compute_metrics=kind.compute_metrics(),
        callbacks=callbacks,
        **extra,
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
    # Under torchrun / accelerate every process gets here; one of them writes the model.
    writer = trainer.is_world_process_zero()
    if writer:
        chosen.save(model, options.out)
        tokenizer.save_pretrained(options.out)
    planned = trainer.state.max_steps
    result = TuneResult(
        out=options.out,
        base=options.base,
        task=kind.name,
        method=chosen.name,
        trainable=trainable,
        total=total,
        seconds=seconds,
        peak_ram_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        metrics=metrics,
        labels=labels,
        baseline=kind.baseline(train, dev),
        hyperparameters=_hyperparameters(options, chosen, epochs, rate),
        privacy=trainer.privacy() if options.dp_epsilon else None,
        steps=int(trainer.state.global_step),
        stopped_early=0 < trainer.state.global_step < planned,
    )
    if writer:
        write_meta(result, options, chosen.adapter)
    return result


def _trainer_class(chosen: Method, options: TuneOptions, rows: int) -> tuple[Any, dict[str, Any]]:
    """The method's Trainer, made differentially private when a budget is given."""
    trainer_class, extra = chosen.trainer(options)
    if options.dp_epsilon is None:
        return trainer_class, extra
    return private.private_trainer(trainer_class), {
        **extra,
        "epsilon": options.dp_epsilon,
        "delta": private.delta_for(options, rows),
        "clip": options.dp_clip,
    }


def _hyperparameters(
    options: TuneOptions, chosen: Method, epochs: float, rate: float
) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "epochs": epochs,
        "learning_rate": rate,
        "batch_size": options.batch_size,
        "max_steps": options.max_steps,
        "max_length": options.max_length,
        "patience": options.patience,
        "seed": options.seed,
    }
    settings.update(chosen.settings(options))
    if options.dp_epsilon:
        settings.update(dp_epsilon=options.dp_epsilon, dp_clip=options.dp_clip)
    return settings


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


def write_meta(
    result: TuneResult, options: TuneOptions, adapter: bool, extra: dict[str, Any] | None = None
) -> None:
    """``fondasi-tune.json`` and the model card for a finished run."""
    meta = {
        **{k: v for k, v in asdict(result).items() if k != "out"},
        "adapter": adapter,
        "max_length": options.max_length,
        # Where the dev rows came from, so `tune export` can measure on the same ones.
        "data": str(options.data.resolve()),
        "eval_data": str(options.eval_data.resolve()) if options.eval_data else None,
        "dev_fraction": options.dev_fraction,
        "data_sha256": data.fingerprint(options.data, options.eval_data),
        "fondasi": __version__,
        "created": date.today().isoformat(),
        **(extra or {}),
    }
    (options.out / META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    (options.out / "README.md").write_text(model_card(meta), encoding="utf-8")
