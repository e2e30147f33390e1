"""k-NN example selection embeds each text once, however many inputs compare with it."""

from __future__ import annotations

import numpy as np

from fondasi.models.load import memoised


def test_each_text_is_embedded_once_and_rows_keep_their_order() -> None:
    seen: list[str] = []

    def embed(texts: list[str]) -> np.ndarray:
        seen.extend(texts)
        return np.array([[float(len(text)), 1.0] for text in texts])

    cached = memoised(embed, most=3)
    first = cached(["a", "bb", "a"])
    assert seen == ["a", "bb"]
    assert first.tolist() == [[1.0, 1.0], [2.0, 1.0], [1.0, 1.0]]
    assert cached("bb").tolist() == [[2.0, 1.0]] and seen == ["a", "bb"]
    cached(["ccc", "dddd"])  # past three texts, the oldest ("a") is forgotten
    cached(["a"])
    assert seen == ["a", "bb", "ccc", "dddd", "a"]
