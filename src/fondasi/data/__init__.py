"""Small datasets that ship with fondasi (Indonesian and English), and JSON Lines reading.

A package can add datasets through the ``fondasi.datasets`` entry-point group, each naming a
JSON Lines file (a ``Path``) or a module that calls ``DATASETS.register``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fondasi.errors import BadInputError
from fondasi.registry import Registry

BUNDLED = Path(__file__).parent


def _adopt(name: str, member: object) -> Path:
    if not isinstance(member, str | Path):
        raise TypeError(f"{member!r} is not the path of a dataset file")
    path = Path(member)
    if not path.is_file():
        raise ValueError(f"dataset {name!r}: no such file {path}")
    return path


DATASETS: Registry[Path] = Registry("bundled dataset", group="fondasi.datasets", adopt=_adopt)


def _register_bundled() -> None:
    for path in sorted(BUNDLED.glob("*.jsonl")):
        DATASETS.register(path.stem, path)


_register_bundled()


def bundled(name: str) -> Path:
    """The path of a bundled dataset, e.g. ``sentiment-id``."""
    return DATASETS.get(name)


def read_jsonl(path: Path | str) -> list[dict[str, Any]]:
    """Rows of a data file (JSON Lines, or any format ``files.read_file`` reads); a bad line
    is an error naming its number."""
    from fondasi.data.files import read_file

    path = Path(path).expanduser()
    rows = list(read_file(path))
    if not rows:
        raise BadInputError(f"{path} has no rows")
    return rows
