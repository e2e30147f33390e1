"""What the dashboard pages show, gathered from the store, the catalog and the eval folder.

Pure data in, template context out; the routes in ``ui.py`` only check the viewer and render.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fondasi.errors import BadInputError, FondasiError
from fondasi.monitor.drift import DriftConfig, ModelDrift, check_all, load_embedder
from fondasi.monitor.records import KeyInfo
from fondasi.monitor.versions import Versions
from fondasi.registry import unknown
from fondasi.server.ui_charts import dashboard_charts

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from fondasi.server.state import ServerState
    from fondasi.settings import Settings

# Window name -> (seconds shown, bucket width in seconds).
WINDOWS = {
    "1h": (3600, 60),
    "6h": (6 * 3600, 300),
    "24h": (86400, 1800),
    "7d": (7 * 86400, 4 * 3600),
    "30d": (30 * 86400, 86400),
}
REPORT_FILES = {".html", ".json", ".jsonl", ".svg", ".png", ".csv", ".txt"}


class NotFound(BadInputError):
    """A page asked for something that is not there (answered with 404)."""


@dataclass
class Viewer:
    """Who is looking: their key (None on a server without keys) and what they may see."""

    key: KeyInfo | None

    def may_see(self, model: str | None) -> bool:
        """A key with a model allow-list sees only those models' traffic."""
        if self.key is None or self.key.models is None:
            return True
        return model in self.key.models


@dataclass
class Dashboard:
    """Per-app dashboard state: the drift embedder (loaded on first use) and its lock."""

    settings: Settings
    _embed: Any = None
    _embed_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def embedder_name(self) -> str:
        """The embedding model drift uses (the settings' ``embedding_model``)."""
        return self.settings.embedding_model

    @property
    def embed_error(self) -> str | None:
        """Why the embedding model could not be loaded, if it could not."""
        return self._embed_error

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Embed texts for drift, one call at a time (local models are not re-entrant)."""
        with self._lock:
            if self._embed is None:
                self._embed = load_embedder(self.embedder_name, self.settings)
            return self._embed(texts)  # type: ignore[no-any-return]

    def drift(
        self, state: ServerState, config: DriftConfig, models: Sequence[str]
    ) -> list[ModelDrift]:
        """Drift checks of ``models``; an embedder that fails to load leaves that signal n/a."""
        embed = None if self._embed_error else self.embed
        try:
            return check_all(state.store, config, embed, self.embedder_name, models)
        except (FondasiError, ImportError, OSError) as exc:
            self._embed_error = f"{type(exc).__name__}: {exc}"
            return check_all(state.store, config, None, self.embedder_name, models)


def parse_window(name: str) -> tuple[int, int]:
    """Seconds and bucket width of a window name."""
    if name not in WINDOWS:
        raise BadInputError(f"unknown window {name!r}: choose one of {', '.join(WINDOWS)}")
    return WINDOWS[name]


def drift_config(recent: str | None, reference: str | None, alpha: float | None) -> DriftConfig:
    """A drift config from the page's query (defaults where absent)."""
    return DriftConfig.of(recent=recent, reference=reference, alpha=alpha)


def known_models(state: ServerState, viewer: Viewer) -> list[str]:
    """Served names and every name with logged traffic that the viewer may see."""
    names = set(state.names()) | set(state.store.models())
    return sorted(name for name in names if viewer.may_see(name))


def check_model(state: ServerState, viewer: Viewer, model: str | None) -> str | None:
    """The model filter, if known; an unknown one raises naming close matches."""
    if model in (None, ""):
        return None
    known = known_models(state, viewer)
    if model not in known:
        raise unknown("model", str(model), known, cutoff=0.4, empty="(none yet)")
    return model


def overview(
    state: ServerState,
    dash: Dashboard,
    viewer: Viewer,
    window: str,
    model: str | None,
    drift: DriftConfig,
) -> dict[str, Any]:
    """Traffic, latency, tokens, cost, errors, feedback, drift and recent requests."""
    seconds, width = parse_window(window)
    now = time.time()
    since = now - seconds
    store = state.store
    summary = [s for s in store.summary(since=since, model=model) if viewer.may_see(s.model)]
    buckets = [
        b
        for b in store.timeseries(since=since, bucket_seconds=width, model=model)
        if viewer.may_see(b.model)
    ]
    requests = sum(s.requests for s in summary)
    errors = sum(s.errors for s in summary)
    drifts = dash.drift(state, drift, [s.model for s in summary])
    return {
        "summary": summary,
        "totals": {
            "requests": requests,
            "errors": errors,
            "error_rate": errors / requests if requests else 0.0,
            "tokens": sum(s.prompt_tokens + s.completion_tokens for s in summary),
            "cost": sum(s.cost_usd for s in summary),
            "up": sum(s.feedback_up for s in summary),
            "down": sum(s.feedback_down for s in summary),
            "flagged": sum(1 for d in drifts if d.flagged),
        },
        "charts": dashboard_charts(buckets, since, now, width),
        "drift": {d.model: d for d in drifts},
        "recent": recent_requests(state, viewer, model, since, limit=15),
        "feedback": [
            f for f in store.feedback(since=since, model=model, limit=30) if viewer.may_see(f.model)
        ][:10],
    }


def recent_requests(
    state: ServerState,
    viewer: Viewer,
    model: str | None,
    since: float | None,
    limit: int,
    errors_only: bool = False,
) -> list[Any]:
    """The newest requests the viewer may see, with their guard events."""
    fetch = limit if viewer.key is None or viewer.key.models is None else limit * 5
    rows = state.store.requests(since=since, model=model, errors_only=errors_only, limit=fetch)
    return [r for r in rows if viewer.may_see(r.model)][:limit]


def models_page(state: ServerState, viewer: Viewer) -> dict[str, Any]:
    """What is served, the aliases and their history, and the catalog."""
    from fondasi.api import load_catalog

    versions = Versions(state.store)
    aliases = [a for name, a in sorted(state.aliases().items()) if viewer.may_see(name)]
    return {
        "served": [m for m in state.config.models if viewer.may_see(m)],
        "loaded": set(state.pool.loaded),
        "aliases": aliases,
        "history": {a.name: versions.history(a.name)[-5:][::-1] for a in aliases},
        "catalog": sorted(load_catalog(state.settings), key=lambda c: (c.kind.value, c.id)),
    }


def evals_root(settings: Settings) -> Path:
    """Where ``fondasi eval`` writes its runs."""
    return settings.home / "evals"


def eval_reports(settings: Settings) -> list[dict[str, Any]]:
    """Folders under FONDASI_HOME/evals holding a report.html, newest first."""
    root = evals_root(settings)
    if not root.is_dir():
        return []
    found = []
    for depth in ("*/report.html", "*/*/report.html"):
        for report in root.glob(depth):
            folder = report.parent
            found.append(
                {
                    "name": folder.relative_to(root).as_posix(),
                    "modified": report.stat().st_mtime,
                    "files": sorted(
                        p.name for p in folder.iterdir() if p.suffix in REPORT_FILES and p.is_file()
                    ),
                }
            )
    return sorted(found, key=lambda r: r["modified"], reverse=True)


def report_file(settings: Settings, path: str) -> Path:
    """A file inside an eval report folder; anything else (``..``, caches) is refused."""
    root = evals_root(settings).resolve()
    target = (root / path).resolve()
    if (
        not target.is_relative_to(root)
        or not target.is_file()
        or target.suffix not in REPORT_FILES
        or not (target.parent / "report.html").is_file()
    ):
        raise BadInputError(f"no eval report file {path!r}")
    return target
