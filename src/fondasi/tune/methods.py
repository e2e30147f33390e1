"""Tuning methods, each registered by name: full fine-tuning and the PEFT family.

A method turns a freshly loaded transformers model into the model the Trainer trains,
and says which learning rate and epochs suit it when the user gives none. Adding one is
one class with ``@register_method``, the way peft registers its own methods.
"""

from __future__ import annotations

from difflib import get_close_matches
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, cast

from fondasi.errors import BadInputError, UnknownChoiceError

if TYPE_CHECKING:
    from fondasi.tune.options import TuneOptions

TASK_TYPES = {"classification": "SEQ_CLS", "causal-lm": "CAUSAL_LM"}


class Method(Protocol):
    """How a model is adapted."""

    name: ClassVar[str]
    summary: ClassVar[str]
    learning_rate: ClassVar[float]  # default when --lr is not given
    epochs: ClassVar[float]  # default when --epochs is not given
    adapter: ClassVar[bool]  # saves an adapter on the base instead of whole weights

    def apply(self, model: Any, options: TuneOptions) -> Any:
        """The model to train: the same one, or wrapped with trainable extra parameters."""


METHODS: dict[str, Method] = {}
M = TypeVar("M")


def register_method(kind: type[M]) -> type[M]:
    """Make a tuning method available by its name."""
    made = cast(Method, kind())
    METHODS[made.name] = made
    return kind


def method(name: str) -> Method:
    """The method called ``name``; an unknown one lists the close ones."""
    if name not in METHODS:
        names = sorted(METHODS)
        raise UnknownChoiceError("tuning method", name, names, get_close_matches(name, names))
    return METHODS[name]


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


def _task_type(options: TuneOptions) -> Any:
    from peft import TaskType

    return TaskType[TASK_TYPES[options.task or "classification"]]


@register_method
class Full:
    """Every weight trains."""

    name = "full"
    summary = "every weight trains; the best quality, the most memory"
    learning_rate = 5e-5
    epochs = 3.0
    adapter = False

    def apply(self, model: Any, options: TuneOptions) -> Any:
        return model


@register_method
class Lora:
    """Low-rank updates beside chosen layers; the base stays frozen (Hu et al., 2021)."""

    name = "lora"
    summary = "low-rank adapters on attention layers (r, alpha, dropout, target modules)"
    # LoRA's few parameters need a larger step than full fine-tuning to move as far.
    learning_rate = 1e-3
    epochs = 5.0
    adapter = True

    def apply(self, model: Any, options: TuneOptions) -> Any:
        from peft import LoraConfig, get_peft_model

        check_targets(model, options.target_modules)
        config = LoraConfig(
            r=options.r,
            lora_alpha=options.alpha,
            lora_dropout=options.dropout,
            target_modules=options.target_modules,  # None: peft's default for the architecture
            task_type=_task_type(options),
        )
        return get_peft_model(model, config)


@register_method
class IA3:
    """Learned scaling vectors on keys, values and feed-forward layers (Liu et al., 2022)."""

    name = "ia3"
    summary = "learned scaling vectors (IA3): the fewest trainable parameters of the adapters"
    learning_rate = 5e-3
    epochs = 5.0
    adapter = True

    def apply(self, model: Any, options: TuneOptions) -> Any:
        from peft import IA3Config, get_peft_model

        check_targets(model, options.target_modules)
        targets = options.target_modules
        config = IA3Config(
            target_modules=targets,
            # A given target list may hold feed-forward layers; peft needs them named twice.
            feedforward_modules=[t for t in targets if "dense" in t or "mlp" in t or "down" in t]
            if targets
            else None,
            task_type=_task_type(options),
        )
        return get_peft_model(model, config)


@register_method
class PromptTuning:
    """Trainable virtual tokens in front of every input (Lester et al., 2021)."""

    name = "prompt-tuning"
    summary = "trainable virtual tokens before the input; the model itself stays frozen"
    learning_rate = 3e-2
    epochs = 5.0
    adapter = True

    def apply(self, model: Any, options: TuneOptions) -> Any:
        from peft import PromptTuningConfig, get_peft_model

        config = PromptTuningConfig(
            num_virtual_tokens=options.virtual_tokens, task_type=_task_type(options)
        )
        return get_peft_model(model, config)
