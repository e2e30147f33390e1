"""The rows of a transformers model's batch: one left-padded ``DynamicCache`` shared by all.

A new row's prompt is read alone into a fresh cache (as an unbatched call reads it); the
cache then joins the batch's, left-padded to a common length, and each step runs one forward
over every row's newest token with its own position. Sampling repeats transformers'
``generate``: temperature, top-k, top_p, then a draw from the row's own seeded generator.
"""

from __future__ import annotations

import inspect
from typing import Any

from fondasi.backends.decode_batching import Job

# transformers' default top-k: the unbatched path asks ``generate`` for top_k=None, which its
# generation config fills with 50, so sampled answers keep to the 50 likeliest tokens there too
# (and a seed gives the same text batched or not).
SAMPLE_TOP_K = 50


def batchable(model: Any) -> bool:
    """Whether rows of this model's cache can be padded and merged: every layer a plain
    full-attention ``DynamicLayer`` and positions passed in (left padding moves them)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    try:
        cache = DynamicCache(config=model.config)
    except Exception:  # a config the cache cannot read: not a plain decoder
        return False
    plain = bool(cache.layers) and all(type(layer) is DynamicLayer for layer in cache.layers)
    return plain and "position_ids" in inspect.signature(model.forward).parameters


class TorchRows:
    """A transformers causal LM's batch of sequences, for ``DecodeBatcher``."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._cache: Any = None
        self._mask: Any = None  # (rows, cached length): 0 where a row is left padding
        self._positions: Any = None  # (rows,): the position of each row's next token
        self._fresh: Any = None  # the prefilled cache waiting to be added

    def reserve(self, job: Job) -> bool:
        """A dynamic cache grows as needed."""
        return True

    def discard(self, job: Job) -> None:
        """Drop the cache of a job that ended on its first token."""
        self._fresh = None

    def generator(self, seed: int) -> Any:
        """A torch generator: the draws ``generate`` makes after ``torch.manual_seed``."""
        import torch

        return torch.Generator().manual_seed(seed)

    def prefill(self, job: Job) -> Any:
        """Read the prompt alone; the logits of its first answer token (a numpy row)."""
        import torch
        from transformers import DynamicCache

        ids = torch.tensor([job.prompt])
        self._fresh = DynamicCache(config=self.model.config)
        out = self.model(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            position_ids=torch.arange(ids.shape[1]).unsqueeze(0),
            past_key_values=self._fresh,
            use_cache=True,
            logits_to_keep=1,
        )
        return out.logits[0, -1].float().numpy()

    def add(self, job: Job) -> None:
        """Add the job just prefilled as the last row, left-padding whichever is shorter."""
        import torch

        cache, self._fresh = self._fresh, None
        length = len(job.prompt)
        position = torch.tensor([length])
        if self._cache is None:
            self._cache, self._mask = cache, torch.ones((1, length), dtype=torch.long)
            self._positions = position
            return
        have = self._mask.shape[1]
        if length > have:
            for layer in self._cache.layers:
                layer.keys, layer.values = _pad(layer.keys, length), _pad(layer.values, length)
            self._mask = _pad(self._mask, length)
        width = max(length, have)
        for layer, new in zip(self._cache.layers, cache.layers, strict=True):
            layer.keys = torch.cat([layer.keys, _pad(new.keys, width)])
            layer.values = torch.cat([layer.values, _pad(new.values, width)])
        row = _pad(torch.ones((1, length), dtype=torch.long), width)
        self._mask = torch.cat([self._mask, row])
        self._positions = torch.cat([self._positions, position])

    def step(self, tokens: list[int]) -> Any:
        """One forward over each row's newest token; logits (rows, vocabulary) as numpy."""
        import torch

        rows = len(tokens)
        self._mask = torch.cat([self._mask, torch.ones((rows, 1), dtype=torch.long)], dim=1)
        out = self.model(
            input_ids=torch.tensor(tokens).view(rows, 1),
            attention_mask=self._mask,
            position_ids=self._positions.view(rows, 1),
            past_key_values=self._cache,
            use_cache=True,
        )
        self._positions = self._positions + 1
        return out.logits[:, -1].float().numpy()

    def keep(self, rows: list[int]) -> None:
        """Keep only these rows, and cut the padding columns no row needs any more."""
        import torch

        if not rows:
            self.reset()
            return
        index = torch.tensor(rows, dtype=torch.long)
        self._cache.batch_select_indices(index)
        self._mask, self._positions = self._mask[index], self._positions[index]
        start = int(self._mask.any(dim=0).long().argmax())  # first column some row reads
        if start:
            for layer in self._cache.layers:
                layer.keys, layer.values = layer.keys[:, :, start:], layer.values[:, :, start:]
            self._mask = self._mask[:, start:]

    def reset(self) -> None:
        """Forget every row."""
        self._cache = self._mask = self._positions = self._fresh = None

    def choose(self, job: Job, row: Any) -> int:
        """Greedy, or sampled as ``generate`` samples: temperature, top-k, top_p."""
        import torch
        from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        scores = torch.from_numpy(row)
        if job.temperature <= 0:
            return int(torch.argmax(scores))
        scores = scores.unsqueeze(0)
        if job.temperature != 1.0:
            scores = TemperatureLogitsWarper(job.temperature)(None, scores)
        scores = TopKLogitsWarper(SAMPLE_TOP_K)(None, scores)
        if job.top_p < 1.0:
            scores = TopPLogitsWarper(job.top_p)(None, scores)
        probs = torch.softmax(scores, dim=-1)
        return int(torch.multinomial(probs, num_samples=1, generator=job.generator)[0, 0])

    def context(self) -> Any:
        """Inference mode for the scheduler thread."""
        import torch

        return torch.inference_mode()


def _pad(tensor: Any, width: int) -> Any:
    """Left-pad the sequence axis (dim 2 of keys and values, dim 1 of a mask) with zeros."""
    import torch.nn.functional as F

    axis = 2 if tensor.dim() == 4 else 1
    missing = width - tensor.shape[axis]
    if missing <= 0:
        return tensor
    padding = (0, 0, missing, 0) if axis == 2 else (missing, 0)
    return F.pad(tensor, padding)


__all__ = ["SAMPLE_TOP_K", "TorchRows", "batchable"]
