"""Tuning methods, each registered by name: full fine-tuning and the PEFT family.

A method turns a freshly loaded transformers model into the model the Trainer trains (its
PEFT config, if it adds an adapter), says which learning rate and epochs suit it when the
user gives none, which of its settings the model card records, how the result is saved
and whether its adapter folds into the base's weights. Adding one is one class with
``@register_method``, the way peft registers its own methods; another package adds one
through the ``fondasi.tune_methods`` entry-point group (naming a ``Method`` class or
instance, or a module that calls ``register_method``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from fondasi.errors import BadInputError
from fondasi.registry import Registry, instances_of
from fondasi.tune.tasks import Task, task

if TYPE_CHECKING:
    from fondasi.settings import Settings
    from fondasi.tune.local import TuneResult
    from fondasi.tune.options import TuneOptions


class Method:
    """How a model is adapted; a subclass sets the class attributes and overrides hooks."""

    name: ClassVar[str]
    summary: ClassVar[str]
    learning_rate: ClassVar[float]  # default when --lr is not given
    epochs: ClassVar[float]  # default when --epochs is not given
    patience: ClassVar[int] = 2  # default when --patience is not given
    adapter: ClassVar[bool]  # saves an adapter on the base instead of whole weights
    # Why the adapter cannot be folded into the base's weights; None when it can.
    unmergeable: ClassVar[str | None] = None
    private: ClassVar[bool] = True  # DP-SGD (--dp-epsilon) can train with it
    why_not_private: ClassVar[str] = ""  # said when --dp-epsilon is refused

    def run(self, options: TuneOptions, settings: Settings, progress: bool) -> TuneResult | None:
        """A whole run done this method's own way; None: the Trainer runs it (most do)."""
        return None

    def peft_config(self, model: Any, options: TuneOptions, task: Task) -> Any:
        """The PEFT config that adds this method's adapter; None trains the model itself."""
        return None

    def apply(self, model: Any, options: TuneOptions) -> Any:
        """The model to train: the same one, or wrapped with trainable extra parameters."""
        # A run sets options.task; a bare call, as from a test, adapts a classifier.
        config = self.peft_config(model, options, task(options.task or "classification"))
        if config is None:
            return model
        from peft import get_peft_model

        return get_peft_model(model, config)

    def settings(self, options: TuneOptions) -> dict[str, Any]:
        """This method's own hyperparameters, as the model card records them."""
        return {}

    def teach(
        self,
        rows: list[dict[str, Any]],
        task: str,
        labels: list[str],
        options: TuneOptions,
        settings: Settings,
    ) -> list[dict[str, Any]]:
        """The training rows as this method learns from them: unchanged, for most."""
        if options.teacher:
            raise BadInputError(f"--teacher is for --method distill, not {self.name}")
        return rows

    def trainer(self, options: TuneOptions) -> tuple[Any, dict[str, Any]]:
        """The Trainer class to run and the extra arguments it takes."""
        from transformers import Trainer

        return Trainer, {}

    def save(self, model: Any, out: Path) -> None:
        """Write the trained model (whole weights, or the adapter alone) into ``out``."""
        model.save_pretrained(out, safe_serialization=True)

    def merge(self, model: Any) -> Any:
        """The base with the adapter in ``model`` folded into its weights."""
        if self.unmergeable:
            raise BadInputError(self.unmergeable)
        return model.merge_and_unload()


METHODS: Registry[Method] = Registry(
    "tuning method",
    "fondasi.tune_methods",
    builtins=(__name__, "fondasi.tune.recipes"),
    adopt=instances_of(Method, "tuning method"),
)
M = TypeVar("M", bound=Method)


def register_method(kind: type[M]) -> type[M]:
    """Make a tuning method available by its name."""
    METHODS.register(kind.name, kind())
    return kind


def method(name: str) -> Method:
    """The method called ``name``; an unknown one lists the close ones."""
    return METHODS.get(name)


def linear_names(model: Any) -> list[str]:
    """Short names of the model's linear layers: what target modules may name."""
    import torch

    names = {
        name.split(".")[-1]
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
    }
    return sorted(names)


def check_targets(model: Any, targets: list[str] | None) -> None:
    """Every target module must name real layers; the error lists the ones that exist."""
    if not targets:
        return
    modules = [name for name, _ in model.named_modules()]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in modules)]
    if missing:
        raise BadInputError(
            f"no module named {', '.join(missing)} in this model; its linear layers are: "
            f"{', '.join(linear_names(model))}"
        )


def _task_type(task: Task) -> Any:
    from peft import TaskType

    return TaskType[task.peft_type]


@register_method
class Full(Method):
    """Every weight trains."""

    name = "full"
    summary = "every weight trains; the best quality, the most memory"
    # Measured on the bundled Indonesian sentiment data (docs/benchmarks.md): 5e-5 for 3
    # epochs stays below TF-IDF; 1e-4 with early stopping passes it by ten points.
    learning_rate = 1e-4
    epochs = 10.0
    adapter = False


@register_method
class Lora(Method):
    """Low-rank updates beside chosen layers; the base stays frozen (Hu et al., 2021)."""

    name = "lora"
    summary = "low-rank adapters on attention layers (r, alpha, dropout, target modules)"
    # LoRA's few parameters need a larger step than full fine-tuning to move as far, and
    # more epochs. Measured on the bundled Indonesian data (docs/benchmarks.md): 2e-3 for up
    # to 20 epochs with patience 5 stays within 1.2 points of full fine-tuning at four seeds; 3e-3
    # and above collapse to one class.
    learning_rate = 2e-3
    epochs = 20.0
    patience = 5
    adapter = True

    def peft_config(self, model: Any, options: TuneOptions, task: Task) -> Any:
        from peft import LoraConfig

        check_targets(model, options.target_modules)
        return LoraConfig(
            r=options.r,
            lora_alpha=options.alpha,
            lora_dropout=options.dropout,
            # None: peft's choice per architecture (BERT query,value; Llama q_proj,v_proj)
            target_modules=options.target_modules,
            task_type=_task_type(task),
            modules_to_save=task.trained_with_adapter(model),
        )

    def settings(self, options: TuneOptions) -> dict[str, Any]:
        return {
            "r": options.r,
            "lora_alpha": options.alpha,
            "lora_dropout": options.dropout,
            "target_modules": options.target_modules,
        }


@register_method
class IA3(Method):
    """Learned scaling vectors on keys, values and feed-forward layers (Liu et al., 2022)."""

    name = "ia3"
    summary = "learned scaling vectors (IA3): the fewest trainable parameters of the adapters"
    learning_rate = 5e-3
    epochs = 5.0
    adapter = True

    def peft_config(self, model: Any, options: TuneOptions, task: Task) -> Any:
        from peft import IA3Config

        check_targets(model, options.target_modules)
        targets = options.target_modules
        return IA3Config(
            target_modules=targets,
            # A given target list may hold feed-forward layers; peft needs them named twice.
            feedforward_modules=[t for t in targets if "dense" in t or "mlp" in t or "down" in t]
            if targets
            else None,
            task_type=_task_type(task),
        )

    def settings(self, options: TuneOptions) -> dict[str, Any]:
        return {"target_modules": options.target_modules}


@register_method
class PromptTuning(Method):
    """Trainable virtual tokens in front of every input (Lester et al., 2021)."""

    name = "prompt-tuning"
    summary = "trainable virtual tokens before the input; the model itself stays frozen"
    learning_rate = 3e-2
    epochs = 5.0
    adapter = True
    unmergeable = "prompt tuning adds virtual tokens, not weights: it cannot merge"
    private = False

    def peft_config(self, model: Any, options: TuneOptions, task: Task) -> Any:
        from peft import PromptTuningConfig

        return PromptTuningConfig(
            num_virtual_tokens=options.virtual_tokens, task_type=_task_type(task)
        )

    def settings(self, options: TuneOptions) -> dict[str, Any]:
        return {"num_virtual_tokens": options.virtual_tokens}


@register_method
class Distill(Method):
    """A student learns from a teacher's outputs (Hinton et al., 2015; Kim and Rush, 2016).

    Classifiers learn the teacher's probabilities beside the true labels; language models
    learn the teacher's answers to the training prompts. Every student weight trains.
    """

    name = "distill"
    summary = "a student learns a teacher's (--teacher) probabilities or answers; all weights"
    learning_rate = 1e-4  # the student trains whole, as in full fine-tuning
    epochs = 10.0
    adapter = False
    private = False
    why_not_private = "the teacher would see the private rows"

    def teach(
        self,
        rows: list[dict[str, Any]],
        task: str,
        labels: list[str],
        options: TuneOptions,
        settings: Settings,
    ) -> list[dict[str, Any]]:
        """The rows with the teacher's probabilities, or with the teacher's answers."""
        from fondasi.tune.distill import teach

        # No --teacher: the local instruct model fondasi writes with (settings.chat_model).
        return teach(rows, task, labels, options.teacher or settings.chat_model, settings)

    def trainer(self, options: TuneOptions) -> tuple[Any, dict[str, Any]]:
        """A Trainer whose loss mixes the teacher's softened probabilities with the labels."""
        from fondasi.tune.distill import DistillTrainer

        return DistillTrainer, {
            "temperature": options.temperature,
            "soft_weight": options.soft_weight,
        }

    def settings(self, options: TuneOptions) -> dict[str, Any]:
        return {
            "teacher": options.teacher,
            "temperature": options.temperature,
            "soft_weight": options.soft_weight,
        }
