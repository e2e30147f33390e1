"""Evaluate several models and approaches on your own data, in one run, with one report.

    from fondasi.evaluate import evaluate, load_config
    results, folder = evaluate(load_config("eval.yaml"), fondasi.Settings.load())

Layout: ``config`` (what a run is), ``datasets`` (files and column mapping), ``tasks``
(registered tasks and how candidates predict), ``metrics``/``ranking`` (registered
metrics), ``baselines``, ``execution``/``executors`` (cache, batches, Ray), ``scoring``
and ``stats`` (intervals, the paired test, the verdict), ``results`` and ``report``
(the three output files).
"""

from __future__ import annotations

from fondasi.evaluate.config import CandidateSpec, DataSpec, EvalConfig, load_config, parse_config
from fondasi.evaluate.results import Results, RunSummary, compare, list_runs, read
from fondasi.evaluate.runner import evaluate

__all__ = [
    "CandidateSpec",
    "DataSpec",
    "EvalConfig",
    "Results",
    "RunSummary",
    "compare",
    "evaluate",
    "list_runs",
    "load_config",
    "parse_config",
    "read",
]
