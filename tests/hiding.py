"""Make an installed package look missing, to test what users without an extra see."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# A finder first on sys.meta_path that refuses the named top-level modules.
BLOCKER = """
import sys

class _Hidden:
    names = {names!r}

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _Hidden())
"""


class Hidden:
    """The in-process form: refuses ``names`` while installed on ``sys.meta_path``."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = set(names)

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        """Refuse the hidden modules; leave every other one to the next finder."""
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


@contextmanager
def hidden(*names: str) -> Iterator[None]:
    """Within the block, importing (or finding) these modules fails as if uninstalled."""
    blocker = Hidden(names)
    # find_spec answers from sys.modules before any finder: set imported ones aside too.
    loaded = {
        key: module for key, module in sys.modules.items() if key.split(".")[0] in blocker.names
    }
    for key in loaded:
        del sys.modules[key]
    sys.meta_path.insert(0, blocker)
    try:
        yield
    finally:
        sys.meta_path.remove(blocker)
        sys.modules.update(loaded)


def hidden_env(folder: Path, *names: str) -> dict[str, str]:
    """Environment for a subprocess in which these modules are missing (a sitecustomize)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(BLOCKER.format(names=set(names)), encoding="utf-8")
    return {"PYTHONPATH": str(folder)}
