"""Backend factories, found through the ``fondasi.backends`` entry-point group.

fondasi's own backends are declared in its pyproject.toml exactly like a third-party
package would declare one, so there is one path for all of them. Loading them is the
generic plug-in registry's job (``fondasi.registry``); this module adds the one thing
backends need beyond a name: the priority order ``find`` walks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from fondasi.backends.base import BackendFactory, ModelSpec
from fondasi.errors import FondasiError
from fondasi.registry import Registry as PluginRegistry

ENTRY_POINT_GROUP = "fondasi.backends"


class NoBackendError(FondasiError):
    """No registered backend can load a model."""

    exit_code = 2


def _adopt(name: str, member: object) -> BackendFactory:
    # An entry point names a factory class (made here, once) or a ready factory.
    made = member() if isinstance(member, type) else member
    if not all(callable(getattr(made, method, None)) for method in ("claims", "load")):
        raise TypeError(f"{member!r} is not a backend factory (it needs claims and load)")
    return cast(BackendFactory, made)


# A plug-in that fails to import is logged and left out: one broken package must not
# take every other backend down with it.
FACTORIES: PluginRegistry[BackendFactory] = PluginRegistry(
    "backend", group=ENTRY_POINT_GROUP, adopt=_adopt
)


class Registry:
    """An ordered set of backend factories."""

    def __init__(self, factories: Iterable[BackendFactory]) -> None:
        self._factories = sorted(factories, key=lambda f: -f.priority)

    @classmethod
    def from_entry_points(cls) -> Registry:
        """Every factory installed packages declare, fondasi's own included."""
        return cls(FACTORIES.values())

    def names(self) -> list[str]:
        """Factory names, highest priority first."""
        return [factory.name for factory in self._factories]

    def find(self, spec: ModelSpec) -> BackendFactory:
        """The highest-priority factory that claims the spec."""
        for factory in self._factories:
            if factory.claims(spec):
                return factory
        raise NoBackendError(
            f"no backend can run {spec.id!r} ({spec.format} weights"
            f"{', ' + spec.hf_architecture if spec.hf_architecture else ''}); "
            f"installed backends: {', '.join(self.names()) or 'none'}"
        )
