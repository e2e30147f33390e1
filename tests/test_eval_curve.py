"""Learning curves in fondasi eval: samples of the train split, every learner refitted on
each, intervals over samples and test examples, a chart in the report; tune: candidates."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from fondasi.errors import BadInputError
from fondasi.evaluate import evaluate, parse_config, read
from fondasi.evaluate.config import CurveSpec
from fondasi.evaluate.curve import sizes_for, stratified
from fondasi.evaluate.datasets import Example
from fondasi.evaluate.stats import bootstrap_draws
from fondasi.settings import Settings
from fondasi.tune.for_eval import eval_tuner

from .browser import Browser
from .conftest import Cli

TRAIN_ROWS = 48


def config_text(folder: Path, *candidates: dict[str, Any], **extra: Any) -> str:
    body = {
        "name": "Kurva belajar sentimen",
        "task": "classification",
        "data": {"path": "bundled:sentiment3-id-dev", "limit": 30},
        "train": {"path": "bundled:sentiment3-id-train", "limit": TRAIN_ROWS},
        "candidates": list(candidates),
        "cache": str(folder / "cache.sqlite"),
        "bootstrap": 200,
        **extra,
    }
    return yaml.safe_dump(body, allow_unicode=True, sort_keys=False)


def rows(labels: str) -> list[Example]:
    return [Example(i, str(i), {"text": f"t{i}", "label": label}) for i, label in enumerate(labels)]


def test_samples_keep_every_label_in_proportion_and_differ_by_seed() -> None:
    train = rows("a" * 30 + "b" * 15 + "c" * 5)
    sample = stratified(train, 10, seed=0, field="label")
    assert len(sample) == 10
    assert Counter(e.fields["label"] for e in sample) == {"a": 6, "b": 3, "c": 1}
    assert [e.index for e in sample] == sorted(e.index for e in sample)
    assert sample == stratified(train, 10, seed=0, field="label")
    assert sample != stratified(train, 10, seed=1, field="label")
    tiny = stratified(train, 3, seed=0, field="label")  # a rare label still gets its one
    assert Counter(e.fields["label"] for e in tiny) == {"a": 1, "b": 1, "c": 1}
    assert stratified(train, 80, seed=0, field="label") == train


def test_sizes_stop_at_the_train_split_and_start_at_one_per_label() -> None:
    spec = CurveSpec(sizes=[2, 8, 64, 16, 500])
    assert spec.sizes == [2, 8, 16, 64, 500]
    assert sizes_for(spec, train=40, labels=3) == [8, 16, 40]
    with pytest.raises(ValueError, match="at least 2"):
        CurveSpec(sizes=[1, 8])


def test_the_interval_widens_when_samples_disagree() -> None:
    def accuracy(refs: Any, outs: Any) -> float:
        return float(sum(r == o for r, o in zip(refs, outs, strict=True))) / len(refs)

    references = ["a", "b"] * 20
    right, wrong = list(references), ["c"] * 40
    same = bootstrap_draws(accuracy, references, [right, right], 300, seed=0)
    split = bootstrap_draws(accuracy, references, [right, wrong], 300, seed=0)
    assert same is not None and split is not None
    assert same.low == same.high == 1.0
    assert split.low == 0.0 and split.high == 1.0


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Settings:
    return Settings.load(home=tmp_path_factory.mktemp("curve-home"), cache=model_cache)


@pytest.fixture(scope="module")
def curve_run(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, Path, str]:
    """Zero-shot e5 (flat), e5 few-shot and a linear head, SetFit on MiniLM, TF-IDF."""
    folder = tmp_path_factory.mktemp("curve")
    text = config_text(
        folder,
        {"model": "multilingual-e5-small"},
        {"model": "multilingual-e5-small", "shots": 6},
        {"model": "multilingual-e5-small", "head": "linear"},
        {"model": "all-minilm-l6-v2", "tune": "setfit", "name": "minilm setfit"},
        curve={"sizes": [6, 12], "draws": 2},
    )
    results, out = evaluate(
        parse_config(text), settings, folder / "out", tuner=eval_tuner(settings)
    )
    return results, out, text


def test_every_learner_is_refitted_on_each_sample(curve_run: tuple[Any, Path, str]) -> None:
    results, _, _ = curve_run
    curve = results.curve
    assert curve.metric == "accuracy" and curve.sizes == [6, 12, TRAIN_ROWS]
    names = {s.name: s for s in curve.series}
    assert set(names) == {
        "multilingual-e5-small · zero-shot",
        "multilingual-e5-small · few-shot k=6",
        "multilingual-e5-small · linear head",
        "minilm setfit",
        "baseline · TF-IDF + LR",
    }
    for series in curve.series:
        if not series.learns:
            continue
        assert [len(p.draws) for p in series.points] == [2, 2, 1]  # the whole split once
        for point in series.points:
            assert point.low is not None and point.high is not None
            assert point.low <= point.value <= point.high
            assert point.value == pytest.approx(sum(point.draws) / len(point.draws))
    # With the whole train split, a learner is the leaderboard's candidate itself.
    board = {c.name: c.metrics["accuracy"] for c in results.candidates}
    for name in ("multilingual-e5-small · linear head", "baseline · TF-IDF + LR", "minilm setfit"):
        assert names[name].points[-1].value == pytest.approx(board[name])
    flat = names["multilingual-e5-small · zero-shot"]
    assert not flat.learns
    assert {p.value for p in flat.points} == {board["multilingual-e5-small · zero-shot"]}
    assert any("labelled examples" in s for s in curve.summary)


def test_the_curve_is_kept_in_results_json(curve_run: tuple[Any, Path, str]) -> None:
    results, out, _ = curve_run
    again = read(out)
    assert again.curve == results.curve
    assert json.loads((out / "results.json").read_text())["curve"]["draws"] == 2


def test_tuned_models_are_kept_and_a_rerun_tunes_nothing(
    curve_run: tuple[Any, Path, str], settings: Settings
) -> None:
    results, out, text = curve_run
    tuned = sorted(p.name for p in (out / "curve").iterdir() if p.is_dir())
    assert tuned == [
        "minilm-setfit-12-0",
        "minilm-setfit-12-1",
        "minilm-setfit-6-0",
        "minilm-setfit-6-1",
    ]
    assert (out / "tuned" / "minilm-setfit" / "fondasi-tune.json").is_file()
    stamp = (out / "curve" / "minilm-setfit-6-0" / "fondasi-tune.json").stat().st_mtime
    again, _ = evaluate(parse_config(text), settings, out, tuner=eval_tuner(settings))
    assert (out / "curve" / "minilm-setfit-6-0" / "fondasi-tune.json").stat().st_mtime == stamp
    assert again.curve == results.curve
    assert all(c.computed == 0 for c in again.candidates if c.kind == "model")


def test_the_report_draws_the_curve_in_chromium(
    curve_run: tuple[Any, Path, str], tmp_path: Path
) -> None:
    _, out, _ = curve_run
    with Browser() as browser:
        page = browser.open(out / "report.html", screenshot=tmp_path / "report.png")
        assert page.console_errors == []
        assert page.count("svg.curve") == 1
        assert page.count("svg.curve polyline") == 5  # one line per series
        assert page.count("svg.curve polygon") == 4  # a band per learner, none for flat lines
        width, height = page.size("svg.curve")
        assert width > 500 and height > 200
        assert "Learning curve" in page.text()
        assert page.count("table.curve tbody tr") == 5


def test_tune_candidates_need_a_tuner(settings: Settings, tmp_path: Path) -> None:
    text = config_text(tmp_path, {"model": "all-minilm-l6-v2", "tune": "setfit"})
    with pytest.raises(BadInputError, match="tuning in an eval needs"):
        evaluate(parse_config(text), settings, tmp_path / "out")


def test_the_cli_draws_the_curve_and_says_what_a_bad_size_is(cli: Cli, tmp_path: Path) -> None:
    common = [
        "eval", "--models", "multilingual-e5-small", "--head", "linear", "--task",
        "classification", "--data", "bundled:sentiment3-id-dev", "--train",
        "bundled:sentiment3-id-train", "--limit", "20", "--no-baselines",
        "--cache", str(tmp_path / "cache.sqlite"),
    ]  # fmt: skip
    done = cli(*common, "--curve", "8,32", "--draws", "2", "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    assert "learning curve: accuracy" in done.stdout
    assert "(no labels)" in done.stdout  # zero-shot e5, flat
    bad = cli(*common, "--curve", "8,x")
    assert bad.returncode == 2
    assert "--curve takes sizes like 8,32,128" in bad.stderr
