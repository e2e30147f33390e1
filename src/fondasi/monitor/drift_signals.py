"""Drift signals, registered by name: each compares a reference and a recent window of
samples and returns a ``Signal`` (test, statistic, p-value, threshold, verdict).

A new signal is a function decorated with ``@signal("name")``, or one a plug-in names in the
``fondasi.drift_signals`` entry-point group; ``DriftConfig.thresholds`` and every check pick
it up.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from fondasi.monitor import drift_cache
from fondasi.monitor.drift_stats import ks_test, mmd_test, proportion_test, rank_test
from fondasi.monitor.records import Sample
from fondasi.registry import Registry

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from fondasi.monitor.drift import DriftConfig
    from fondasi.monitor.store import Store

Embed = Callable[[list[str]], "npt.NDArray[np.float32]"]
EMBED_BATCH = 32
MAX_TEXT_CHARS = 2000

# Openings of refusals, English and Indonesian, matched in the first part of an answer.
REFUSALS = (
    "i can't help",
    "i cannot help",
    "i can't assist",
    "i cannot assist",
    "i can't provide",
    "i cannot provide",
    "i'm unable to",
    "i am unable to",
    "i'm sorry, but i",
    "i won't be able",
    "as an ai",
    "maaf, saya tidak bisa",
    "maaf, saya tidak dapat",
    "saya tidak bisa membantu",
    "saya tidak dapat membantu",
    "tidak dapat membantu",
    "tidak bisa membantu",
    "saya tidak boleh",
    "mohon maaf, saya tidak",
    "sebagai ai",
)


class Signal(BaseModel):
    """One drift signal: its test, statistic, p-value, threshold and verdict."""

    name: str = Field(description="input_embedding, output_length, refusal_rate ...")
    test: str = Field(description="The statistical test, in words.")
    statistic: float | None = Field(description="The test statistic (None when not tested).")
    p_value: float | None = Field(description="Its p-value (None when not tested).")
    threshold: float = Field(description="Flagged when the p-value is under this.")
    flagged: bool
    reference_n: int = Field(description="Samples the reference window gave this signal.")
    recent_n: int = Field(description="Samples the recent window gave this signal.")
    reference_value: float | None = Field(default=None, description="Reference mean or rate.")
    recent_value: float | None = Field(default=None, description="Recent mean or rate.")
    note: str | None = Field(default=None, description="Why it was not tested, or an effect.")

    @property
    def status(self) -> str:
        """drift, ok or n/a."""
        if self.p_value is None:
            return "n/a"
        return "drift" if self.flagged else "ok"


@dataclass
class Context:
    """What a signal gets besides its two windows."""

    config: DriftConfig
    store: Store | None
    embed: Embed | None
    embedder: str


SignalFn = Callable[[Sequence[Sample], Sequence[Sample], Context], Signal]


def _adopt(name: str, member: object) -> SignalFn:
    if not callable(member):
        raise TypeError(f"{member!r} is not a drift signal function")
    return member


# Checked in registration order: the built-ins below, then plug-ins.
SIGNALS: Registry[SignalFn] = Registry("drift signal", group="fondasi.drift_signals", adopt=_adopt)


def signal(name: str) -> Callable[[SignalFn], SignalFn]:
    """Register a drift signal under ``name``."""
    return SIGNALS.register(name)


def _untested(name: str, test: str, ctx: Context, ref: int, rec: int, note: str) -> Signal:
    return Signal(
        name=name,
        test=test,
        statistic=None,
        p_value=None,
        threshold=ctx.config.threshold(name),
        flagged=False,
        reference_n=ref,
        recent_n=rec,
        note=note,
    )


def _tested(name: str, test: str, ctx: Context, stat: float, p: float, **rest: Any) -> Signal:
    threshold = ctx.config.threshold(name)
    p = p if math.isfinite(p) else 1.0
    return Signal(
        name=name,
        test=test,
        statistic=stat,
        p_value=p,
        threshold=threshold,
        flagged=p < threshold,
        **rest,
    )


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def input_text(sample: Sample) -> str | None:
    """What the user sent: the last user turn of a chat, else the logged prompt."""
    return user_text(sample.prompt_text)


def user_text(text: str | None) -> str | None:
    """The last user turn of a logged chat (JSON messages), else the logged text itself."""
    if not text:
        return None
    if text.startswith("["):
        try:
            turns = json.loads(text)
        except json.JSONDecodeError:
            turns = None
        if isinstance(turns, list):
            contents = [
                (t.get("role"), str(t.get("content", ""))) for t in turns if isinstance(t, dict)
            ]
            said = [content for role, content in contents if role == "user"]
            text = (said or [content for _, content in contents] or [text])[-1]
    return text.strip()[:MAX_TEXT_CHARS] or None


def embeddings(samples: Sequence[Sample], ctx: Context) -> npt.NDArray[np.float32]:
    """Vectors of the samples' input texts: cached ones from the store, the rest embedded."""
    import numpy as np

    texts = {s.id: t for s in samples if (t := input_text(s)) is not None}
    known = drift_cache.load(ctx.store.engine, ctx.embedder, list(texts)) if ctx.store else {}
    missing = [s for s in samples if s.id in texts and s.id not in known]
    if missing and ctx.embed is not None:
        fresh: dict[str, tuple[float, npt.NDArray[np.float32]]] = {}
        for start in range(0, len(missing), EMBED_BATCH):
            chunk = missing[start : start + EMBED_BATCH]
            vectors = np.asarray(ctx.embed([texts[s.id] for s in chunk]), dtype=np.float32)
            for sample, vector in zip(chunk, vectors, strict=True):
                fresh[sample.id] = (sample.ts, vector)
                known[sample.id] = vector
        if ctx.store is not None:
            drift_cache.save(ctx.store.engine, ctx.embedder, fresh)
    rows = [known[s.id] for s in samples if s.id in known]
    return np.vstack(rows) if rows else np.zeros((0, 0), dtype=np.float32)


@signal("input_embedding")
def input_embedding(ref: Sequence[Sample], rec: Sequence[Sample], ctx: Context) -> Signal:
    """Prompt embeddings: MMD² with a permutation p-value."""
    import numpy as np

    test = f"MMD² (RBF) permutation test on {ctx.embedder} embeddings"
    limit = ctx.config.max_embed
    ref, rec = list(ref)[:limit], list(rec)[:limit]  # newest first: keep the newest
    with_text = [sum(input_text(s) is not None for s in w) for w in (ref, rec)]
    if min(with_text) < ctx.config.min_samples:
        unlogged = max(with_text) == 0 and len(ref) + len(rec) > 0
        why = (
            "prompt text is not logged (serve with --log-text)"
            if unlogged
            else f"too few logged prompts (need {ctx.config.min_samples} per window)"
        )
        return _untested("input_embedding", test, ctx, with_text[0], with_text[1], why)
    x, y = embeddings(ref, ctx), embeddings(rec, ctx)
    if min(len(x), len(y)) < ctx.config.min_samples:
        return _untested(
            "input_embedding", test, ctx, len(x), len(y), "embedding model unavailable"
        )
    stat, p = mmd_test(x, y, ctx.config.permutations, ctx.config.seed)
    a, b = x.mean(axis=0), y.mean(axis=0)
    shift = 1.0 - float(a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))
    return _tested(
        "input_embedding",
        test,
        ctx,
        stat,
        p,
        reference_n=len(x),
        recent_n=len(y),
        note=f"mean-embedding cosine shift {shift:.4f}",
    )


@signal("output_length")
def output_length(ref: Sequence[Sample], rec: Sequence[Sample], ctx: Context) -> Signal:
    """Completion tokens: Kolmogorov-Smirnov."""
    test = "Kolmogorov-Smirnov on completion tokens"
    a = [float(s.completion_tokens) for s in ref if not s.guard_blocked]
    b = [float(s.completion_tokens) for s in rec if not s.guard_blocked]
    if min(len(a), len(b)) < ctx.config.min_samples:
        note = f"too few answers (need {ctx.config.min_samples} per window)"
        return _untested("output_length", test, ctx, len(a), len(b), note)
    if not any(a) and not any(b):
        return _untested("output_length", test, ctx, len(a), len(b), "no generated text")
    stat, p = ks_test(a, b)
    return _tested(
        "output_length",
        test,
        ctx,
        stat,
        p,
        reference_n=len(a),
        recent_n=len(b),
        reference_value=_mean(a),
        recent_value=_mean(b),
    )


def refused(sample: Sample) -> bool:
    """A guard block, or an answer that opens like a refusal (English or Indonesian)."""
    if sample.guard_blocked:
        return True
    head = (sample.response_text or "")[:300].lower().replace("’", "'")
    return any(phrase in head for phrase in REFUSALS)


@signal("refusal_rate")
def refusal_rate(ref: Sequence[Sample], rec: Sequence[Sample], ctx: Context) -> Signal:
    """Guard blocks and refusals: Fisher's exact test on the two rates."""
    test = "Fisher's exact test on guard blocks + refusals"
    if min(len(ref), len(rec)) < ctx.config.min_samples:
        note = f"too few requests (need {ctx.config.min_samples} per window)"
        return _untested("refusal_rate", test, ctx, len(ref), len(rec), note)
    hits_a, hits_b = sum(map(refused, ref)), sum(map(refused, rec))
    stat, p = proportion_test(hits_a, len(ref), hits_b, len(rec))
    return _tested(
        "refusal_rate",
        test,
        ctx,
        stat,
        p,
        reference_n=len(ref),
        recent_n=len(rec),
        reference_value=hits_a / len(ref),
        recent_value=hits_b / len(rec),
    )


def feedback_value(sample: Sample) -> float | None:
    """A sample's feedback on a 0..1 scale: its score, else thumbs up 1 / down 0."""
    if sample.score is not None:
        return float(sample.score)
    if sample.rating is not None and sample.rating != 0:
        return 1.0 if sample.rating > 0 else 0.0
    return None


@signal("feedback_score")
def feedback_score(ref: Sequence[Sample], rec: Sequence[Sample], ctx: Context) -> Signal:
    """Feedback scores: Mann-Whitney U."""
    test = "Mann-Whitney U on feedback (up = 1, down = 0, or the score)"
    a = [v for s in ref if (v := feedback_value(s)) is not None]
    b = [v for s in rec if (v := feedback_value(s)) is not None]
    if min(len(a), len(b)) < ctx.config.min_feedback:
        note = f"too little feedback (need {ctx.config.min_feedback} per window)"
        return _untested("feedback_score", test, ctx, len(a), len(b), note)
    stat, p = rank_test(a, b)
    return _tested(
        "feedback_score",
        test,
        ctx,
        stat,
        p,
        reference_n=len(a),
        recent_n=len(b),
        reference_value=_mean(a),
        recent_value=_mean(b),
    )
