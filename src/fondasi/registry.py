"""One registry for every plug-in family: backends, tuning methods, guard filters, eval
tasks, metrics, baselines, executors, drift signals, recommend criteria, example selectors,
model-package locators and bundled datasets.

A family is a ``Registry[T]`` with a name people read ("guard filter") and an entry-point
group (``fondasi.guard_filters``). fondasi's own members register in their modules, which the
registry imports on first use; a third-party package adds one in its ``pyproject.toml``::

    [project.entry-points."fondasi.guard_filters"]
    my-filter = "my_package.filters:MyFilter"

An entry point may name the object itself (registered under the entry point's name, after
the family's ``adopt`` check) or a module whose import registers what it holds. A plug-in
that fails to load is logged and left out; it cannot replace a built-in member. An unknown
name gets the close ones suggested. ``docs/plugins.md`` lists every group.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from difflib import get_close_matches
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Generic, TypeVar, cast, overload

from fondasi.errors import UnknownChoiceError

T = TypeVar("T")
log = logging.getLogger(__name__)


def close_matches(name: str, names: Sequence[str], n: int = 3, cutoff: float = 0.5) -> list[str]:
    """The known names closest to ``name``: what an unknown-name error suggests."""
    exact = [known for known in names if known.lower() == name.lower()]
    return exact or get_close_matches(name, list(names), n=n, cutoff=cutoff)


def unknown(
    what: str,
    name: str,
    names: Iterable[str],
    cutoff: float = 0.5,
    *,
    n: int = 3,
    empty: str = "(none)",
) -> UnknownChoiceError:
    """The error for ``name`` outside ``names``, with close matches suggested.

    ``empty`` stands in for the choices when there are none, so the message never ends in
    an empty list.
    """
    choices = sorted(names)
    close = close_matches(name, choices, n=n, cutoff=cutoff)
    return UnknownChoiceError(what, name, choices or [empty], close)


def instances_of(kind: type[T], what: str) -> Callable[[str, object], T]:
    """An ``adopt`` check for members that are ``kind`` objects named as registered: a class
    is made into its one instance, anything else is refused."""

    def adopt(name: str, member: object) -> T:
        made = member() if isinstance(member, type) and issubclass(member, kind) else member
        if not isinstance(made, kind):
            raise TypeError(f"{member!r} is not a {kind.__module__}.{kind.__qualname__}")
        called = getattr(made, "name", name)
        if called != name:
            raise ValueError(f"the {what} calls itself {called!r}, not {name!r}")
        return made

    return adopt


class Registry(Generic[T]):
    """Named members of one plug-in family, discovered from built-ins and entry points."""

    def __init__(
        self,
        what: str,
        group: str | None = None,
        builtins: Sequence[str] = (),
        adopt: Callable[[str, object], T] | None = None,
    ) -> None:
        self.what = what  # how an error names a member: "guard filter"
        self.group = group  # entry-point group third-party packages add members through
        self.builtins = tuple(builtins)  # modules whose import registers fondasi's own
        # Checks (and may complete) every member; an entry point gives an untyped object.
        self._adopt = adopt
        self._members: dict[str, T] = {}
        self._plugins: set[str] = set()  # names entry points added; ``reset`` drops them
        self._discovered = False
        self._discovering = False
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, group={self.group!r})"

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, member: T) -> T: ...

    def register(self, name: str, member: T | None = None) -> T | Callable[[T], T]:
        """Add ``member`` under ``name`` and return it; without one, a decorator that adds."""
        if member is not None:
            self._members[name] = self._checked(name, member)
            return member

        def add(decorated: T) -> T:
            self._members[name] = self._checked(name, decorated)
            return decorated

        return add

    def _checked(self, name: str, member: object) -> T:
        return self._adopt(name, member) if self._adopt is not None else cast(T, member)

    def _discover(self) -> None:
        # No lock around ``register``: a module that registers while another thread
        # discovers must not wait on this lock while holding its import lock.
        if self._discovered:
            return
        with self._lock:
            if self._discovered or self._discovering:
                return  # a built-in module looked a member up while being imported
            self._discovering = True
            try:
                for module in self.builtins:
                    importlib.import_module(module)
                if self.group:
                    for entry in entry_points(group=self.group):
                        self._load(entry)
                self._discovered = True
            finally:
                self._discovering = False

    def _load(self, entry: EntryPoint) -> None:
        # One broken plug-in package must not take every other member down with it.
        if entry.name in self._members:
            log.warning(
                "%s %s (%s) is ignored: a member of that name is already registered",
                self.what,
                entry.name,
                entry.value,
            )
            return
        before = dict(self._members)
        failed = False
        try:
            loaded = entry.load()
            if not isinstance(loaded, ModuleType):
                self._members[entry.name] = self._checked(entry.name, loaded)
        except Exception as exc:
            failed = True
            log.warning(
                "%s %s (%s) could not be loaded: %s", self.what, entry.name, entry.value, exc
            )
        added = set(self._members) - set(before)
        if failed:  # what a module registered before it broke goes too
            for name in added:
                del self._members[name]
            added = set()
        for name, member in before.items():
            if self._members.get(name) is not member:
                log.warning("%s %s: a plug-in cannot replace it (%s)", self.what, name, entry.value)
                self._members[name] = member
        self._plugins.update(added)

    def reset(self) -> None:
        """Forget what entry points added; the next lookup reads them again.

        Built-in members stay. Tests use this around a fake plug-in; a plug-in that is a
        module also has to leave ``sys.modules`` for its import to register again.
        """
        with self._lock:
            for name in self._plugins:
                self._members.pop(name, None)
            self._plugins.clear()
            self._discovered = False

    def get(self, name: str) -> T:
        """The member called ``name``; an unknown name raises, suggesting close ones."""
        self._discover()
        try:
            return self._members[name]
        except KeyError:
            raise unknown(self.what, name, list(self._members)) from None

    __getitem__ = get

    def names(self) -> list[str]:
        """Every member's name, sorted."""
        self._discover()
        return sorted(self._members)

    def items(self) -> list[tuple[str, T]]:
        """(name, member) pairs in registration order."""
        self._discover()
        return list(self._members.items())

    def values(self) -> list[T]:
        """Members in registration order."""
        self._discover()
        return list(self._members.values())

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._members

    def __iter__(self) -> Iterator[str]:
        self._discover()
        return iter(list(self._members))

    def __len__(self) -> int:
        self._discover()
        return len(self._members)
