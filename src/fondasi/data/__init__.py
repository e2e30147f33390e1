"""Small datasets that ship with fondasi (Indonesian and English), and JSON Lines reading.

A package can add datasets through the ``fondasi.datasets`` entry-point group, each naming a
JSON Lines file (a ``Path``) or a module that calls ``DATASETS.register``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fondasi.errors import BadInputError
from fondasi.registry import Registry

BUNDLED = Path(__file__).parent
MAX_JSONL_BYTES = 200_000_000


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
    """Rows of a JSON Lines file; a bad line is an error naming its number."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BadInputError(f"no such file: {path}")
    if path.stat().st_size > MAX_JSONL_BYTES:
        raise BadInputError(f"{path} is over {MAX_JSONL_BYTES // 1_000_000} MB")
    rows: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path} is not UTF-8 text: {exc.reason}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInputError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise BadInputError(f"{path}:{number}: each line must be a JSON object")
        rows.append(row)
    if not rows:
        raise BadInputError(f"{path} has no rows")
    return rows
