"""Drift: is a model's recent traffic unlike what it saw before?

Per served model, a recent window of answered requests is compared with the window just
before it (each the latest N requests, or a span of time) on four registered signals:

input_embedding   the prompts' embeddings: MMD² with an RBF kernel (median bandwidth) and a
                  permutation-test p-value; the cosine shift of the mean embedding is shown
output_length     completion tokens: two-sample Kolmogorov-Smirnov test
refusal_rate      guard blocks and refusals in the answer text ("maaf, saya tidak bisa",
                  "I can't help"): Fisher's exact test on the two proportions
feedback_score    scored feedback (thumbs up = 1, down = 0): Mann-Whitney U test

A signal is flagged when its p-value is under its threshold (``alpha``). Windows with too
few samples are reported as such, never flagged.

Input embeddings are computed lazily from the logged (redacted) prompt text, the first time
a window is checked, and cached in the store (``drift_embeddings``): nothing is added to the
response path, and every request is embedded once. Without text logging (``log_text``) the
embedding signal is unavailable: keeping embeddings of prompts the operator chose not to
keep would leak much of the text (embeddings can be inverted), so fondasi does not.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from fondasi.errors import BadInputError
from fondasi.monitor.drift_signals import SIGNALS, Context, Embed, Signal, signal
from fondasi.monitor.drift_stats import mmd_test
from fondasi.monitor.records import Sample

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from fondasi.monitor.store import Store

SPAN = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_FETCH = 20_000


class Window(BaseModel):
    """A window of requests: the latest ``requests`` of them, or those of the last ``seconds``."""

    model_config = ConfigDict(frozen=True)

    requests: int | None = Field(default=None, description="The latest N requests.")
    seconds: float | None = Field(default=None, description="Or a span of time.")

    @classmethod
    def parse(cls, text: str) -> Window:
        """``200`` (requests) or ``1h`` / ``30m`` / ``7d`` (time)."""
        text = str(text).strip()
        if text.isdigit() and int(text) > 0:
            return cls(requests=int(text))
        match = SPAN.fullmatch(text)
        if match and float(match.group(1)) > 0:
            return cls(seconds=float(match.group(1)) * UNITS[match.group(2)])
        raise BadInputError(
            f"window {text!r}: give a number of requests (200) or a span (1h, 30m, 7d)"
        )

    def describe(self) -> str:
        """The window in words."""
        if self.requests is not None:
            return f"latest {self.requests} requests"
        seconds = self.seconds or 0
        for unit in ("w", "d", "h", "m"):
            if seconds >= UNITS[unit] and seconds % UNITS[unit] == 0:
                return f"{seconds / UNITS[unit]:g}{unit}"
        return f"{seconds:g}s"


class DriftConfig(BaseModel):
    """Windows, thresholds and the embedding model of a drift check."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recent: str = Field(
        default="200", description="The recent window: N requests ('200') or a span ('1h')."
    )
    reference: str = Field(
        default="1000", description="The window just before it: N requests or a span ('7d')."
    )
    alpha: float = Field(
        default=0.01, gt=0, lt=1, description="Flag a signal when its p-value is under this."
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="Per-signal p-value thresholds, over ``alpha``."
    )
    min_samples: int = Field(
        default=20, ge=2, description="Fewest requests in each window to test a signal."
    )
    min_feedback: int = Field(
        default=10, ge=2, description="Fewest rated requests in each window to test feedback."
    )
    max_embed: int = Field(
        default=100, ge=2, description="Most prompts per window embedded (the newest ones)."
    )
    permutations: int = Field(
        default=500, ge=50, le=20_000, description="Permutations of the embedding test."
    )
    embedder: str | None = Field(
        default=None, description="Embedding model; default: the settings' embedding_model."
    )
    seed: int = Field(default=0, description="Seed of the permutation test.")

    @field_validator("recent", "reference")
    @classmethod
    def _window(cls, value: str) -> str:
        Window.parse(value)
        return value

    @field_validator("thresholds")
    @classmethod
    def _known(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown signals {unknown}; known: {', '.join(SIGNALS)}")
        if any(not 0 < alpha < 1 for alpha in value.values()):
            raise ValueError("thresholds are p-values between 0 and 1")
        return value

    @model_validator(mode="after")
    def _sizes(self) -> DriftConfig:
        for window in (self.recent_window, self.reference_window):
            if window.requests is not None and window.requests < self.min_samples:
                raise ValueError(
                    f"a window of {window.requests} requests is under min_samples "
                    f"({self.min_samples})"
                )
        # A permutation test cannot give a p-value under 1/(permutations + 1).
        floor = 1 / (self.permutations + 1)
        if self.threshold("input_embedding") <= floor:
            raise ValueError(
                f"the input_embedding threshold {self.threshold('input_embedding'):g} is at or "
                f"under the smallest p-value {self.permutations} permutations can give "
                f"({floor:.2g}): use a larger threshold or more permutations"
            )
        return self

    @property
    def recent_window(self) -> Window:
        """The recent window, parsed."""
        return Window.parse(self.recent)

    @property
    def reference_window(self) -> Window:
        """The reference window, parsed."""
        return Window.parse(self.reference)

    def threshold(self, signal: str) -> float:
        """The p-value under which ``signal`` is flagged."""
        return self.thresholds.get(signal, self.alpha)

    @classmethod
    def of(cls, **given: Any) -> DriftConfig:
        """A config from user input (None and '' mean the default); one clear error if bad."""
        try:
            return cls(**{k: v for k, v in given.items() if v not in (None, "")})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            message = str(first["msg"]).removeprefix("Value error, ")
            raise BadInputError(
                f"drift {where}: {message}" if where else f"drift: {message}"
            ) from None


class WindowInfo(BaseModel):
    """What one window held."""

    spec: str = Field(description="The window in words.")
    requests: int
    start: float | None = Field(description="Oldest request's time.")
    end: float | None = Field(description="Newest request's time.")


class ModelDrift(BaseModel):
    """One served model's drift check."""

    model: str
    checked: float = Field(description="When the check ran.")
    recent: WindowInfo
    reference: WindowInfo
    signals: list[Signal]

    @property
    def flagged(self) -> list[str]:
        """Names of the flagged signals."""
        return [s.name for s in self.signals if s.flagged]


# windows and checks -----------------------------------------------------------------


def windows(
    store: Store, model: str, config: DriftConfig, now: float
) -> tuple[list[Sample], list[Sample]]:
    """The reference and recent windows of ``model`` (each newest first), read separately so
    neither reads more rows than it holds (a span holds at most ``MAX_FETCH``, the newest)."""
    recent_w, reference_w = config.recent_window, config.reference_window
    until = now + 1e-6
    if recent_w.requests is not None:
        recent = store.samples(model, until=until, limit=recent_w.requests)
        boundary = recent[-1].ts if recent else until
    else:
        boundary = now - (recent_w.seconds or 0)
        recent = store.samples(model, since=boundary, until=until, limit=MAX_FETCH)
    # The reference ends where the recent window begins.
    if reference_w.requests is not None:
        reference = store.samples(model, until=boundary, limit=reference_w.requests)
    else:
        since = boundary - (reference_w.seconds or 0)
        reference = store.samples(model, since=since, until=boundary, limit=MAX_FETCH)
    return reference, recent


def _info(window: Window, samples: Sequence[Sample]) -> WindowInfo:
    return WindowInfo(
        spec=window.describe(),
        requests=len(samples),
        start=samples[-1].ts if samples else None,
        end=samples[0].ts if samples else None,
    )


def check(
    store: Store,
    model: str,
    config: DriftConfig | None = None,
    embed: Embed | None = None,
    embedder: str = "embedder",
    now: float | None = None,
) -> ModelDrift:
    """Compare ``model``'s recent window with its reference window on every signal."""
    config = config or DriftConfig()
    now = time.time() if now is None else now
    recent_w, reference_w = config.recent_window, config.reference_window
    reference, recent = windows(store, model, config, now)
    ctx = Context(config, store, embed, config.embedder or embedder)
    return ModelDrift(
        model=model,
        checked=now,
        recent=_info(recent_w, recent),
        reference=_info(reference_w, reference),
        signals=[fn(reference, recent, ctx) for fn in SIGNALS.values()],
    )


def check_all(
    store: Store,
    config: DriftConfig | None = None,
    embed: Embed | None = None,
    embedder: str = "embedder",
    models: Sequence[str] | None = None,
    now: float | None = None,
) -> list[ModelDrift]:
    """A drift check of every model with logged requests (or of ``models``)."""
    names = list(models) if models is not None else store.models()
    return [check(store, name, config, embed, embedder, now) for name in names]


def load_embedder(name: str, settings: Any) -> Embed:
    """The local embedding model ``name`` as a texts -> vectors function (queries' side).

    Hosted embedding models are refused: drift reads logged prompts, which stay here."""
    from fondasi.models.load import load

    handle = load(name, settings)
    if handle.remote:
        raise BadInputError(
            f"drift embeds logged prompts on this machine, and {name!r} is a hosted model: "
            "set embedding_model to a local one (multilingual-e5-small, all-minilm-l6-v2)"
        )

    def embed(texts: list[str]) -> npt.NDArray[np.float32]:
        return handle.embed(texts, "query")

    return embed


__all__ = [
    "SIGNALS",
    "DriftConfig",
    "ModelDrift",
    "Signal",
    "Window",
    "WindowInfo",
    "check",
    "check_all",
    "load_embedder",
    "mmd_test",
    "signal",
]
