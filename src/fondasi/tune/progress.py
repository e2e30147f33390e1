"""A Rich progress bar for the Trainer: steps done, the latest loss, time left."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from transformers import TrainerCallback


class RichProgress(TrainerCallback):
    """Shows training on standard error, so standard output stays for results."""

    def __init__(self) -> None:
        self.bar = Progress(
            TextColumn("[bold]training[/]"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} steps"),
            TextColumn("{task.fields[loss]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self.task: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.bar.start()
        self.task = self.bar.add_task("train", total=state.max_steps, loss="")
        self.bar.update(self.task, completed=state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.bar.update(self.task, completed=state.global_step)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if logs and "loss" in logs and self.task is not None:
            self.bar.update(self.task, loss=f"loss {logs['loss']:.4f}")
        if logs and "eval_loss" in logs and self.task is not None:
            shown = f"dev loss {logs['eval_loss']:.4f}"
            if "eval_accuracy" in logs:
                shown += f" · dev acc {logs['eval_accuracy']:.3f}"
            self.bar.update(self.task, loss=shown)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.bar.stop()
