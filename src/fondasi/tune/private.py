"""Differentially private fine-tuning with Opacus (DP-SGD, Abadi et al. 2016).

Every example's gradient is clipped to ``--dp-clip``, Gaussian noise sized for the budget
``--dp-epsilon`` is added to each batch's sum, batches are Poisson-sampled, and an RDP
accountant reports the privacy actually spent (a run stopped early spends less). It wraps
whichever Trainer the method uses, so the loop stays the Trainer's.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any

from fondasi.errors import BadInputError
from fondasi.extras import require
from fondasi.tune.methods import METHODS, method
from fondasi.tune.options import TuneOptions


def delta_for(options: TuneOptions, rows: int) -> float:
    """The given delta, or one well below 1/n: the chance the guarantee fails outright."""
    return options.dp_delta or 1 / (10 * max(rows, 1))


def check(options: TuneOptions) -> None:
    """Refuse what DP training cannot do here, before any model is loaded."""
    if options.dp_epsilon is None:
        return
    require("opacus", "tune", "differentially private fine-tuning")
    if options.resume:
        raise BadInputError(
            "--resume cannot continue a --dp-epsilon run: the privacy accountant's history "
            "is not in the checkpoint, so the budget spent would be under-counted"
        )
    chosen = method(options.method)
    if not chosen.private:
        able = [name for name, each in METHODS.items() if each.private]
        why = f" ({chosen.why_not_private})" if chosen.why_not_private else ""
        either = " or ".join([", ".join(able[:-1]), able[-1]] if len(able) > 1 else able)
        raise BadInputError(f"--dp-epsilon works with --method {either}, not {chosen.name}{why}")


class _NonEmpty:
    """Opacus's Poisson batches, skipping the (rare) empty one but still counting its step."""

    def __init__(self, sampler: Any, on_empty: Any) -> None:
        self.sampler = sampler
        self.on_empty = on_empty

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.sampler:
            if len(batch):
                yield batch
            else:
                self.on_empty()


def private_trainer(base: type) -> type:
    """``base`` with DP-SGD: per-example clipping, noise, Poisson batches, accounting."""
    import torch
    from opacus import GradSampleModule  # type: ignore[import-untyped]
    from opacus.accountants import RDPAccountant  # type: ignore[import-untyped]
    from opacus.accountants.utils import get_noise_multiplier  # type: ignore[import-untyped]
    from opacus.optimizers import DPOptimizer  # type: ignore[import-untyped]
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler  # type: ignore[import-untyped]
    from torch.utils.data import DataLoader

    class PrivateTrainer(base):  # type: ignore[misc]
        """The Trainer, made differentially private."""

        def __init__(
            self, *args: Any, epsilon: float, delta: float, clip: float, **kwargs: Any
        ) -> None:
            super().__init__(*args, **kwargs)
            self.epsilon, self.delta, self.clip = epsilon, delta, clip
            rows = len(self.train_dataset)
            self.sample_rate = min(1.0, self.args.per_device_train_batch_size / rows)
            per_epoch = int(1 / self.sample_rate)
            self.planned_steps = (
                self.args.max_steps
                if self.args.max_steps > 0
                else math.ceil(self.args.num_train_epochs * per_epoch)
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "optimal order is the largest alpha" advice
                self.noise = float(
                    get_noise_multiplier(
                        target_epsilon=epsilon,
                        target_delta=delta,
                        sample_rate=self.sample_rate,
                        steps=self.planned_steps,
                        accountant="rdp",
                    )
                )
            self.accountant = RDPAccountant()
            # Hooks on the model's own layers collect per-example gradients; the Trainer
            # keeps calling the model it was given.
            self.per_example = GradSampleModule(self.model, batch_first=True)

        def train(self, *args: Any, **kwargs: Any) -> Any:
            with warnings.catch_warnings():
                # Opacus's backward hooks fire on the first layer whose inputs (the frozen
                # embeddings) need no gradient; torch warns, and nothing is wrong.
                warnings.filterwarnings("ignore", message="Full backward hook is firing")
                return super().train(*args, **kwargs)

        def create_optimizer(self) -> Any:
            inner = super().create_optimizer()
            if isinstance(inner, DPOptimizer):
                return inner
            private = DPOptimizer(
                inner,
                noise_multiplier=self.noise,
                max_grad_norm=self.clip,
                expected_batch_size=self.args.per_device_train_batch_size,
            )
            count = self.accountant.get_optimizer_hook_fn(sample_rate=self.sample_rate)

            def after_noise(optimizer: Any) -> None:
                count(optimizer)
                # The Trainer clears gradients through the model, which leaves Opacus's
                # per-example ones; they are spent once the noisy sum is in .grad.
                for parameter in optimizer.params:
                    parameter.grad_sample = None
                    parameter.summed_grad = None

            private.attach_step_hook(after_noise)
            self.optimizer = private
            return private

        def get_train_dataloader(self) -> Any:
            generator = torch.Generator().manual_seed(self.args.seed)
            sampler = UniformWithReplacementSampler(
                num_samples=len(self.train_dataset),
                sample_rate=self.sample_rate,
                generator=generator,
            )
            return DataLoader(
                self.train_dataset,
                batch_sampler=_NonEmpty(sampler, self._empty_step),
                collate_fn=self.data_collator,
            )

        def _empty_step(self) -> None:
            self.accountant.step(noise_multiplier=self.noise, sample_rate=self.sample_rate)

        def privacy(self) -> dict[str, float]:
            """The budget spent so far, and how it was spent."""
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                spent = self.accountant.get_epsilon(self.delta) if self.accountant.history else 0.0
            return {
                "epsilon_spent": float(spent),
                "epsilon_target": self.epsilon,
                "delta": self.delta,
                "noise_multiplier": self.noise,
                "clip": self.clip,
                "sample_rate": self.sample_rate,
                "steps": float(sum(steps for _, _, steps in self.accountant.history)),
            }

    return PrivateTrainer
