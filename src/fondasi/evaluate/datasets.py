"""Examples from a data file or folder (``fondasi.data.files``), with a column mapping.

A task names the fields it needs (``text`` and ``label`` for classification); the config
maps each field to a column of the user's file. A missing column lists the columns the
file has, so the user can fix the mapping. A folder of splits is scored on its test split
(its dev split when it has no test); ``split="train"`` reads its train split, the one
``fondasi tune`` trains on.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fondasi.data import files
from fondasi.data.files import EVAL_READS, Rows, Split
from fondasi.errors import BadInputError
from fondasi.evaluate.config import DataSpec


@dataclass(frozen=True)
class Example:
    """One test example: the task's fields, by field name, and where it came from."""

    index: int  # row number in the file, from 0
    id: str
    fields: dict[str, Any]

    @property
    def digest(self) -> str:
        """A hash of the example's content: part of its cache key."""
        text = json.dumps(self.fields, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:24]


def source_path(spec: DataSpec) -> Path:
    """The file or folder a data spec points at (bundled:NAME is a file in the package)."""
    if spec.path.startswith("bundled:"):
        from fondasi.data import bundled

        return bundled(spec.path.removeprefix("bundled:"))
    path = Path(spec.path).expanduser()
    if not path.exists():
        raise BadInputError(f"no such data file or folder: {path}")
    return path


def read_rows(path: Path, split: Split | None = None) -> Rows:
    """Every row of a data file, or of a folder's ``split`` (default: test, else dev)."""
    return files.read_rows(path, (split,) if split else EVAL_READS)


def splits_in(spec: DataSpec) -> list[Split]:
    """The splits of the folder a spec points at (none for a file)."""
    return files.splits_in(source_path(spec))


def load_examples(
    spec: DataSpec,
    needed: Sequence[str],
    optional: Sequence[str] = (),
    what: str = "data",
    split: Split | None = None,
) -> list[Example]:
    """The examples of ``spec`` with the task's fields taken from the mapped columns."""
    path = source_path(spec)
    rows = read_rows(path, split)
    if not rows:
        raise BadInputError(f"{what} {rows.source or path} has no rows: nothing to evaluate")
    unknown = sorted(set(spec.columns) - {*needed, *optional, "id"})
    if unknown:
        raise BadInputError(
            f"{what} columns: {', '.join(unknown)} is not a field of this task; "
            f"map these fields: {', '.join([*needed, *optional])}"
        )
    present = rows.columns or list(rows[0])
    for field in needed:
        column = spec.columns.get(field, field)
        if column not in rows[0]:
            mapped = f" (mapped from {field!r})" if column != field else ""
            raise BadInputError(
                f"{what} {rows.source}: no column {column!r}{mapped}; the columns are: "
                f"{', '.join(present)}. Map it with columns: {{{field}: COLUMN}}"
            )
    examples = []
    id_column = spec.columns.get("id", "id")
    for index, row in enumerate(rows[: spec.limit] if spec.limit else rows):
        fields: dict[str, Any] = {}
        for field in [*needed, *optional]:
            column = spec.columns.get(field, field)
            if column in row:
                fields[field] = row[column]
            elif field in needed:
                raise BadInputError(f"{what} {rows.where(index)}: no {column!r} in this row")
        raw_id = row.get(id_column)
        examples.append(Example(index, str(raw_id if raw_id is not None else index), fields))
    return examples


def split(
    examples: list[Example], fraction: float, seed: int, stratify: str | None
) -> tuple[list[Example], list[Example]]:
    """(train, test): ``fraction`` of the examples go to train, per label when stratified.

    The draw is ``fondasi.data.files.holdout``, the one tune draws its dev rows with.
    """

    def key(example: Example) -> str:
        return str(example.fields.get(stratify, "")) if stratify else ""

    train, _ = files.holdout(examples, fraction, random.Random(seed), key)
    chosen = {example.index for example in train}
    test = [example for example in examples if example.index not in chosen]
    if not test or not train:
        raise BadInputError(
            f"{len(examples)} examples are too few to split into train and test; give --train"
        )
    return sorted(train, key=lambda e: e.index), test
