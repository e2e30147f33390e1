"""OpenAI-shaped errors: ``{"error": {"message", "type", "code", "param"}}`` with the right status.

Every failure a client can see goes through here, so the official SDKs raise the exception
they would raise against OpenAI (``NotFoundError``, ``RateLimitError`` ...).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fondasi.errors import BadInputError, FondasiError, MissingExtraError, UnknownModelError


class APIError(Exception):
    """An error answered to the client as OpenAI would."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "code": self.code,
                "param": self.param,
            }
        }


def from_fondasi(exc: FondasiError) -> APIError:
    """The API error for a fondasi error raised by a model or the core."""
    from fondasi.backends.remote import ProviderError

    blocked = _guard_blocked(exc)
    if blocked:
        return APIError(400, str(exc), "invalid_request_error", "content_filter")
    if isinstance(exc, UnknownModelError):
        return APIError(404, str(exc), "invalid_request_error", "model_not_found", "model")
    if isinstance(exc, BadInputError) and not isinstance(exc, MissingExtraError):
        return APIError(400, str(exc), "invalid_request_error", "invalid_value")
    if isinstance(exc, ProviderError):
        if exc.status == 429:  # the provider's own rate limit: pass its wait on to the client
            wait = {"Retry-After": str(max(1, round(exc.retry_after or 1)))}
            return APIError(429, str(exc), "rate_limit_error", "upstream_rate_limited", None, wait)
        return APIError(502, str(exc), "upstream_error", "upstream_failed")
    return APIError(500, str(exc), "server_error", "internal_error")


def _guard_blocked(exc: Exception) -> bool:
    try:
        from fondasi.guard import GuardBlockedError  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return False
    return isinstance(exc, GuardBlockedError)


def _respond(request: Request, error: APIError) -> JSONResponse:
    request.state.error = f"{error.code or error.type}: {error.message}"[:2000]
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(where) or None
    message = first.get("msg", "invalid request")
    return (f"{param}: {message}" if param else str(message)), param


def install(app: FastAPI) -> None:
    """Answer every error in the OpenAI shape."""

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return _respond(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        call = getattr(request.state, "call", None)
        body = exc.body if isinstance(exc.body, dict) else {}
        if call is not None and isinstance(body.get("model"), str):
            call.model = body["model"][:200]
        return _respond(request, APIError(400, message, code="invalid_value", param=param))

    @app.exception_handler(FondasiError)
    async def fondasi_error(request: Request, exc: FondasiError) -> JSONResponse:
        return _respond(request, from_fondasi(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        error = APIError(exc.status_code, str(exc.detail), code=codes.get(exc.status_code))
        return _respond(request, error)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        # Unexpected: the class name helps a bug report; the traceback stays in the log.
        error = APIError(500, f"internal error: {type(exc).__name__}", "server_error")
        return _respond(request, error)
