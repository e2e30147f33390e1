"""Guard policies as configuration: ``[guard]`` in config.toml, validated here.

One block turns a policy on::

    [guard]
    default = "safe"
    policies.safe.input = { pii = "pseudonymise", injection = "flag", toxicity = "flag" }
    policies.safe.output = { pii = "mask", toxicity = "block", system_prompt_leak = "block" }
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fondasi.guard.events import Action


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
        for stage in ("input", "output"):
            for name, action in getattr(self, stage).items():
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
        unknown = set(self.thresholds) - set(known)
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
