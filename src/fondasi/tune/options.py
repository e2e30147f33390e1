"""Everything a local tuning run takes, typed and closed; unset values use the method's."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

Task = str  # the name of a registered tune task (fondasi.tune.tasks)


class TuneOptions(BaseModel):
    """A local fine-tuning run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str = Field(description="Base model: catalog id or hf:/gguf: path.")
    data: Path = Field(description="Training data: JSONL, CSV, Parquet or a datasets folder.")
    eval_data: Path | None = Field(default=None, description="Dev data; else split from data.")
    out: Path = Field(description="Folder for checkpoints and the tuned model.")
    task: Task | None = Field(
        default=None,
        description="classification, causal-lm, seq2seq or another registered tune task; "
        "detected from the data when not given.",
    )
    method: str = Field(
        default="lora",
        description="full, lora, ia3, prompt-tuning, distill, linear-head, knn, hybrid or setfit "
        "(`tune methods`).",
    )
    r: int = Field(default=16, ge=1, le=1024, description="LoRA rank.")
    alpha: int = Field(default=32, ge=1, description="LoRA scaling (lora_alpha).")
    dropout: float = Field(default=0.05, ge=0, lt=1, description="LoRA dropout.")
    target_modules: list[str] | None = Field(
        default=None, description="Layers to adapt; default: peft's choice per architecture."
    )
    virtual_tokens: int = Field(default=20, ge=1, le=512, description="Prompt-tuning tokens.")
    k: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="kNN: neighbours that vote; default: by leave-one-out.",
    )
    pairs: int = Field(
        default=8, ge=2, le=200, description="SetFit: contrastive pairs made per training text."
    )
    epochs: float | None = Field(default=None, gt=0, le=1000, description="Passes over data.")
    learning_rate: float | None = Field(default=None, gt=0, lt=1, description="Peak step size.")
    batch_size: int = Field(default=16, ge=1, le=4096, description="Examples per step.")
    max_steps: int | None = Field(default=None, ge=1, description="Stop after this many steps.")
    max_length: int = Field(default=256, ge=8, le=32768, description="Tokens per example.")
    dev_fraction: float = Field(default=0.1, gt=0, lt=0.5, description="Dev split share.")
    seed: int = Field(default=42, description="Seed for the split, init and shuffling.")
    resume: bool = Field(default=False, description="Continue from the last checkpoint in out.")
    patience: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Stop after this many dev checks without gain; 0: off; default: the method's.",
    )
    teacher: str | None = Field(default=None, description="Model the distill method learns from.")
    temperature: float = Field(
        default=2.0, gt=0, le=100, description="Distillation softening of both distributions."
    )
    soft_weight: float = Field(
        default=0.7, ge=0, le=1, description="Share of the distillation loss beside the labels'."
    )
    dp_epsilon: float | None = Field(
        default=None, gt=0, le=1000, description="Differential privacy budget (Opacus)."
    )
    dp_delta: float | None = Field(
        default=None, gt=0, lt=1, description="DP delta; default: 1/(10 x training rows)."
    )
    dp_clip: float = Field(default=1.0, gt=0, description="Per-example gradient norm bound (DP).")

    @field_validator("task")
    @classmethod
    def _registered(cls, value: str | None) -> str | None:
        if value is not None:
            from fondasi.tune.tasks import TASKS

            TASKS.get(value)  # an unknown name raises, listing the close ones
        return value
