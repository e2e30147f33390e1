"""The web dashboard at ``/ui``: server-rendered pages behind the same API keys as the API.

Log in with a key (a form that sets an HttpOnly, SameSite=Strict cookie); a server without
keys is open, as its API is. Pages: overview (volume, latency, tokens, cost, errors,
feedback, drift flags, recent requests), requests, drift, models (served, aliases, catalog)
and eval reports. Charts are inline SVG drawn here; no script, no CDN, works offline.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from fondasi.errors import BadInputError, UnknownChoiceError
from fondasi.monitor.drift_signals import user_text
from fondasi.server import ui_views as views
from fondasi.server.auth import state_of

router = APIRouter(prefix="/ui", include_in_schema=False)
COOKIE = "fondasi_key"
COOKIE_DAYS = 7
ASSETS = Path(__file__).parent / "ui"
PAGE_HEADERS = {
    # Everything the pages need comes from this server; nothing runs scripts.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; script-src 'none'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# Eval reports are self-contained pages with inline styles and data: images.
REPORT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "img-src data:; font-src data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
CONTENT_TYPES = {".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def _number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) < 0.001:
        return f"{value:.{digits}g}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _count(value: int | None) -> str:
    """135000000 -> 135M, 3470000000 -> 3.47B."""
    if value is None:
        return "-"
    for size, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if value >= size:
            return f"{value / size:.3g}{suffix}"
    return str(value)


@functools.cache
def _jinja() -> Environment:
    env = Environment(
        loader=FileSystemLoader(ASSETS / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=_when,
        when_short=lambda ts: _when(ts)[5:],  # 11-28 03:27:47: the year is rarely news
        ms=_ms,
        said=user_text,
        pct=lambda v: "-" if v is None else f"{v:.1%}",
        usd=lambda v: "-" if v is None else f"${v:.6f}".rstrip("0").rstrip("."),
        number=_number,
        count=_count,
        svg=Markup,  # charts are built with every text escaped (ui_charts)
    )
    return env


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page from ``ui/templates`` with the common context."""
    state = state_of(request)
    page = (
        _jinja()
        .get_template(template)
        .render(
            path=request.url.path,
            keys_required=state.keys_required,
            now=time.time(),
            windows=list(views.WINDOWS),
            **context,
        )
    )
    return HTMLResponse(page, status_code=status, headers=PAGE_HEADERS)


_CREATING = threading.Lock()


def _dashboard(request: Request) -> views.Dashboard:
    with _CREATING:  # pages run on worker threads: make one per app, not one per thread
        found = getattr(request.app.state, "fondasi_ui", None)
        if found is None:
            found = views.Dashboard(state_of(request).settings)
            request.app.state.fondasi_ui = found
    return found


def _secret(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.cookies.get(COOKIE) or request.headers.get("x-api-key") or None


def _viewer(request: Request) -> views.Viewer | Response:
    """The viewer, or a redirect to the login form."""
    state = state_of(request)
    if not state.keys_required:
        return views.Viewer(None)
    secret = _secret(request)
    key = state.key(secret) if secret else None
    if key is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        reason = "&expired=1" if secret else ""
        return RedirectResponse(f"/ui/login?next={quote(target)}{reason}", status_code=303)
    return views.Viewer(key)


def _page(
    request: Request, build: Callable[[views.Viewer], tuple[str, dict[str, Any]]]
) -> Response:
    viewer = _viewer(request)
    if isinstance(viewer, Response):
        return viewer
    try:
        template, context = build(viewer)
    except (UnknownChoiceError, views.NotFound) as exc:
        return render(request, "error.html", 404, viewer=viewer, message=str(exc))
    except BadInputError as exc:
        return render(request, "error.html", 400, viewer=viewer, message=str(exc))
    return render(request, template, viewer=viewer, **context)


@router.get("")
def overview_page(
    request: Request,
    window: str = "24h",
    model: str | None = None,
    recent: str | None = None,
    reference: str | None = None,
    alpha: str | None = None,
) -> Response:
    """Volume, latency, tokens, cost, errors, feedback, drift flags and recent requests."""

    def build(viewer: views.Viewer) -> tuple[str, dict[str, Any]]:
        state = state_of(request)
        chosen = views.check_model(state, viewer, model)
        drift = views.drift_config(recent, reference, _alpha(alpha))
        data = views.overview(state, _dashboard(request), viewer, window, chosen, drift)
        models = views.known_models(state, viewer)
        return "overview.html", {**data, "window": window, "model": chosen, "models": models}

    return _page(request, build)


@router.get("/requests")
def requests_page(
    request: Request,
    window: str = "24h",
    model: str | None = None,
    errors: str | None = None,
    limit: str = "100",
) -> Response:
    """Recent requests with their guard events."""

    def build(viewer: views.Viewer) -> tuple[str, dict[str, Any]]:
        state = state_of(request)
        chosen = views.check_model(state, viewer, model)
        seconds, _ = views.parse_window(window)
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            raise BadInputError(f"limit {limit!r}: give a number from 1 to 1000")
        rows = views.recent_requests(
            state, viewer, chosen, time.time() - seconds, int(limit), errors_only=bool(errors)
        )
        models = views.known_models(state, viewer)
        context = {"rows": rows, "window": window, "model": chosen, "models": models}
        return "requests.html", {**context, "errors": bool(errors), "limit": limit}

    return _page(request, build)


@router.get("/requests/{request_id}")
def request_page(request: Request, request_id: str) -> Response:
    """One request: its route, timings, tokens, texts (if logged) and every guard event."""

    def build(viewer: views.Viewer) -> tuple[str, dict[str, Any]]:
        found = state_of(request).store.request(request_id)
        if found is None or not viewer.may_see(found.model):
            raise views.NotFound(f"no logged request {request_id!r}")
        return "request.html", {"r": found}

    return _page(request, build)


def _alpha(text: str | None) -> float | None:
    if text in (None, ""):
        return None
    try:
        return float(str(text))
    except ValueError:
        raise BadInputError(f"alpha {text!r}: give a p-value threshold such as 0.01") from None


@router.get("/drift")
def drift_page(
    request: Request,
    model: str | None = None,
    recent: str | None = None,
    reference: str | None = None,
    alpha: str | None = None,
) -> Response:
    """Every drift signal of every model, with its test, statistic, p-value and windows."""

    def build(viewer: views.Viewer) -> tuple[str, dict[str, Any]]:
        state = state_of(request)
        chosen = views.check_model(state, viewer, model)
        config = views.drift_config(recent, reference, _alpha(alpha))
        names = [chosen] if chosen else [m for m in state.store.models() if viewer.may_see(m)]
        dash = _dashboard(request)
        checks = dash.drift(state, config, names)
        models = views.known_models(state, viewer)
        return "drift.html", {
            "checks": checks,
            "config": config,
            "model": chosen,
            "models": models,
            "embedder": dash.embedder_name,
            "embed_error": dash.embed_error,
        }

    return _page(request, build)


@router.get("/models")
def models_page(request: Request) -> Response:
    """Served models, aliases and their versions, and the model catalog."""
    return _page(
        request, lambda viewer: ("models.html", views.models_page(state_of(request), viewer))
    )


@router.get("/evals")
def evals_page(request: Request) -> Response:
    """Eval reports found under FONDASI_HOME/evals."""

    def build(viewer: views.Viewer) -> tuple[str, dict[str, Any]]:
        settings = state_of(request).settings
        return "evals.html", {
            "reports": views.eval_reports(settings),
            "root": views.evals_root(settings),
        }

    return _page(request, build)


@router.get("/evals/{path:path}")
def eval_file(request: Request, path: str) -> Response:
    """A file of an eval report folder (report.html, results.json ...)."""
    viewer = _viewer(request)
    if isinstance(viewer, Response):
        return viewer
    try:
        target = views.report_file(state_of(request).settings, path)
    except BadInputError as exc:
        return render(request, "error.html", 404, viewer=viewer, message=str(exc))
    return FileResponse(target, headers=REPORT_HEADERS)


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The dashboard's stylesheet and icons (public: they hold no data)."""
    files = {p.name: p for p in (ASSETS / "static").iterdir() if p.is_file()}
    if name not in files:
        return Response("not found", status_code=404, media_type="text/plain")
    kind = CONTENT_TYPES.get(files[name].suffix, "application/octet-stream")
    return FileResponse(files[name], media_type=kind, headers={"Cache-Control": "max-age=3600"})


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/ui") and not target.startswith("//"):
        return target
    return "/ui"


@router.get("/login")
def login_form(request: Request, next: str | None = None, expired: str | None = None) -> Response:
    """The login form (straight to the dashboard when the server has no keys)."""
    if not state_of(request).keys_required:
        return RedirectResponse(_safe_next(next), status_code=303)
    message = "Your key is no longer valid: log in again." if expired else None
    return render(request, "login.html", next=_safe_next(next), message=message, viewer=None)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the key; on success set the cookie and go on, else say why (401)."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    secret = (form.get("key") or [""])[0].strip()
    target = _safe_next((form.get("next") or [""])[0])
    state = state_of(request)
    if not state.keys_required:
        return RedirectResponse(target, status_code=303)
    if not secret:
        message = "Enter an API key (create one with `fondasi keys create NAME`)."
        return render(request, "login.html", 400, next=target, message=message, viewer=None)
    if state.key(secret) is None:
        message = (
            "That key is not valid or was revoked. Check it, or create a new one with "
            "`fondasi keys create NAME`."
        )
        return render(request, "login.html", 401, next=target, message=message, viewer=None)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        secret,
        max_age=COOKIE_DAYS * 86400,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout() -> Response:
    """Forget the key cookie."""
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
