"""Examples from JSONL, CSV, Parquet or a `datasets` folder, with a column mapping.

A task names the fields it needs (``text`` and ``label`` for classification); the config
maps each field to a column of the user's file. A missing column lists the columns the
file has, so the user can fix the mapping.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fondasi.errors import BadInputError
from fondasi.evaluate.config import DataSpec

MAX_FILE_BYTES = 500_000_000
# csv's default field limit (128 kB) is too small for long documents.
csv.field_size_limit(50_000_000)


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


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every row of a data file as a dict, whatever the format."""
    if path.is_dir():
        return _datasets_folder(path)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise BadInputError(f"{path} is over {MAX_FILE_BYTES // 1_000_000} MB")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return _jsonl(path)
    if suffix in (".csv", ".tsv"):
        return _csv(path, "\t" if suffix == ".tsv" else ",")
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
        return rows
    raise BadInputError(f"{path}: read .jsonl, .csv, .tsv, .parquet or a `datasets` folder")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    from fondasi.data import read_jsonl

    try:
        return read_jsonl(path)
    except BadInputError as exc:
        if "has no rows" in str(exc):
            return []
        raise


def _csv(path: Path, delimiter: str) -> list[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return [dict(row) for row in csv.DictReader(handle, delimiter=delimiter)]
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path} is not UTF-8 text: {exc.reason}") from None
    except csv.Error as exc:
        raise BadInputError(f"{path}: not valid CSV: {exc}") from None


def _datasets_folder(path: Path) -> list[dict[str, Any]]:
    from fondasi.extras import require

    datasets = require("datasets", "tune", "datasets folders")
    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise BadInputError(f"{path}: not a saved `datasets` folder ({exc})") from None
    if isinstance(loaded, datasets.DatasetDict):
        # A saved DatasetDict: evaluate its test split when it has one.
        name = "test" if "test" in loaded else next(iter(loaded))
        loaded = loaded[name]
    rows: list[dict[str, Any]] = loaded.to_list()
    return rows


def load_examples(
    spec: DataSpec, needed: Sequence[str], optional: Sequence[str] = (), what: str = "data"
) -> list[Example]:
    """The examples of ``spec`` with the task's fields taken from the mapped columns."""
    path = source_path(spec)
    rows = read_rows(path)
    if not rows:
        raise BadInputError(f"{what} {path} has no rows: nothing to evaluate")
    unknown = sorted(set(spec.columns) - {*needed, *optional, "id"})
    if unknown:
        raise BadInputError(
            f"{what} columns: {', '.join(unknown)} is not a field of this task; "
            f"map these fields: {', '.join([*needed, *optional])}"
        )
    present = list(rows[0])
    for field in needed:
        column = spec.columns.get(field, field)
        if column not in rows[0]:
            mapped = f" (mapped from {field!r})" if column != field else ""
            raise BadInputError(
                f"{what} {path}: no column {column!r}{mapped}; the columns are: "
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
                raise BadInputError(f"{what} {path}: row {index + 1} has no {column!r}")
        raw_id = row.get(id_column)
        examples.append(Example(index, str(raw_id if raw_id is not None else index), fields))
    return examples


def split(
    examples: list[Example], fraction: float, seed: int, stratify: str | None
) -> tuple[list[Example], list[Example]]:
    """(train, test): ``fraction`` of the examples go to train, per label when stratified."""
    rng = random.Random(seed)
    groups: dict[str, list[Example]] = {}
    for example in examples:
        key = str(example.fields.get(stratify, "")) if stratify else ""
        groups.setdefault(key, []).append(example)
    train: list[Example] = []
    for members in groups.values():
        shuffled = members[:]
        rng.shuffle(shuffled)
        # Each label keeps at least one test example when it has two or more.
        take = min(max(1, round(len(shuffled) * fraction)), max(len(shuffled) - 1, 0))
        train.extend(shuffled[:take])
    chosen = {example.index for example in train}
    test = [example for example in examples if example.index not in chosen]
    if not test or not train:
        raise BadInputError(
            f"{len(examples)} examples are too few to split into train and test; give --train"
        )
    return sorted(train, key=lambda e: e.index), test
