"""Running one candidate over the test examples: cache first, then batches or parallel calls.

Local models get batches (``batch_size`` examples a call, the call's time shared out per
example); prompted hosted models get one call per example on ``concurrency`` threads,
spaced to ``requests_per_minute`` (429s are retried by the client with Retry-After). A
batch that fails is retried example by example, so one bad example fails alone. A model
that cannot load fails every example with the reason, and the run goes on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fondasi.evaluate.cache import PredictionCache, cache_key
from fondasi.evaluate.tasks import Output, Predictor, Task

if TYPE_CHECKING:
    from fondasi.evaluate.config import CandidateSpec, EvalConfig
    from fondasi.evaluate.datasets import Example
    from fondasi.evaluate.tasks import Context
    from fondasi.models.handle import Model
    from fondasi.settings import Settings

Advance = Callable[[int], None]


@dataclass
class CandidateRun:
    """A candidate's records, one per test example, and how the run went."""

    spec: CandidateSpec
    records: list[dict[str, Any]]
    computed: int = 0
    cached: int = 0
    load_seconds: float | None = None
    wall_seconds: float = 0.0
    remote: bool = False
    notes: list[str] = field(default_factory=list)


def model_version(ref: str) -> Any:
    """A local folder's modification time, so a re-tuned model is not served from cache."""
    for prefix in ("tuned:", "hf:", "gguf:", "onnx:"):
        if ref.startswith(prefix):
            path = Path(ref.removeprefix(prefix)).expanduser()
            return path.stat().st_mtime if path.exists() else None
    return None


@dataclass
class Plan:
    """What is left to compute for a candidate."""

    predictor: Predictor
    keys: list[str]
    known: dict[str, dict[str, Any]]

    @property
    def todo(self) -> list[int]:
        """Indices of test examples without a cached prediction."""
        return [i for i, key in enumerate(self.keys) if key not in self.known]


def plan(task: Task, spec: CandidateSpec, context: Context, cache: PredictionCache) -> Plan:
    """The candidate's predictor, cache keys and cached records."""
    predictor = task.predictor(spec, context)
    model_part = [spec.model, model_version(spec.model), task.name]
    fingerprint = predictor.fingerprint()
    keys = [cache_key(model_part, fingerprint, example.digest) for example in context.test]
    return Plan(predictor, keys, cache.get_many(keys))


def failed(message: str) -> dict[str, Any]:
    """The record of an example whose call raised."""
    return {"output": None, "seconds": None, "tokens": None, "cost_usd": None, "error": message}


def describe(exc: BaseException) -> str:
    """An exception as one line."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def record(output: Output, seconds: float, model: Model) -> dict[str, Any]:
    """A prediction with its time, tokens and cost (local calls: hardware time)."""
    from fondasi.costs import local_cost

    cost = output.cost_usd
    if cost is None and not model.remote:
        cost = local_cost(seconds, model.usd_per_hour)
    return {
        "output": output.value,
        "seconds": seconds,
        "tokens": output.tokens,
        "cost_usd": cost,
        "error": None,
        "note": output.note,
        "local": not model.remote,  # priced at the current hardware rate when scored
    }


def predict_batch(
    predictor: Predictor, model: Model, examples: Sequence[Example]
) -> list[dict[str, Any]]:
    """Records for a batch; if the batch raises, each example is tried on its own."""
    start = time.perf_counter()
    try:
        outputs = predictor.predict(model, examples)
    except Exception as exc:
        if len(examples) == 1:
            return [failed(describe(exc))]
        return [row for example in examples for row in predict_batch(predictor, model, [example])]
    share = (time.perf_counter() - start) / max(len(examples), 1)
    return [record(output, share, model) for output in outputs]


class Limiter:
    """Spaces call starts to at most ``per_minute`` a minute, across threads."""

    def __init__(self, per_minute: float | None) -> None:
        self.gap = 60.0 / per_minute if per_minute else 0.0
        self.next = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next call may start."""
        if not self.gap:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next)
            self.next = start + self.gap
        time.sleep(max(0.0, start - now))


def compute(
    plan_: Plan,
    model: Model,
    context: Context,
    cache: PredictionCache,
    label: str,
    advance: Advance,
) -> dict[int, dict[str, Any]]:
    """Predict every example the cache lacks, storing each finished batch."""
    config: EvalConfig = context.config
    todo = plan_.todo
    done: dict[int, dict[str, Any]] = {}
    predictor = plan_.predictor

    def finish(indices: list[int], rows: list[dict[str, Any]]) -> None:
        for i, row in zip(indices, rows, strict=True):
            done[i] = row
        cache.put_many(label, {plan_.keys[i]: row for i, row in zip(indices, rows, strict=True)})
        advance(len(indices))

    if predictor.per_example and model.remote:
        limiter = Limiter(config.requests_per_minute)

        def one(i: int) -> tuple[int, dict[str, Any]]:
            limiter.wait()
            return i, predict_batch(predictor, model, [context.test[i]])[0]

        with ThreadPoolExecutor(max_workers=config.concurrency) as pool:
            for i, row in pool.map(one, todo):
                finish([i], [row])
        return done
    size = 1 if predictor.per_example else config.batch_size
    for start in range(0, len(todo), size):
        indices = todo[start : start + size]
        finish(indices, predict_batch(predictor, model, [context.test[i] for i in indices]))
    return done


def load_model(ref: str, settings: Settings) -> Model:
    """The exact model a candidate names (no fallbacks: a run measures one model)."""
    from fondasi.catalog.loader import Catalog
    from fondasi.models.load import load

    return load(ref, settings, Catalog.load(settings.card_dirs()))


def run_local(
    task: Task,
    spec: CandidateSpec,
    context: Context,
    cache: PredictionCache,
    settings: Settings,
    advance: Advance,
) -> CandidateRun:
    """One candidate in this process."""
    n = len(context.test)
    try:
        plan_ = plan(task, spec, context, cache)
    except Exception as exc:
        advance(n)
        return CandidateRun(spec, [failed(describe(exc)) for _ in range(n)])
    advance(n - len(plan_.todo))
    run = CandidateRun(spec, [], cached=n - len(plan_.todo))
    rows: dict[int, dict[str, Any]] = {}
    if plan_.todo:
        start = time.perf_counter()
        try:
            model = load_model(spec.model, settings)
            run.load_seconds = time.perf_counter() - start
            run.remote = model.remote
            plan_.predictor.setup(model)
        except Exception as exc:
            advance(len(plan_.todo))
            rows = {i: failed(describe(exc)) for i in plan_.todo}
        else:
            start = time.perf_counter()
            rows = compute(plan_, model, context, cache, spec.label, advance)
            run.wall_seconds = time.perf_counter() - start
            run.computed = len(rows)
    run.records = [
        {**plan_.known[key], "cached": True} if key in plan_.known else rows[i]
        for i, key in enumerate(plan_.keys)
    ]
    return run
