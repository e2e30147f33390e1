"""Training data: read a file or a folder's train split (``fondasi.data.files``); check it;
split it.

Rows are classification ``{"text", "label"}``, instruction ``{"prompt", "completion"}``
or chat ``{"messages": [...]}``. A folder's dev split is the dev set when the user gives
no ``--eval-data``; its test split is left for ``fondasi eval``.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import Counter
from pathlib import Path
from typing import Any

from fondasi.data import files
from fondasi.data.files import TUNE_READS, Rows
from fondasi.errors import BadInputError
from fondasi.tune.options import Task

log = logging.getLogger(__name__)


def read_rows(path: Path) -> Rows:
    """Rows of a data file, or a folder's train split."""
    rows = files.read_rows(path, TUNE_READS)
    if not rows:
        raise BadInputError(f"{rows.source or path} has no rows")
    return rows


def dev_rows(path: Path) -> Rows | None:
    """A folder's dev (validation) split; None for a file or a folder without one."""
    if "dev" not in files.splits_in(path):
        return None
    rows = files.read_rows(path, ("dev",))
    if not rows:
        raise BadInputError(f"{rows.source} has no rows")
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


def _where(rows: list[dict[str, Any]], index: int, path: Path) -> str:
    return rows.where(index) if isinstance(rows, Rows) else f"{path}: row {index + 1}"


def check_rows(rows: list[dict[str, Any]], task: Task, path: Path) -> None:
    """Every row has the fields the task needs, as text (or a number) that is not empty."""
    from fondasi.tune.tasks import task as task_named

    wanted = task_named(task)
    for index, row in enumerate(rows):
        where = _where(rows, index, path)
        if wanted.chat_rows and "messages" in row:
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
                raise BadInputError(f"{where}: messages need role and content")
            if messages[-1]["role"] != "assistant":
                raise BadInputError(f"{where}: the last message must be assistant")
            continue
        for field in wanted.fields:
            value = row.get(field)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise BadInputError(f"{where}: {field!r} is missing or empty")
            if isinstance(value, dict | list):  # would be trained on as "{'a': ...}"
                kind = "an object" if isinstance(value, dict) else "a list"
                raise BadInputError(f"{where}: {field!r} must be text, not {kind}")


def split(
    rows: list[dict[str, Any]], stratify: str | None, fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train and dev rows; each value of the ``stratify`` field keeps its share in both.

    The draw is ``fondasi.data.files.holdout``, the one eval draws its train split with.
    """
    rng = random.Random(seed)

    def key(row: dict[str, Any]) -> str:
        return str(row[stratify]) if stratify else ""

    dev, train = files.holdout(rows, fraction, rng, key)
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
