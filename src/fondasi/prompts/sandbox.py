"""Jinja2 in its immutable sandbox: templates are data from files, so they may not run code.

A template can read its variables and call the built-in filters; it cannot reach
attributes like ``__class__``, mutate objects or use undefined names or filters. Every
failure becomes a ``PromptError`` naming the template and the field it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from fondasi.errors import BadInputError


class PromptError(BadInputError):
    """A prompt template is malformed, or was rendered with the wrong variables."""


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    # Prompt text is not HTML: no autoescaping. StrictUndefined turns a misspelt variable
    # into an error instead of an empty string the model would silently never see.
    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
    )


@lru_cache(maxsize=512)
def _compiled(source: str) -> Any:
    return _environment().from_string(source)


def check(source: str, where: str) -> None:
    """Compile ``source`` once so syntax errors and unknown filters surface at load time."""
    from jinja2 import TemplateError

    try:
        _compiled(source)
    except TemplateError as exc:
        raise PromptError(f"{where}: {_reason(exc)}") from None


def render(source: str, where: str, variables: Mapping[str, Any]) -> str:
    """Render one template string with ``variables``; every failure is a ``PromptError``."""
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError

    check(source, where)
    try:
        return str(_compiled(source).render(**variables))
    except SecurityError as exc:
        raise PromptError(f"{where}: not allowed in a prompt template ({exc})") from None
    except TemplateError as exc:
        raise PromptError(f"{where}: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    line = getattr(exc, "lineno", None)
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{message} (line {line})" if line else message
