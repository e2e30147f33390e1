"""Tuned folders that hold a head over an embedder: ``head.npz`` + ``head.json`` beside
``fondasi-tune.json``, which names the embedder (a model id, or a folder inside this one
for SetFit's tuned encoder) and the purpose its texts are embedded with.

Loading resolves the embedder the usual way, reads the arrays with ``allow_pickle=False``
and rebuilds the head around them: nothing in the folder is code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fondasi.backends.base import Capability, Embedder, Purpose
from fondasi.backends.classify import Labels, ranked, restrict
from fondasi.backends.heads import Fitted, as_matrix, predict
from fondasi.errors import BadInputError
from fondasi.types import Label

if TYPE_CHECKING:
    from fondasi.settings import Settings

FORMAT = "embedding-head"  # fondasi-tune.json "format" of these folders
ARRAYS = "head.npz"
CONFIG = "head.json"


def save_head(fitted: Fitted, folder: Path) -> None:
    """Write the head's arrays and settings into ``folder`` (numpy and JSON only)."""
    import numpy as np

    np.savez_compressed(folder / ARRAYS, **fitted.state)  # type: ignore[arg-type]
    config = {k: v for k, v in fitted.config.items() if not k.startswith("_")}
    (folder / CONFIG).write_text(
        json.dumps({"head": fitted.head, "labels": fitted.labels, "config": config}, indent=2),
        encoding="utf-8",
    )


def read_head(folder: Path) -> Fitted:
    """The head saved in ``folder``."""
    import numpy as np

    try:
        described = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
        with np.load(folder / ARRAYS, allow_pickle=False) as arrays:
            state = {name: arrays[name] for name in arrays.files}
    except (OSError, ValueError) as exc:
        raise BadInputError(f"{folder}: cannot read the head: {exc}") from None
    return Fitted(described["head"], list(described["labels"]), state, described["config"])


def embedder_ref(folder: Path, meta: dict[str, Any]) -> str:
    """The embedder's id: a catalog or ad-hoc id, or ``hf:`` for a folder inside this one."""
    ref = str(meta["embedder"])
    if meta.get("embedder_inside"):
        return "hf:" + str((folder / ref).resolve())
    return ref


class HeadClassifier:
    """Embeds texts with a frozen embedder and reads labels off them with a fitted head."""

    capabilities = frozenset({Capability.CLASSIFY})

    def __init__(self, embedder: Embedder, fitted: Fitted, purpose: Purpose) -> None:
        self.embedder = embedder
        self.fitted = fitted
        self.purpose = purpose

    def classify(self, texts: Sequence[str], labels: Labels) -> list[list[Label]]:
        """The head's labels with their probabilities, best first."""
        if not texts:
            raise BadInputError("nothing to classify: the list of texts is empty")
        vectors = as_matrix(self.embedder.embed(list(texts), purpose=self.purpose))
        probabilities = predict(self.fitted, vectors, list(texts))
        names, probabilities = restrict(self.fitted.labels, probabilities, labels)
        return [ranked(names, row) for row in probabilities]


def load_head_classifier(folder: Path, meta: dict[str, Any], settings: Settings) -> Any:
    """The classifier saved in ``folder``, its embedder loaded the way any model is."""
    from fondasi.backends.registry import Registry
    from fondasi.backends.resolve import resolve
    from fondasi.catalog.loader import Catalog

    spec = resolve(embedder_ref(folder, meta), Catalog.load(settings.card_dirs()), settings)
    embedder = Registry.from_entry_points().find(spec).load(spec, settings)
    if not isinstance(embedder, Embedder):
        raise BadInputError(f"{spec.id} does not embed text; {folder} needs an embedding model")
    return HeadClassifier(embedder, read_head(folder), meta.get("purpose"))
