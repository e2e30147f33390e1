"""Training data: read JSONL, CSV, Parquet or a datasets folder; check it; split it.

Rows are classification ``{"text", "label"}``, instruction ``{"prompt", "completion"}``
or chat ``{"messages": [...]}``.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import random
from collections import Counter
from pathlib import Path
from typing import Any

from fondasi.errors import BadInputError
from fondasi.tune.options import Task

log = logging.getLogger(__name__)
MAX_CSV_BYTES = 500_000_000


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a data file or a saved ``datasets`` folder."""
    from fondasi.data import read_jsonl

    if path.is_dir():
        from datasets import load_from_disk

        try:
            loaded = load_from_disk(str(path))
        except (FileNotFoundError, ValueError) as exc:
            raise BadInputError(f"{path}: not a saved datasets folder ({exc})") from None
        split = loaded["train"] if hasattr(loaded, "keys") and "train" in loaded else loaded
        rows = [dict(row) for row in split]
    elif path.suffix == ".csv":
        if not path.is_file():
            raise BadInputError(f"no such file: {path}")
        if path.stat().st_size > MAX_CSV_BYTES:
            raise BadInputError(f"{path} is over {MAX_CSV_BYTES // 1_000_000} MB")
        with path.open(encoding="utf-8", newline="") as handle:
            rows = [dict(row) for row in csv.DictReader(handle)]
    elif path.suffix == ".parquet":
        if not path.is_file():
            raise BadInputError(f"no such file: {path}")
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    else:
        return read_jsonl(path)
    if not rows:
        raise BadInputError(f"{path} has no rows")
    return rows


def detect_task(rows: list[dict[str, Any]], path: Path) -> Task:
    """Classification for text/label rows, generation for prompt/completion or chat rows."""
    keys = set(rows[0])
    if {"text", "label"} <= keys:
        return "classification"
    if {"prompt", "completion"} <= keys or "messages" in keys:
        return "causal-lm"
    raise BadInputError(
        f"{path}: rows need text+label (classification), prompt+completion or messages "
        f"(causal-lm); the first row has: {', '.join(sorted(keys)) or 'nothing'}"
    )


def check_rows(rows: list[dict[str, Any]], task: Task, path: Path) -> None:
    """Every row has the fields the task needs, as non-empty text."""
    fields = {"classification": ("text", "label")}.get(task)
    for number, row in enumerate(rows, 1):
        if task != "classification" and "messages" in row:
            messages = row["messages"]
            if (
                not isinstance(messages, list)
                or not messages
                or not all(
                    isinstance(m, dict)
                    and m.get("role") in {"system", "user", "assistant"}
                    and isinstance(m.get("content"), str)
                    for m in messages
                )
            ):
                raise BadInputError(f"{path}: row {number}: messages need role and content")
            if messages[-1]["role"] != "assistant":
                raise BadInputError(f"{path}: row {number}: the last message must be assistant")
            continue
        for field in fields or ("prompt", "completion"):
            value = row.get(field)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise BadInputError(f"{path}: row {number}: {field!r} is missing or empty")


def split(
    rows: list[dict[str, Any]], task: Task, fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train and dev rows; classification keeps each label's share in both."""
    rng = random.Random(seed)
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        key = str(row["label"]) if task == "classification" else ""
        groups.setdefault(key, []).append(row)
    train, dev = [], []
    for members in groups.values():
        members = members[:]
        rng.shuffle(members)
        cut = max(1, round(len(members) * fraction)) if len(members) > 1 else 0
        dev.extend(members[:cut])
        train.extend(members[cut:])
    rng.shuffle(train)
    if not train or not dev:
        raise BadInputError("too little data to split off a dev set; give --eval-data")
    return train, dev


def labels_of(train: list[dict[str, Any]], dev: list[dict[str, Any]]) -> list[str]:
    """The label set, from the training rows; dev labels must be among them."""
    names = sorted({str(row["label"]) for row in train})
    if len(names) < 2:
        raise BadInputError("classification needs at least two labels in the training data")
    unseen = sorted({str(row["label"]) for row in dev} - set(names))
    if unseen:
        raise BadInputError(f"dev labels never seen in training: {', '.join(unseen)}")
    absent = sorted(set(names) - {str(row["label"]) for row in dev})
    if absent:
        log.warning("labels missing from the dev set (not measured): %s", ", ".join(absent))
    counts = Counter(str(row["label"]) for row in train)
    if min(counts.values()) * 10 < max(counts.values()):
        log.warning("labels are very unbalanced in training: %s", dict(counts))
    return names


def fingerprint(*paths: Path | None) -> str:
    """SHA-256 of the data files, for the model card."""
    digest = hashlib.sha256()
    for path in paths:
        if path is None:
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(file.read_bytes())
    return digest.hexdigest()
