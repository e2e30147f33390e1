"""Third-party plug-ins, the way pip installs them: a ``*.dist-info`` folder with
``entry_points.txt`` beside the package, on ``sys.path``, read by ``importlib.metadata``."""

from __future__ import annotations

import logging
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fondasi.backends.packages import LOCATORS
from fondasi.backends.registry import FACTORIES
from fondasi.data import DATASETS
from fondasi.errors import UnknownChoiceError
from fondasi.evaluate.baselines import BASELINES
from fondasi.evaluate.config import parse_config
from fondasi.evaluate.executors import EXECUTORS
from fondasi.evaluate.metrics import METRICS, choose
from fondasi.evaluate.tasks import TASKS
from fondasi.guard import FILTERS, GuardBlockedError, PolicyConfig, load_policy
from fondasi.guard.pii import PiiFilter
from fondasi.monitor import RequestRecord, Store
from fondasi.monitor.drift import DriftConfig, check
from fondasi.monitor.drift_signals import SIGNALS
from fondasi.prompts.select import SELECTORS
from fondasi.recommend.criteria import CRITERIA
from fondasi.registry import Registry
from fondasi.settings import Settings

FAMILIES: list[Registry[Any]] = [
    FACTORIES,
    FILTERS,
    TASKS,
    METRICS,
    BASELINES,
    EXECUTORS,
    SIGNALS,
    CRITERIA,
    SELECTORS,
    LOCATORS,
    DATASETS,
]
MODULES = ("fondasi_demo_plugin", "fondasi_broken_plugin", "fondasi_half_plugin")
DOCS = Path(__file__).parent.parent / "docs" / "plugins.md"
NOW = 1_800_000_000.0

DEMO = '''
import re

from fondasi.guard import Filter, Finding
from fondasi.monitor.drift_signals import Signal
from fondasi.monitor.drift_stats import proportion_test


class Shouting(Filter):
    """Words in capitals: the user is shouting."""

    summary = "words written in capitals"
    stages = frozenset({"input"})
    actions = frozenset({"flag", "block"})

    def scan(self, text, context):
        return [
            Finding("SHOUTING", m.start(), m.end(), filter=self.name)
            for m in re.finditer(r"\\b[A-Z]{4,}\\b", text)
        ]


def exclamation_rate(ref, rec, ctx):
    """Answers with an exclamation mark: Fisher's exact test on the two rates."""
    hits = [sum("!" in (s.response_text or "") for s in w) for w in (ref, rec)]
    stat, p = proportion_test(hits[0], len(ref), hits[1], len(rec))
    threshold = ctx.config.threshold("exclamation_rate")
    return Signal(
        name="exclamation_rate", test="Fisher's exact test", statistic=stat, p_value=p,
        threshold=threshold, flagged=p < threshold, reference_n=len(ref), recent_n=len(rec),
    )


NOT_A_SIGNAL = "a string is no signal"
'''

DEMO_METRICS = """
from fondasi.evaluate.metrics import metric


@metric("classification", "balanced_accuracy", "recall averaged over the reference classes")
def balanced_accuracy(references, outputs, k):
    classes = sorted({str(r) for r in references})
    recalls = []
    for label in classes:
        rows = [i for i, r in enumerate(references) if str(r) == label]
        recalls.append(sum(str(outputs[i]) == label for i in rows) / len(rows))
    return sum(recalls) / len(recalls)
"""

HALF = """
from fondasi.evaluate.metrics import metric


@metric("classification", "half_metric", "registered by a module that then breaks")
def half_metric(references, outputs, k):
    return 0.0


raise RuntimeError("the half plug-in breaks after registering")
"""


def distribution(root: Path, name: str, entry_points: str) -> None:
    """A ``*.dist-info`` folder as pip writes it: METADATA and entry_points.txt."""
    info = root / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points).lstrip())


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Two plug-in distributions installed on ``sys.path``: one good, one broken."""
    site = tmp_path / "site-packages"
    package = site / "fondasi_demo_plugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(DEMO)
    (package / "metrics.py").write_text(DEMO_METRICS)
    (site / "fondasi_broken_plugin.py").write_text('raise ImportError("needs a missing library")\n')
    (site / "fondasi_half_plugin.py").write_text(HALF)
    distribution(
        site,
        "fondasi-demo-plugin",
        """
        [fondasi.guard_filters]
        shouting = fondasi_demo_plugin:Shouting

        [fondasi.metrics]
        demo-metrics = fondasi_demo_plugin.metrics

        [fondasi.drift_signals]
        exclamation_rate = fondasi_demo_plugin:exclamation_rate
        """,
    )
    distribution(
        site,
        "fondasi-broken-plugin",
        """
        [fondasi.guard_filters]
        broken = fondasi_broken_plugin:Filter
        pii = fondasi_demo_plugin:Shouting

        [fondasi.metrics]
        half = fondasi_half_plugin

        [fondasi.drift_signals]
        not_a_signal = fondasi_demo_plugin:NOT_A_SIGNAL
        """,
    )
    monkeypatch.syspath_prepend(str(site))  # also invalidates the import caches
    for family in FAMILIES:
        family.reset()
    yield site
    for module in [name for name in sys.modules if name.startswith(MODULES)]:
        del sys.modules[module]
    monkeypatch.undo()  # off sys.path before the registries look again
    for family in FAMILIES:
        family.reset()


def test_a_plugin_filter_works_in_a_configured_policy(plugins: Path, home: Path) -> None:
    assert FILTERS.get("shouting").name == "shouting"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        '[guard]\npolicies.calm.input = { shouting = "block", pii = "mask" }\n'
        "policies.calm.classifier = false\n"
    )
    policy = load_policy(Settings.load(), "calm")
    assert policy is not None
    assert policy.check("tolong dibantu ya", "input").events == []
    with pytest.raises(GuardBlockedError, match="input SHOUTING"):
        policy.check("TOLONG dibantu SEKARANG", "input")
    with pytest.raises(ValueError, match="Did you mean: shouting"):
        PolicyConfig(input={"shoutng": "flag"})


def test_a_fresh_process_finds_the_plugin_without_help(plugins: Path, cli: Any) -> None:
    done = cli("guard", "policies", env={"PYTHONPATH": str(plugins)})
    assert done.returncode == 0, done.stderr
    assert "shouting" in done.stdout and "words written in capitals" in done.stdout
    assert "needs a missing library" in done.stderr  # the broken one is named, not fatal


def test_a_plugin_metric_is_chosen_by_name_and_by_an_eval_config(plugins: Path) -> None:
    balanced = choose("classification", "balanced_accuracy")
    # a: 1 of 2 right, b: 2 of 2 right -> (0.5 + 1) / 2.
    assert balanced(["a", "a", "b", "b"], ["a", "b", "b", "b"]) == pytest.approx(0.75)
    config = parse_config(
        "task: classification\ndata: {path: bundled:eval-topic-id}\n"
        "metrics: [balanced_accuracy, accuracy]\ncandidates: [{model: multilingual-e5-small}]\n"
    )
    assert config.metrics == ["balanced_accuracy", "accuracy"]
    with pytest.raises(UnknownChoiceError, match="Did you mean: balanced_accuracy"):
        choose("classification", "balanced_acuracy")


def test_a_plugin_drift_signal_runs_in_every_check(plugins: Path, tmp_path: Path) -> None:
    records = [
        RequestRecord(
            id=f"chatcmpl-{n}",
            ts=NOW - 1000 + n,
            route="chat",
            model="bot",
            status=200,
            latency_ms=50.0,
            completion_tokens=8,
            response_text="Tentu, begini caranya!" if n >= 20 else "Tentu, begini caranya.",
        )
        for n in range(40)
    ]
    store = Store(str(tmp_path / "logs.db"))
    try:
        store.write(records)
        config = DriftConfig(recent="20", reference="20", thresholds={"exclamation_rate": 0.05})
        result = check(store, "bot", config, now=NOW)
    finally:
        store.close()
    by_name = {s.name: s for s in result.signals}
    assert list(by_name) == list(SIGNALS) and "exclamation_rate" in by_name
    assert by_name["exclamation_rate"].flagged and "exclamation_rate" in result.flagged


def test_a_broken_plugin_is_logged_and_skipped(
    plugins: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="fondasi.registry"):
        filters, metrics, signals = FILTERS.names(), METRICS.names(), SIGNALS.names()
    assert "shouting" in filters and "broken" not in filters
    assert FILTERS.get("pii") is PiiFilter  # a plug-in cannot replace a built-in
    assert "classification/balanced_accuracy" in metrics
    assert "classification/half_metric" not in metrics  # what it registered before breaking
    assert "exclamation_rate" in signals and "not_a_signal" not in signals
    logged = caplog.text
    assert "guard filter broken (fondasi_broken_plugin:Filter) could not be loaded" in logged
    assert "needs a missing library" in logged
    assert "guard filter pii (fondasi_demo_plugin:Shouting) is ignored" in logged
    assert "metric half (fondasi_half_plugin) could not be loaded" in logged
    assert "drift signal not_a_signal" in logged and "not a drift signal function" in logged


def test_unknown_names_suggest_close_ones(plugins: Path) -> None:
    with pytest.raises(UnknownChoiceError, match="Did you mean: shouting"):
        FILTERS.get("shoutin")
    with pytest.raises(UnknownChoiceError, match="unknown drift signal 'exclamation'"):
        SIGNALS.get("exclamation")
    with pytest.raises(UnknownChoiceError, match="Did you mean: classification"):
        TASKS.get("clasification")


def test_reset_forgets_the_plugins(plugins: Path) -> None:
    assert "shouting" in FILTERS
    for module in [name for name in sys.modules if name.startswith(MODULES)]:
        del sys.modules[module]
    sys.path.remove(str(plugins))
    FILTERS.reset()
    assert "shouting" not in FILTERS and "pii" in FILTERS


def test_every_group_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    groups = [family.group for family in FAMILIES]
    assert len(set(groups)) == len(groups)
    for group in groups:
        assert f"`{group}`" in text, f"{group} is missing from docs/plugins.md"
