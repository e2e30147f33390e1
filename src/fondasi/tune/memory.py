"""Will a run fit in memory? An estimate from the model's size, the batch and the sequence
length, checked against the memory free before training starts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)
FLOAT = 4  # bytes: training here runs in float32
HEADROOM = 0.8  # warn when the estimate passes this share of free memory


@dataclass(frozen=True)
class Estimate:
    """Bytes a training run needs, by part."""

    weights: int
    optimiser: int  # gradients and Adam's two moments, for trainable parameters only
    activations: int  # what the backward pass keeps, for one batch

    @property
    def total(self) -> int:
        """All parts together."""
        return self.weights + self.optimiser + self.activations


def _first(config: Any, *names: str, default: int = 0) -> int:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return default


def estimate(model: Any, batch: int, length: int) -> Estimate:
    """Memory for training ``model`` on ``batch`` sequences of ``length`` tokens.

    Activations per layer follow Korthikanti et al. (2022), ``s b h (34 + 5 a s / h)``
    bytes at 16 bits, doubled for float32; the output layer's logits and their gradient
    are added for language models (vocabulary-wide, often the largest single tensor).
    """
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    config = getattr(model, "config", None)
    hidden = _first(config, "hidden_size", "d_model", "n_embd", default=768)
    layers = _first(config, "num_hidden_layers", "num_layers", "n_layer", default=12)
    layers += _first(config, "num_decoder_layers", "decoder_layers")
    heads = _first(config, "num_attention_heads", "num_heads", "n_head", default=12)
    tokens = batch * length
    per_layer = tokens * hidden * (34 + 5 * heads * length / hidden) * 2
    vocabulary = _first(config, "vocab_size") if _generates(model) else 0
    logits = tokens * vocabulary * FLOAT * 2
    return Estimate(
        weights=params * FLOAT,
        optimiser=trainable * FLOAT * 3,
        activations=int(per_layer * layers + logits),
    )


def _generates(model: Any) -> bool:
    names = [type(model).__name__, *getattr(getattr(model, "config", None), "architectures", [])]
    return any("CausalLM" in n or "ConditionalGeneration" in n for n in names if n)


def warn_if_tight(needed: Estimate, available: int | None = None) -> bool:
    """Warn before training when the run may not fit; True when it warned."""
    import psutil

    free = psutil.virtual_memory().available if available is None else available
    if needed.total <= HEADROOM * free:
        return False
    log.warning(
        "training may run out of memory: about %.1f GB needed (weights %.1f, gradients and "
        "optimiser %.1f, activations %.1f), %.1f GB free. Lower --batch-size or "
        "--max-length, or use --method lora",
        needed.total / 1e9,
        needed.weights / 1e9,
        needed.optimiser / 1e9,
        needed.activations / 1e9,
        free / 1e9,
    )
    return True
