"""Run a real fondasi server (uvicorn on 127.0.0.1) in tests, over session-loaded models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fondasi.server import ServeConfig, build_state, create_app
from fondasi.server.state import ServerState
from fondasi.settings import Settings

from .fakes.serve import serve


@dataclass
class Running:
    """A started server: its base URL (``.../v1`` is the OpenAI base) and its state."""

    url: str
    state: ServerState

    @property
    def v1(self) -> str:
        """The base URL an OpenAI client takes."""
        return self.url + "/v1"

    def flush(self) -> None:
        """Wait until every log record so far is in the store."""
        assert self.state.writer.flush(timeout=30)


def loader_for(settings: Settings, loaded: dict[str, Any]) -> Callable[[str], Any]:
    """Models already loaded by the session fixtures, anything else loaded for real."""

    def load(ref: str) -> Any:
        if ref in loaded:
            return loaded[ref]
        import fondasi

        return fondasi.model(ref, settings)

    return load


@contextmanager
def running(settings: Settings, loaded: dict[str, Any], **config: Any) -> Iterator[Running]:
    """A real server on a free port until the block ends (then it shuts down cleanly)."""
    state = build_state(ServeConfig(**config), settings, loader_for(settings, loaded))
    with serve(create_app(state)) as url:
        yield Running(url, state)
