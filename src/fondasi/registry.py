"""One registry for every plug-in family: backends, tuning methods, guard filters, eval
tasks, metrics, baselines, executors, drift signals, recommend criteria.

A family is a ``Registry[T]`` with a name people read ("tuning method") and an entry-point
group (``fondasi.tune_methods``). fondasi's own members register in their modules, which the
registry imports on first use; a third-party package adds one in its ``pyproject.toml``::

    [project.entry-points."fondasi.guard_filters"]
    my-filter = "my_package.filters:MyFilter"

An entry point may name the object itself (registered under the entry point's name) or a
module whose import registers what it holds. An unknown name gets the close ones suggested.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from difflib import get_close_matches
from importlib.metadata import entry_points
from types import ModuleType
from typing import Generic, TypeVar, overload

from fondasi.errors import UnknownChoiceError

T = TypeVar("T")
log = logging.getLogger(__name__)


def close_matches(name: str, names: Sequence[str], n: int = 3, cutoff: float = 0.5) -> list[str]:
    """The known names closest to ``name``: what an unknown-name error suggests."""
    exact = [known for known in names if known.lower() == name.lower()]
    return exact or get_close_matches(name, list(names), n=n, cutoff=cutoff)


def unknown(what: str, name: str, names: Sequence[str], cutoff: float = 0.5) -> UnknownChoiceError:
    """The error for ``name`` outside ``names``, with close matches suggested."""
    choices = sorted(names)
    return UnknownChoiceError(what, name, choices, close_matches(name, choices, cutoff=cutoff))


class Registry(Generic[T]):
    """Named members of one plug-in family, discovered from built-ins and entry points."""

    def __init__(self, what: str, group: str | None = None, builtins: Sequence[str] = ()) -> None:
        self.what = what  # how an error names a member: "tuning method"
        self.group = group  # entry-point group third-party packages add members through
        self.builtins = tuple(builtins)  # modules whose import registers fondasi's own
        self._members: dict[str, T] = {}
        self._discovered = False
        self._lock = threading.RLock()

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, member: T) -> T: ...

    def register(self, name: str, member: T | None = None) -> T | Callable[[T], T]:
        """Add ``member`` under ``name``; without a member, a decorator that adds one."""
        if member is not None:
            self._members[name] = member
            return member

        def add(decorated: T) -> T:
            self._members[name] = decorated
            return decorated

        return add

    def _discover(self) -> None:
        if self._discovered:
            return
        with self._lock:
            if self._discovered:
                return
            for module in self.builtins:
                importlib.import_module(module)
            if self.group:
                self._load_entry_points(self.group)
            self._discovered = True

    def _load_entry_points(self, group: str) -> None:
        # One broken plug-in package must not take every other member down with it.
        for entry in entry_points(group=group):
            if entry.name in self._members:
                continue
            try:
                loaded = entry.load()
            except Exception as exc:
                log.warning("%s %s (%s) could not be loaded: %s", self.what, entry.name, entry.value, exc)
                continue
            if not isinstance(loaded, ModuleType) and entry.name not in self._members:
                self._members[entry.name] = loaded

    def get(self, name: str) -> T:
        """The member called ``name``; an unknown name raises, suggesting close ones."""
        self._discover()
        try:
            return self._members[name]
        except KeyError:
            raise unknown(self.what, name, list(self._members)) from None

    def names(self) -> list[str]:
        """Every member's name, sorted."""
        self._discover()
        return sorted(self._members)

    def items(self) -> list[tuple[str, T]]:
        """(name, member) pairs in registration order."""
        self._discover()
        return list(self._members.items())

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._members

    def __iter__(self) -> Iterator[str]:
        self._discover()
        return iter(list(self._members))

    def __len__(self) -> int:
        self._discover()
        return len(self._members)
