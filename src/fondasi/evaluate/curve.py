"""Learning curves: how quality grows with the number of labelled examples.

At each size, ``draws`` stratified samples of the train split; every candidate that learns
from the train split (few-shot examples, a head, tuning) and every baseline that fits one
(TF-IDF + logistic regression) is given each sample and scored on the run's test examples.
A point is the mean over draws; its interval a bootstrap over both the sample drawn and the
test examples met. Candidates that learn nothing from labels are flat lines at their result:
what a model gives with no labelled data at all.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fondasi.evaluate.execution import compute, describe, load_model, plan
from fondasi.evaluate.results import Curve, CurvePoint, CurveSeries
from fondasi.evaluate.stats import bootstrap_draws
from fondasi.models.load import memoised

if TYPE_CHECKING:
    from fondasi.evaluate.baselines import Baseline
    from fondasi.evaluate.cache import PredictionCache
    from fondasi.evaluate.config import CandidateSpec, CurveSpec
    from fondasi.evaluate.datasets import Example
    from fondasi.evaluate.metrics import Chosen
    from fondasi.evaluate.results import CandidateResult
    from fondasi.evaluate.tasks import Context, Task
    from fondasi.settings import Settings

# Tunes ``spec.model`` with ``spec.tune`` on the examples into the folder; the model ref to
# evaluate. Given by the layer that owns tuning (the CLI, the API), as evaluate cannot reach it.
Tuner = Callable[["CandidateSpec", Sequence["Example"], Path], str]
Bars = Callable[[str, int], Callable[[int], None]]
ROUNDS = 500  # bootstrap rounds per point: a curve has many points


def sizes_for(spec: CurveSpec, train: int, labels: int) -> list[int]:
    """The sizes a train split of ``train`` rows allows: at least one example per label, and
    the whole split last."""
    return sorted({size for size in spec.sizes if labels <= size < train} | {train})


def stratified(train: Sequence[Example], size: int, seed: int, field: str | None) -> list[Example]:
    """``size`` examples with each label in proportion, every label at least once."""
    if size >= len(train):
        return list(train)
    rng = random.Random(seed)
    groups: dict[str, list[Example]] = {}
    for example in train:
        groups.setdefault(str(example.fields.get(field, "")) if field else "", []).append(example)
    for group in groups.values():
        rng.shuffle(group)
    share = {key: max(1, round(size * len(group) / len(train))) for key, group in groups.items()}
    while sum(share.values()) > size:  # rounding up made too many: trim the largest share
        share[max(share, key=lambda key: share[key])] -= 1
    while sum(share.values()) < size:  # too few: grow the share with the most left over
        key = max(groups, key=lambda key: len(groups[key]) - share[key])
        share[key] += 1
    picked = [example for key, group in groups.items() for example in group[: share[key]]]
    return sorted(picked, key=lambda example: example.index)


class Memo:
    """A model whose embeddings are kept by text, so samples of one split embed it once."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._by_purpose: dict[Any, Any] = {}  # purpose -> the model's embed, memoised

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def embed(self, texts: Any, purpose: Any = None) -> np.ndarray[Any, Any]:
        """The model's vectors, each text embedded once per purpose."""
        if purpose not in self._by_purpose:
            self._by_purpose[purpose] = memoised(
                lambda batch: self._model.embed(batch, purpose), most=1_000_000
            )
        rows: np.ndarray[Any, Any] = self._by_purpose[purpose](texts)
        return rows


def slug(text: str) -> str:
    """A folder name for a candidate."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "candidate"


class CurveRun:
    """Computes one run's curve: the samples, then each series."""

    def __init__(
        self,
        task: Task,
        context: Context,
        head: Chosen,
        cache: PredictionCache,
        settings: Settings,
        folder: Path,
        tuner: Tuner | None,
    ) -> None:
        spec = context.config.curve
        assert spec is not None
        self.task, self.context, self.head, self.cache = task, context, head, cache
        self.settings, self.folder, self.tuner, self.spec = settings, folder, tuner, spec
        field = "label" if "label" in task.needed else None
        self.sizes = sizes_for(spec, len(context.train), max(len(context.labels), 1))
        seed = context.config.seed
        self.samples = {
            size: [
                stratified(context.train, size, seed + draw, field)
                for draw in range(spec.draws if size < len(context.train) else 1)
            ]
            for size in self.sizes
        }
        self.references = [e.fields[task.reference_field] for e in context.test]
        self.failures: list[str] = []  # samples a candidate failed on, said in the summary

    def work(self, learners: int) -> int:
        """Predictions the curve will need, for the progress bar."""
        return learners * sum(len(s) for s in self.samples.values()) * len(self.context.test)

    def point(self, size: int, draws: list[list[Any]]) -> CurvePoint:
        """Mean over draws, and the interval over draws and test examples."""
        values = [float(self.head(self.references, outputs)) for outputs in draws]
        rounds = min(ROUNDS, self.context.config.bootstrap)
        interval = bootstrap_draws(
            self.head, self.references, draws, rounds, self.context.config.seed
        )
        return CurvePoint(
            size=size,
            value=sum(values) / len(values),
            low=interval.low if interval else None,
            high=interval.high if interval else None,
            draws=values,
        )

    def candidate(self, spec: CandidateSpec, advance: Callable[[int], None]) -> CurveSeries:
        """A learning candidate given each sample; a failure scores as wrong answers."""
        loaded: list[Any] = []  # the model, loaded at its first need and kept for every sample
        points = []
        for size, samples in self.samples.items():
            draws = [
                self._outputs(spec, sample, loaded, advance, f"{size}-{number}")
                for number, sample in enumerate(samples)
            ]
            points.append(self.point(size, draws))
        return CurveSeries(name=spec.label, kind="model", learns=True, points=points)

    def _outputs(
        self,
        spec: CandidateSpec,
        sample: list[Example],
        loaded: list[Any],
        advance: Callable[[int], None],
        where: str,
    ) -> list[Any]:
        context = dataclasses.replace(self.context, train=sample)
        n = len(context.test)
        try:
            if spec.tune:  # each sample tunes its own model
                ref = self._tuned(spec, sample, where)
                spec = spec.model_copy(update={"model": ref, "tune": None, "name": spec.label})
                loaded = []
            plan_ = plan(self.task, spec, context, self.cache)
            advance(n - len(plan_.todo))
            rows: dict[int, dict[str, Any]] = {}
            if plan_.todo:
                if not loaded:
                    loaded.append(Memo(load_model(spec.model, self.settings)))
                plan_.predictor.setup(loaded[0])
                rows = compute(plan_, loaded[0], context, self.cache, spec.label, advance)
        except Exception as exc:  # the series shows the failure as wrong answers, the run goes on
            advance(n)
            self.failures.append(f"{spec.label} with {len(sample)} examples: {describe(exc)}")
            return [None] * n
        return [
            plan_.known[key].get("output") if key in plan_.known else rows[i].get("output")
            for i, key in enumerate(plan_.keys)
        ]

    def _tuned(self, spec: CandidateSpec, sample: list[Example], where: str) -> str:
        if self.tuner is None:
            from fondasi.errors import BadInputError

            raise BadInputError(f"{spec.label}: tuning needs the CLI or the Python API")
        if len(sample) == len(self.context.train):  # the run's own tuned model: no second tuning
            return self.tuner(spec, sample, self.folder / "tuned" / slug(spec.label))
        return self.tuner(spec, sample, self.folder / "curve" / f"{slug(spec.label)}-{where}")

    def baseline(self, baseline: Baseline) -> CurveSeries:
        """A baseline fitted on each sample."""
        points = []
        for size, samples in self.samples.items():
            draws = []
            for sample in samples:
                baseline.fit(dataclasses.replace(self.context, train=sample))
                draws.append(baseline.predict(self.context.test))
            points.append(self.point(size, draws))
        return CurveSeries(name=baseline.label, kind="baseline", learns=True, points=points)

    def flat(self, result: CandidateResult) -> CurveSeries:
        """A candidate that learns nothing from labels: its result at every size."""
        low, high = (result.ci.low, result.ci.high) if result.ci else (None, None)
        value = result.metrics[self.head.name]
        return CurveSeries(
            name=result.name,
            kind="model",
            learns=False,
            points=[CurvePoint(size=s, value=value, low=low, high=high) for s in self.sizes],
        )


def learning_curve(
    task: Task,
    context: Context,
    head: Chosen,
    results: Sequence[CandidateResult],
    baselines: Sequence[Baseline],
    cache: PredictionCache,
    settings: Settings,
    folder: Path,
    bars: Bars,
    tuner: Tuner | None = None,
) -> Curve:
    """The run's learning curve, as its ``curve`` section asks."""
    spec = context.config.curve
    assert spec is not None
    run = CurveRun(task, context, head, cache, settings, folder, tuner)
    wanted = set(spec.candidates) if spec.candidates is not None else None
    chosen = [c for c in context.config.candidates if wanted is None or c.label in wanted]
    learners = [c for c in chosen if c.learns]
    advance = bars("learning curve", run.work(len(learners)))
    series = [run.candidate(spec_, advance) for spec_ in learners]
    series += [run.baseline(b) for b in baselines if b.learns]
    flat = {c.label for c in chosen if not c.learns}
    series += [run.flat(r) for r in results if r.kind == "model" and r.name in flat]
    curve = Curve(
        metric=head.name,
        sizes=run.sizes,
        draws=spec.draws,
        train_rows=len(context.train),
        series=series,
    )
    curve.summary = summarise(curve) + [f"failed: {line}" for line in run.failures]
    return curve


def summarise(curve: Curve) -> list[str]:
    """The curve in sentences: who leads with the fewest labels and with all of them."""
    learning = [s for s in curve.series if s.learns]
    if not learning:
        return []
    sentences = []
    for at in dict.fromkeys([0, len(curve.sizes) - 1]):
        ranked = sorted(curve.series, key=lambda s: -s.points[at].value)
        best, size = ranked[0], curve.sizes[at]
        line = f"With {size} labelled examples, {best.name} leads: {_shown(best.points[at])}"
        if len(ranked) > 1:
            second = ranked[1].points[at]
            overlap = best.points[at].low is not None and second.high is not None
            overlap = overlap and (best.points[at].low or 0.0) <= (second.high or 0.0)
            line += f", ahead of {ranked[1].name} ({_shown(second)})"
            line += "; their intervals overlap" if overlap else ""
        sentences.append(line + ".")
    return sentences


def _shown(point: CurvePoint) -> str:
    if point.low is None or point.high is None:
        return f"{point.value:.3f}"
    return f"{point.value:.3f} [{point.low:.3f}–{point.high:.3f}]"


__all__ = ["Memo", "Tuner", "learning_curve", "sizes_for", "stratified", "summarise"]
