"""Screening a dataset with a guard policy: every row's highest score per filter.

A dataset is screened before it trains or evaluates a model (``fondasi guard scan --data``).
Each row gets, per filter, the highest score anything in its chosen columns reached —
below the filter's threshold too, so a team can see how close ordinary rows come and sweep
the threshold afterwards — and which filters fired at the policy's own thresholds. A row
whose column is missing, not text, empty or binary is reported as such and the screen goes
on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fondasi.errors import BadInputError
from fondasi.guard.base import Finding, ScanContext
from fondasi.guard.classifier import is_classifier, operating_point
from fondasi.guard.policy import Policy

if TYPE_CHECKING:
    from fondasi.guard.events import Stage


@dataclass
class Screened:
    """One row's result: scores and fired filters, or why the row could not be read."""

    index: int
    where: str
    scores: dict[str, float] = field(default_factory=dict)
    fired: list[str] = field(default_factory=list)
    error: str | None = None

    def json(self) -> dict[str, Any]:
        """The JSON line written for the row (scores only, never the row's text)."""
        if self.error is not None:
            return {"row": self.index, "where": self.where, "error": self.error}
        return {
            "row": self.index,
            "where": self.where,
            "scores": {name: round(score, 4) for name, score in self.scores.items()},
            "fired": self.fired,
        }


@dataclass
class Summary:
    """What a screen found over the whole file, per filter."""

    filters: list[str]
    thresholds: dict[str, float]
    rows: int = 0
    bad: int = 0
    fired: dict[str, int] = field(default_factory=dict)
    highest: dict[str, float] = field(default_factory=dict)

    def add(self, result: Screened) -> None:
        """Count one row's result."""
        self.rows += 1
        if result.error is not None:
            self.bad += 1
            return
        for name in result.fired:
            self.fired[name] = self.fired.get(name, 0) + 1
        for name, score in result.scores.items():
            self.highest[name] = max(self.highest.get(name, 0.0), score)


class Screen:
    """A policy's filters for one stage, run with no threshold so every score shows."""

    def __init__(self, policy: Policy, stage: Stage = "input") -> None:
        chosen = policy.rules[stage]
        if not chosen:
            raise BadInputError(f"guard policy '{policy.name}' has no {stage} filters to scan with")
        self.stage = stage
        self.thresholds = {filt.name: filt.min_score for filt, _ in chosen}
        # The same filters and settings, every threshold at zero: the highest score of a row
        # is kept even where it stays under the policy's threshold.
        open_config = policy.config.model_copy(
            update={
                stage: dict.fromkeys(self.thresholds, "flag"),
                "thresholds": dict.fromkeys(self.thresholds, 0.0),
            }
        )
        self.open = Policy(policy.name, open_config, policy.settings)
        self.real = {filt.name: filt for filt, _ in chosen}  # whose thresholds decide "fired"

    def row(self, index: int, where: str, row: dict[str, Any], columns: Sequence[str]) -> Screened:
        """Screen one row's ``columns`` together."""
        result = Screened(index, where, scores=dict.fromkeys(self.thresholds, 0.0))
        fired: set[str] = set()
        for column in columns:
            value = row.get(column)
            if why := _unreadable(column, value):
                return Screened(index, where, error=why)
            assert isinstance(value, str)
            context = ScanContext(stage=self.stage)
            for item, _, filt in self.open.findings(value, self.stage, context):
                result.scores[filt.name] = max(result.scores[filt.name], item.score)
                if item.score > 0 and item.score >= self._floor(filt.name, item, value):
                    fired.add(filt.name)
        result.fired = [name for name in result.scores if name in fired]
        return result

    def _floor(self, name: str, item: Finding, text: str) -> float:
        """The score the policy itself needs for this finding: a classifier's finding needs
        the filter's operating point for the text's language, any other its threshold."""
        real = self.real[name]
        return operating_point(real, text) if is_classifier(item) else real.min_score

    def rows(
        self,
        rows: Sequence[dict[str, Any]],
        columns: Sequence[str],
        where: Callable[[int], str],
    ) -> Iterator[Screened]:
        """Every row's result, in order."""
        for index, row in enumerate(rows):
            yield self.row(index, where(index), row, columns)


def _unreadable(column: str, value: Any) -> str | None:
    """Why a row's value cannot be screened, or None."""
    if value is None:
        return f"no {column!r} value"
    if not isinstance(value, str):
        return f"{column!r} is {type(value).__name__}, not text"
    if not value.strip():
        return f"{column!r} is empty"
    if "\x00" in value:
        return f"{column!r} holds binary data"
    return None


def columns_for(available: Sequence[str], asked: Sequence[str] | None) -> list[str]:
    """The columns to screen: those asked for (each must exist), else ``text``."""
    from fondasi.registry import close_matches

    wanted = list(asked) if asked else ["text"]
    for name in wanted:
        if name not in available:
            near = close_matches(name, available)
            hint = f" (did you mean {', '.join(repr(n) for n in near)}?)" if near else ""
            shown = ", ".join(available) or "none"
            raise BadInputError(
                f"the data has no column {name!r}{hint}; its columns: {shown}"
                + ("" if asked else " (choose with --columns)")
            )
    return wanted


__all__ = ["Screen", "Screened", "Summary", "columns_for"]
