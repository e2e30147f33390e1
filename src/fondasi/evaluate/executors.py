"""Where candidates run: in this process, or on a Ray cluster (extra ``[ray]``).

Executors register by name; a plug-in adds one through the ``fondasi.executors`` entry-point
group, naming a class (or any callable) that makes an ``Executor``. The Ray executor gives
each candidate an actor that loads the model once on a worker and predicts shards of
examples; the driver keeps the cache and the progress bars, so a Ray run resumes from the
same cache as a local one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from fondasi.evaluate.cache import PredictionCache
from fondasi.evaluate.execution import (
    Advance,
    CandidateRun,
    compute,
    describe,
    failed,
    load_model,
    plan,
    run_local,
)
from fondasi.registry import Registry

if TYPE_CHECKING:
    from fondasi.evaluate.config import CandidateSpec
    from fondasi.evaluate.tasks import Context, Task
    from fondasi.settings import Settings

Bars = Callable[[str, int], Advance]  # (label, total) -> advance function


class Executor(Protocol):
    """Runs every candidate and returns their records."""

    def run(
        self,
        task: Task,
        context: Context,
        cache: PredictionCache,
        settings: Settings,
        bars: Bars,
    ) -> list[CandidateRun]:
        """One ``CandidateRun`` per candidate, in config order."""


ExecutorFactory = Callable[[], Executor]


def _adopt(name: str, member: object) -> ExecutorFactory:
    if not callable(member):
        raise TypeError(f"{member!r} cannot make an executor: it is not callable")
    return member


EXECUTORS: Registry[ExecutorFactory] = Registry("executor", group="fondasi.executors", adopt=_adopt)


def register(name: str) -> Callable[[ExecutorFactory], ExecutorFactory]:
    """Make an executor available by name."""
    return EXECUTORS.register(name)


@register("local")
class LocalExecutor:
    """Candidates one after another in this process (each batched or concurrent)."""

    def run(
        self,
        task: Task,
        context: Context,
        cache: PredictionCache,
        settings: Settings,
        bars: Bars,
    ) -> list[CandidateRun]:
        runs = []
        for spec in context.config.candidates:
            advance = bars(spec.label, len(context.test))
            runs.append(run_local(task, spec, context, cache, settings, advance))
        return runs


class _Worker:
    """Ray actor body: one candidate's model, loaded once, predicting shards."""

    def __init__(self, task_name: str, spec: CandidateSpec, context: Context, settings: Any):
        from fondasi.evaluate.tasks import get_task

        self.task = get_task(task_name)
        self.spec = spec
        self.context = context
        self.plan = plan(self.task, spec, context, PredictionCache(None))
        start = time.perf_counter()
        self.error: str | None = None
        try:
            self.model = load_model(spec.model, settings)
            self.plan.predictor.setup(self.model)
        except Exception as exc:
            self.error = describe(exc)
        self.load_seconds = time.perf_counter() - start

    def info(self) -> tuple[str | None, float, bool]:
        return self.error, self.load_seconds, bool(self.error is None and self.model.remote)

    def predict(self, indices: list[int]) -> list[dict[str, Any]]:
        if self.error is not None:
            return [failed(self.error) for _ in indices]
        shard = type(self.plan)(self.plan.predictor, [str(i) for i in indices], {})
        sub = replace(self.context, test=[self.context.test[i] for i in indices])
        # The driver owns the real cache; the worker's is a no-op.
        rows = compute(shard, self.model, sub, PredictionCache(None), self.spec.label, _ignore)
        return [rows[j] for j in range(len(indices))]


def _ignore(count: int) -> None:
    """No progress bar on a worker."""


@register("ray")
class RayExecutor:
    """Every candidate at once on Ray: an actor each, examples sent in shards."""

    def run(
        self,
        task: Task,
        context: Context,
        cache: PredictionCache,
        settings: Settings,
        bars: Bars,
    ) -> list[CandidateRun]:
        from fondasi.extras import require

        ray = require("ray", "ray", "--executor ray")
        config = context.config
        started = not ray.is_initialized()
        if started:
            ray.init(
                address=config.ray_address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="ERROR",
                configure_logging=False,
            )
        try:
            return self._run(ray, task, context, cache, settings, bars)
        finally:
            if started:
                ray.shutdown()

    def _run(
        self,
        ray: Any,
        task: Task,
        context: Context,
        cache: PredictionCache,
        settings: Settings,
        bars: Bars,
    ) -> list[CandidateRun]:
        worker_class = ray.remote(num_cpus=0.5)(_Worker)
        context_ref = ray.put(context)
        jobs: dict[Any, tuple[int, list[int]]] = {}
        runs: list[CandidateRun] = []
        plans = []
        actors: list[Any] = []
        for number, spec in enumerate(context.config.candidates):
            advance = bars(spec.label, len(context.test))
            plan_ = plan(task, spec, context, cache)
            plans.append((plan_, advance))
            runs.append(CandidateRun(spec, [], cached=len(context.test) - len(plan_.todo)))
            advance(len(context.test) - len(plan_.todo))
            if not plan_.todo:
                actors.append(None)
                continue
            actor = worker_class.remote(task.name, spec, context_ref, settings)
            actors.append(actor)
            size = context.config.batch_size
            for start in range(0, len(plan_.todo), size):
                shard = plan_.todo[start : start + size]
                jobs[actor.predict.remote(shard)] = (number, shard)
        infos = {
            n: ray.get(actor.info.remote()) for n, actor in enumerate(actors) if actor is not None
        }
        done: dict[int, dict[int, dict[str, Any]]] = {n: {} for n in range(len(runs))}
        pending = list(jobs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            number, shard = jobs[ready[0]]
            rows = ray.get(ready[0])
            plan_, advance = plans[number]
            cache.put_many(
                runs[number].spec.label,
                {plan_.keys[i]: row for i, row in zip(shard, rows, strict=True)},
            )
            done[number].update(zip(shard, rows, strict=True))
            advance(len(shard))
        for number, run in enumerate(runs):
            plan_, _ = plans[number]
            if number in infos:
                error, run.load_seconds, run.remote = infos[number]
                run.computed = len(done[number]) if error is None else 0
                # Candidates share the cluster and their shards interleave, so throughput
                # comes from each example's time on its worker, not from the driver's clock.
                run.wall_seconds = 0.0
            run.records = [
                {**plan_.known[key], "cached": True} if key in plan_.known else done[number][i]
                for i, key in enumerate(plan_.keys)
            ]
        return runs


def executor(name: str) -> Executor:
    """The executor called ``name`` (local, ray, or one a plug-in adds)."""
    return EXECUTORS.get(name)()
