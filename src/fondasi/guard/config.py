"""Guard policies as configuration: ``[guard]`` in config.toml, validated here.

One block turns a policy on::

    [guard]
    default = "safe"
    policies.safe.input = { pii = "pseudonymise", injection = "flag", toxicity = "flag" }
    policies.safe.output = { pii = "mask", toxicity = "block", system_prompt_leak = "block" }
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fondasi.guard.events import Action

# A model filter's finding covers a window of text: it can be flagged, masked or blocked,
# but there is no value in it to pseudonymise.
MODEL_ACTIONS: tuple[Action, ...] = ("flag", "mask", "block")
ModelKind = Literal["classifier", "guard-llm"]
MODEL_KINDS: tuple[ModelKind, ...] = ("classifier", "guard-llm")


class ModelFilterConfig(BaseModel):
    """A filter backed by a model you have: a sequence classifier or a guard LLM."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ModelKind = Field(
        description="classifier (a *ForSequenceClassification model: Prompt Guard, ProtectAI's "
        "DeBERTa, a Detoxify-style model) or guard-llm (Llama Guard, ShieldGemma, any chat model)."
    )
    model: str = Field(
        min_length=1,
        description="Any model fondasi loads: hf:<folder>, gguf:<file>, a catalog id, "
        "a provider's model (openai/gpt-4o-mini).",
    )
    unsafe: list[str] | None = Field(
        default=None,
        description="Classifier labels or guard categories that count; default: every label "
        "but the benign ones (SAFE, BENIGN, LABEL_0 of two), every category.",
    )
    type: str | None = Field(
        default=None,
        description="What a finding is called (injection, toxicity ...); default: the label "
        "or category found.",
    )
    style: str | None = Field(
        default=None,
        description="How a guard LLM is asked (llama-guard, shieldgemma, json); default: "
        "by the model's name, json for any other chat model.",
    )
    policy: str | None = Field(
        default=None,
        description="A guard LLM's safety policy in words; default: the style's own.",
    )
    window_chars: int = Field(
        default=1500,
        ge=100,
        le=100_000,
        description="A classifier reads longer texts in sentence-aligned windows of about "
        "this many characters, so nothing past its token limit goes unread.",
    )
    max_tokens: int = Field(
        default=64, ge=1, le=2048, description="Most tokens a guard LLM's verdict may take."
    )


def model_filter_spec(name: str, models: dict[str, ModelFilterConfig]) -> ModelFilterConfig | None:
    """The model filter ``name`` stands for: a ``models`` entry or ``KIND:MODEL`` in one line."""
    if name in models:
        return models[name]
    kind, sep, ref = name.partition(":")
    if sep and ref and kind in MODEL_KINDS:
        return ModelFilterConfig(kind=kind, model=ref)
    return None


class PolicyConfig(BaseModel):
    """One named policy: which filter does what, on input and on output."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: dict[str, Action] = Field(
        default_factory=dict,
        description="Filter name -> action on the prompt before the model sees it.",
    )
    output: dict[str, Action] = Field(
        default_factory=dict,
        description="Filter name -> action on the answer before the caller sees it.",
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Filter name -> lowest score (0..1) that counts as a finding.",
    )
    pii_types: list[str] | None = Field(
        default=None,
        description="Only these PII types (NIK, EMAIL, PHONE ...); default: all of them.",
    )
    classifier: bool = Field(
        default=True,
        description="Toxicity and injection also use an embedding classifier, not only rules.",
    )
    embedding_model: str | None = Field(
        default=None,
        description="Embedding model for the classifiers; default: the settings' one.",
    )
    json_schema: dict[str, Any] | Path | None = Field(
        default=None,
        description="JSON schema (inline table or a .json file) answers must match.",
    )
    models: dict[str, ModelFilterConfig] = Field(
        default_factory=dict,
        description="Filters backed by your own models, by the name input/output give them; "
        'a one-line "classifier:MODEL" or "guard-llm:MODEL" needs no entry here.',
    )

    def model_filter(self, name: str) -> ModelFilterConfig | None:
        """The model-backed filter ``name`` names, or None for a registered filter."""
        return model_filter_spec(name, self.models)

    @field_validator("thresholds")
    @classmethod
    def _scores(cls, value: dict[str, float]) -> dict[str, float]:
        for name, score in value.items():
            if not 0.0 <= score <= 1.0:
                raise ValueError(f"threshold for {name!r} must be between 0 and 1, got {score}")
        return value

    @model_validator(mode="after")
    def _filters(self) -> PolicyConfig:
        from fondasi.guard.base import available
        from fondasi.registry import close_matches

        known = available()
        shadowing = sorted(set(self.models) & set(known))
        if shadowing:
            raise ValueError(f"models may not reuse a filter's name: {', '.join(shadowing)}")
        for stage in ("input", "output"):
            for name, action in getattr(self, stage).items():
                if self.model_filter(name) is not None:
                    if action not in MODEL_ACTIONS:
                        allowed = ", ".join(MODEL_ACTIONS)
                        raise ValueError(
                            f"model filter {name!r} cannot {action}; it can: {allowed}"
                        )
                    continue
                if name not in known:
                    close = close_matches(name, list(known))
                    hint = f" Did you mean: {', '.join(close)}?" if close else ""
                    every = ", ".join(sorted(known))
                    raise ValueError(f"unknown filter {name!r} in {stage}.{hint} Known: {every}")
                cls = known[name]
                if stage not in cls.stages:
                    raise ValueError(
                        f"filter {name!r} works on {', '.join(cls.stages)}, not {stage}"
                    )
                if action not in cls.actions:
                    raise ValueError(
                        f"filter {name!r} cannot {action}; it can: {', '.join(sorted(cls.actions))}"
                    )
        unknown = {n for n in self.thresholds if n not in known and not self.model_filter(n)}
        if unknown:
            raise ValueError(f"thresholds for unknown filters: {', '.join(sorted(unknown))}")
        if "json_schema" in self.output and self.json_schema is None:
            raise ValueError("output json_schema needs a json_schema (inline table or file)")
        return self


class GuardConfig(BaseModel):
    """The ``[guard]`` table: named policies and the one used when none is named."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: str | None = Field(
        default=None, description="Policy applied to every model call when none is named."
    )
    policies: dict[str, PolicyConfig] = Field(
        default_factory=dict, description="Policies by name ([guard.policies.NAME])."
    )


# Ready-made policies; a [guard.policies.NAME] block of the same name replaces one.
BUILTIN_POLICIES: dict[str, dict[str, Any]] = {
    "standard": {
        "input": {"pii": "pseudonymise", "injection": "flag", "toxicity": "flag"},
        "output": {"pii": "mask", "toxicity": "block", "system_prompt_leak": "block"},
    },
    "strict": {
        "input": {"pii": "block", "injection": "block", "toxicity": "block"},
        "output": {"pii": "mask", "toxicity": "block", "system_prompt_leak": "block"},
    },
    "audit": {
        "input": {"pii": "flag", "injection": "flag", "toxicity": "flag"},
        "output": {"pii": "flag", "toxicity": "flag", "system_prompt_leak": "flag"},
    },
}
