"""Input embeddings kept for drift checks: one row per (request, embedding model).

Drift embeds logged prompts lazily, the first time a window is checked, and keeps the
vectors here so every request is embedded once however often the dashboard is opened. The
table is created by the ``m008_drift_embeddings`` migration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Engine, Float, LargeBinary, String, Table, select

from fondasi.monitor.tables import metadata

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

drift_embeddings = Table(
    "drift_embeddings",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("embedder", String(200), primary_key=True),  # the model that made the vector
    Column("ts", Float, nullable=False),  # the request's time, to prune old vectors
    Column("vector", LargeBinary, nullable=False),  # float32, little-endian
)


def _sqlite_insert(table: Table) -> Any:
    from sqlalchemy.dialects.sqlite import insert

    return insert(table).on_conflict_do_nothing()


def _postgresql_insert(table: Table) -> Any:
    from sqlalchemy.dialects.postgresql import insert

    return insert(table).on_conflict_do_nothing()


# Two processes (the server's dashboard and `fondasi stats`) may embed the same request:
# the second insert is skipped, not an error.
INSERT_IGNORING_DUPLICATES: dict[str, Callable[[Table], Any]] = {
    "sqlite": _sqlite_insert,
    "postgresql": _postgresql_insert,
}


def load(engine: Engine, embedder: str, ids: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
    """The stored vectors of these requests made by ``embedder``, by request id."""
    import numpy as np

    t = drift_embeddings
    found: dict[str, npt.NDArray[np.float32]] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = list(ids[start : start + 500])
            query = select(t.c.request_id, t.c.vector).where(
                t.c.embedder == embedder, t.c.request_id.in_(chunk)
            )
            for row in conn.execute(query):
                found[row.request_id] = np.frombuffer(row.vector, dtype="<f4").copy()
    return found


def save(
    engine: Engine,
    embedder: str,
    vectors: Mapping[str, tuple[float, npt.NDArray[np.float32]]],
) -> None:
    """Store vectors by request id (with the request's time); existing rows are kept."""
    import numpy as np

    if not vectors:
        return
    rows = [
        {
            "request_id": request_id,
            "embedder": embedder,
            "ts": ts,
            "vector": np.asarray(vector, dtype="<f4").tobytes(),
        }
        for request_id, (ts, vector) in vectors.items()
    ]
    statement = INSERT_IGNORING_DUPLICATES[engine.dialect.name](drift_embeddings)
    with engine.begin() as conn:
        conn.execute(statement, rows)
