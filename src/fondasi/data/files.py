"""A user's data, read one way for ``fondasi eval`` and ``fondasi tune``.

A file gives both commands the same rows; a folder gives both the same splits.

Files (UTF-8, with or without a byte-order mark; at most ``MAX_BYTES`` each):

    .jsonl .ndjson   one JSON object per line
    .json            a JSON array of objects, or JSON Lines
    .csv .tsv        read with pyarrow; every value is text exactly as written ("007" stays
                     "007", as it did before); a TSV is a CSV with tabs, quoted the same way
                     (as pandas and ``datasets`` read it)
    .parquet         read with pyarrow, with the file's own types

JSON goes through the ``json`` module, not pyarrow: pyarrow merges the objects of every row
into one struct type, so ``{"relevant": {"d1": 1}}`` would come back with every other row's
keys set to None, and a column holding text in one row and a number in the next is refused.
A reference answer has to come back exactly as written.

Folders: a folder saved by ``datasets`` (``save_to_disk``) or a folder of split files. Split
files are named by their split, ``train.jsonl``, ``dev.csv`` (or ``validation.csv``),
``test.parquet``, and may be sharded as ``train-00000-of-00002.parquet``, directly in the
folder or under ``data/`` (the Hugging Face Hub layout). A saved ``DatasetDict`` names its
splits the same way; its other splits (``unsupervised`` ...) are left alone.

Who reads which split (``TUNE_READS``, ``EVAL_READS``):

    train   tune trains on it; eval draws few-shot examples and fits baselines on it
    dev     tune measures and stops early on it
    test    eval scores on it; eval takes dev when there is no test

Errors are ``BadInputError`` lines that say where: ``data.jsonl:7`` is line 7;
``data.csv row 7`` is a spreadsheet's row 7 (the header is row 1), ``data.parquet row 7`` is
the seventh row.
"""

from __future__ import annotations

import bisect
import csv
import json
import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from fondasi.errors import BadInputError
from fondasi.extras import require

Split = Literal["train", "dev", "test"]

MAX_BYTES = 500_000_000
SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet")
# Each split's names in files and in saved DatasetDicts; the first is the one fondasi says.
SPLIT_NAMES: dict[Split, tuple[str, ...]] = {
    "train": ("train",),
    "dev": ("dev", "validation"),
    "test": ("test",),
}
SPLIT_WORDS = "train, dev (or validation) and test"
TUNE_READS: tuple[Split, ...] = ("train",)
EVAL_READS: tuple[Split, ...] = ("test", "dev")

T = TypeVar("T")

__all__ = [
    "EVAL_READS",
    "MAX_BYTES",
    "SPLIT_NAMES",
    "SUFFIXES",
    "TUNE_READS",
    "Rows",
    "Split",
    "holdout",
    "read_file",
    "read_rows",
    "splits_in",
]


class Rows(list[dict[str, Any]]):
    """Rows of a file or a split that can say where each one came from.

    A list of dicts like any other; ``where(i)`` names the file and line (or row) of row ``i``.
    """

    def __init__(
        self,
        rows: Iterable[dict[str, Any]] = (),
        source: str = "",
        columns: Sequence[str] | None = None,
        lines: Sequence[int] | None = None,
        first_row: int = 1,
    ) -> None:
        super().__init__(rows)
        self.source = source
        self.columns = list(columns) if columns is not None else list(self[0] if self else [])
        # Parts of a split read from several files: (first index, source, lines, first row).
        self._parts: list[tuple[int, str, Sequence[int] | None, int]] = [
            (0, source, lines, first_row)
        ]

    @classmethod
    def joined(cls, parts: Sequence[Rows], source: str) -> Rows:
        """The shards of one split, one after another."""
        whole = cls([row for part in parts for row in part], source, columns=parts[0].columns)
        whole._parts, start = [], 0
        for part in parts:
            whole._parts += [(start + s, src, ln, fr) for s, src, ln, fr in part._parts]
            start += len(part)
        return whole

    def where(self, index: int) -> str:
        """``data.jsonl:7`` (a line) or ``data.csv row 7``."""
        starts = [part[0] for part in self._parts]
        start, source, lines, first_row = self._parts[bisect.bisect_right(starts, index) - 1]
        if lines is not None:
            return f"{source}:{lines[index - start]}"
        return f"{source} row {index - start + first_row}"


# -- one file ---------------------------------------------------------------------------------


def read_file(path: Path) -> Rows:
    """Every row of one data file, whatever its format."""
    if not path.is_file():
        what = "a folder, not a data file" if path.is_dir() else "no such data file"
        raise BadInputError(f"{what}: {path}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise BadInputError(
            f"{path}: cannot read {suffix or 'a file without a suffix'}; "
            f"give {', '.join(SUFFIXES)} or a folder of splits"
        )
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise BadInputError(
            f"{path} is {size // 1_000_000} MB, over the {MAX_BYTES // 1_000_000} MB limit: "
            "split it into shards (train-00000-of-00002.parquet ...)"
        )
    if suffix == ".parquet":
        return _parquet(path)
    if suffix in (".csv", ".tsv"):
        return _csv(path, "\t" if suffix == ".tsv" else ",")
    return _json(path, suffix)


def _not_utf8(path: Path, data: bytes, exc: UnicodeDecodeError) -> BadInputError:
    line = data.count(b"\n", 0, exc.start) + 1
    return BadInputError(f"{path}:{line}: not UTF-8 text ({exc.reason}); save it as UTF-8")


def _json(path: Path, suffix: str) -> Rows:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, data, exc) from None
    if suffix == ".json" and text.strip():
        try:
            whole = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg != "Extra data":  # more than one value: JSON Lines
                raise BadInputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        else:
            items = whole if isinstance(whole, list) else [whole]
            for number, item in enumerate(items, 1):
                if not isinstance(item, dict):
                    raise BadInputError(
                        f"{path}: item {number} is {type(item).__name__}; "
                        "give an array of JSON objects, or one object per line"
                    )
            return Rows(items, str(path), first_row=1)
    rows, lines = [], []
    # Lines end at \n only: str.splitlines would also cut at U+2028, which JSON allows in text.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInputError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise BadInputError(
                f"{path}:{number}: each line must be a JSON object, not {type(row).__name__}"
            )
        rows.append(row)
        lines.append(number)
    return Rows(rows, str(path), lines=lines)


def _csv(path: Path, delimiter: str) -> Rows:
    header = _header(path, delimiter)
    if header is None:
        return Rows([], str(path), columns=[])
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise BadInputError(f"{path}:1: the header names {', '.join(twice)} more than once")
    pa = require("pyarrow", "eval", "reading CSV and TSV files")
    from pyarrow import csv as pa_csv

    def read(threads: bool) -> Any:
        return pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(use_threads=threads),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            # Every column as text: no guessing that "007" is 7 or "NA" is missing.
            convert_options=pa_csv.ConvertOptions(column_types=dict.fromkeys(header, pa.string())),
        )

    try:
        table = read(threads=True)
    except pa.ArrowInvalid as exc:
        if "invalid UTF8" in str(exc):
            data = path.read_bytes()
            try:
                data.decode("utf-8-sig")
            except UnicodeDecodeError as bad:
                raise _not_utf8(path, data, bad) from None
        try:  # read again on one thread: only then does pyarrow say which row is wrong
            read(threads=False)
        except pa.ArrowInvalid as serial:
            exc = serial
        detail = str(exc).removeprefix("CSV parse error: ")
        if detail.startswith("Row #"):
            number, _, detail = detail.removeprefix("Row #").partition(": ")
            raise BadInputError(f"{path} row {number}: {detail}") from None
        raise BadInputError(f"{path}: not valid {path.suffix[1:].upper()}: {detail}") from None
    return Rows(table.to_pylist(), str(path), columns=header, first_row=2)


def _header(path: Path, delimiter: str) -> list[str] | None:
    """The first record of a CSV file: its column names (None when the file is empty)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return next(csv.reader(handle, delimiter=delimiter), None)
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, path.read_bytes(), exc) from None
    except csv.Error as exc:
        raise BadInputError(f"{path}:1: the header is not valid: {exc}") from None


def _parquet(path: Path) -> Rows:
    pa = require("pyarrow", "eval", "reading Parquet files")
    from pyarrow import parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BadInputError(f"{path}: not a Parquet file ({exc})") from None
    return Rows(table.to_pylist(), str(path), columns=table.column_names)


# -- folders ----------------------------------------------------------------------------------


def _saved(folder: Path) -> bool:
    """Whether ``datasets`` saved this folder (a DatasetDict or one Dataset)."""
    return (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()


def _split_files(folder: Path) -> dict[Split, list[Path]]:
    """A folder's split files by split, shards in order."""
    where = folder
    if not any(p.suffix.lower() in SUFFIXES for p in folder.iterdir() if p.is_file()):
        where = folder / "data" if (folder / "data").is_dir() else folder
    found: dict[Split, list[Path]] = {}
    strays = []
    for file in sorted(p for p in where.iterdir() if p.is_file()):
        if file.suffix.lower() not in SUFFIXES:
            continue
        stem = file.stem.lower()
        split = next(
            (
                split
                for split, names in SPLIT_NAMES.items()
                for name in names
                if stem == name or stem.startswith(f"{name}-")
            ),
            None,
        )
        if split is None:
            strays.append(file.name)
        else:
            found.setdefault(split, []).append(file)
    if strays:
        raise BadInputError(
            f"{where}: {', '.join(strays)} {'is' if len(strays) == 1 else 'are'} not named for "
            f"a split; name data files "
            f"{SPLIT_WORDS} ({', '.join(SUFFIXES)}), or train-00000-of-00002.parquet shards"
        )
    for split, files in found.items():
        whole = [f.name for f in files if f.stem.lower() in SPLIT_NAMES[split]]
        if len({f.suffix.lower() for f in files}) > 1 or (whole and len(files) > 1):
            raise BadInputError(
                f"{where}: {', '.join(f.name for f in files)} are all the {split} split; "
                "keep one file, or shards of one format"
            )
    return {split: found[split] for split in SPLIT_NAMES if split in found}


def _load_saved(folder: Path) -> tuple[Any, dict[Split, str] | None]:
    """A saved folder and its splits by fondasi's names (None: one Dataset, no splits)."""
    datasets = require("datasets", "eval", "reading a folder saved by `datasets`")
    try:
        loaded = datasets.load_from_disk(str(folder))
    except (FileNotFoundError, ValueError) as exc:
        raise BadInputError(f"{folder}: not a folder saved by `datasets` ({exc})") from None
    if not isinstance(loaded, datasets.DatasetDict):
        return loaded, None
    names: dict[Split, str] = {}
    for split, aliases in SPLIT_NAMES.items():
        present = [name for name in loaded if name in aliases]
        if len(present) > 1:
            raise BadInputError(f"{folder}: {' and '.join(present)} are both the {split} split")
        if present:
            names[split] = present[0]
    return loaded, names


def _saved_rows(dataset: Any, source: Path, label: str) -> Rows:
    _check_size(source, [Path(f["filename"]) for f in dataset.cache_files])
    return Rows(dataset.to_list(), label, columns=dataset.column_names)


def splits_in(path: Path) -> list[Split]:
    """The splits a folder holds, train first; a file or a single saved Dataset holds none."""
    if not path.is_dir():
        return []
    if _saved(path):
        return list(_load_saved(path)[1] or [])
    return [split for split in SPLIT_NAMES if split in _split_files(path)]


def read_rows(path: Path, reads: Sequence[Split]) -> Rows:
    """A file's rows, or the first of the splits ``reads`` that a folder holds."""
    if not path.exists():
        raise BadInputError(f"no such data file or folder: {path}")
    if not path.is_dir():
        return read_file(path)
    if _saved(path):
        loaded, names = _load_saved(path)
        if names is None:  # one saved Dataset: rows, not splits
            return _saved_rows(loaded, path, str(path))
        for split in reads:
            if split in names:
                name = names[split]
                return _saved_rows(loaded[name], path / name, f"{path} [{name}]")
        raise _no_split(path, reads, list(loaded) or ["none"])
    found = _split_files(path)
    for split in reads:
        if split in found:
            parts = [read_file(file) for file in found[split]]
            return parts[0] if len(parts) == 1 else Rows.joined(parts, f"{path} [{split}]")
    raise _no_split(path, reads, list(found) or ["no data files"])


def _no_split(folder: Path, wanted: Sequence[Split], present: Sequence[str]) -> BadInputError:
    return BadInputError(
        f"{folder}: no {' or '.join(wanted)} split (it has: {', '.join(present)}); "
        f"name the splits {SPLIT_WORDS}"
    )


def _check_size(what: Path, files: Sequence[Path]) -> None:
    size = sum(file.stat().st_size for file in files if file.is_file())
    if size > MAX_BYTES:
        raise BadInputError(
            f"{what} is {size // 1_000_000} MB, over the {MAX_BYTES // 1_000_000} MB limit"
        )


# -- splitting a file that has no splits ------------------------------------------------------


def holdout(
    items: Sequence[T], fraction: float, rng: random.Random, key: Callable[[T], str] | None = None
) -> tuple[list[T], list[T]]:
    """(drawn, rest): ``fraction`` of each group (by ``key``) drawn at random.

    Every group of two or more keeps at least one item on each side. Eval draws its train
    split this way and tune its dev split, so the same seed and fraction draw the same rows.
    """
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(key(item) if key else "", []).append(item)
    drawn: list[T] = []
    rest: list[T] = []
    for members in groups.values():
        shuffled = list(members)
        rng.shuffle(shuffled)
        take = min(max(1, round(len(shuffled) * fraction)), len(shuffled) - 1)
        drawn.extend(shuffled[:take])
        rest.extend(shuffled[take:])
    return drawn, rest
