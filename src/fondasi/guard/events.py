"""What a guard reports: events that are safe to log, and the error a block raises."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fondasi.errors import BadInputError

Stage = Literal["input", "output"]
Action = Literal["flag", "mask", "pseudonymise", "block"]
ACTIONS: tuple[Action, ...] = ("flag", "mask", "pseudonymise", "block")


class GuardEvent(BaseModel):
    """One finding and what the policy did about it; never holds the text it found."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Stage = Field(description="input (before the model) or output (after it).")
    filter: str = Field(description="The filter that found it: pii, toxicity, injection ...")
    type: str = Field(description="What was found: NIK, EMAIL, toxicity, injection ...")
    action: Action = Field(description="flag, mask, pseudonymise or block.")
    start: int = Field(ge=0, description="Character offset where it starts, in that text.")
    end: int = Field(ge=0, description="Character offset where it ends (exclusive).")
    score: float = Field(ge=0.0, le=1.0, description="How sure the filter is, 0..1.")
    detail: str = Field(default="", description="A rule or pattern name (never the matched text).")
    part: int = Field(
        default=0, ge=0, description="Which message of a conversation (0 for plain text)."
    )

    def describe(self) -> str:
        """One line for a terminal or a log."""
        rule = f" ({self.detail})" if self.detail else ""
        return (
            f"{self.stage} {self.filter}: {self.type}{rule} at {self.start}-{self.end}, "
            f"score {self.score:.2f} -> {self.action}"
        )


class GuardBlockedError(BadInputError):
    """A guard policy refused a text; ``events`` says why, without the text itself."""

    def __init__(self, events: Sequence[GuardEvent], policy: str = "") -> None:
        self.events = list(events)
        self.policy = policy
        blocking = [event for event in self.events if event.action == "block"] or self.events
        reasons = ", ".join(sorted({f"{e.stage} {e.type} ({e.score:.2f})" for e in blocking}))
        name = f" {policy!r}" if policy else ""
        super().__init__(f"blocked by guard policy{name}: {reasons}")
