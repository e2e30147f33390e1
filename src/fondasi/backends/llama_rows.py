"""The rows of a llama.cpp model's batch: one context, one sequence id per row.

llama.cpp decodes tokens of different sequences in one call (a ``llama_batch`` whose tokens
each carry a sequence id) and keeps each sequence's cells apart in one KV cache. A second
context on the memory-mapped model holds the rows, with the first context's settings and
``SLOTS`` sequences, each in KV cells of its own (a full context each); the first context
keeps serving ``token_logprobs``. A new row's prompt is read alone under a free sequence id;
each step is one ``llama_decode`` of every row's newest token at its own position.

Cells of their own, not one pool shared by every sequence (``kv_unified``), because a shared
pool puts a sequence's cells wherever there is room and its attention then runs over other
sequences' masked cells too: the sums round differently, and on SmolLM2 Q4_1 two of five
greedy answers decoded together drifted from those decoded alone. With a stream each, a
row's logits equal the unbatched ones to the bit (up to 8 rows checked), so greedy answers
equal unbatched ones. The price is memory: ``SLOTS`` full KV caches (SmolLM2 at 8K tokens:
about 190 MB each). Sampling draws from a numpy generator of
the row's own, in llama.cpp's order (top_p on the raw logits, then temperature): a seed
repeats its text, which is not the text llama.cpp's own sampler would have drawn.
"""

from __future__ import annotations

import ctypes
from typing import Any

from fondasi.backends.decode_batching import Job

SLOTS = 4  # sequences decoded together (the server's lane slots for a llama.cpp model)


class LlamaRows:
    """A llama.cpp model's batch of sequences, for ``DecodeBatcher``."""

    def __init__(self, llm: Any, slots: int = SLOTS) -> None:
        import llama_cpp

        params = llama_cpp.llama_context_params.from_buffer_copy(llm.context_params)
        params.n_ctx, params.n_seq_max = int(llm.n_ctx()) * slots, slots
        params.kv_unified = False  # each sequence its own cells: see the module docstring
        self._ctx = llama_cpp.llama_init_from_model(llm.model, params)
        if not self._ctx:
            raise RuntimeError(f"llama.cpp could not make a context for {slots} sequences")
        self._release = (llama_cpp.llama_batch_free, llama_cpp.llama_free)  # usable at exit
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(max(int(params.n_batch), slots), 0, 1)
        # A context must go before its model: closing the Llama frees this one first.
        llm._stack.callback(self.close)
        self.n_batch = int(params.n_batch)
        self.vocab = int(llm.n_vocab())
        self._free = list(range(slots))  # sequence ids no row holds
        self._seqs: list[int] = []  # per row: its sequence id
        self._positions: list[int] = []  # per row: where its next token goes
        self._fresh: tuple[Job, int] | None = None  # the job just prefilled, and its id

    def close(self) -> None:
        """Free the context (before the model: ``llm.close()`` runs this first)."""
        if self._ctx:
            free_batch, free_context = self._release
            free_batch(self._batch)
            free_context(self._ctx)
            self._ctx = None

    def __del__(self) -> None:
        if getattr(self, "_ctx", None):
            self.close()

    def reserve(self, job: Job) -> bool:
        """Every sequence has a full context of cells: a free sequence id is room enough."""
        return True

    def generator(self, seed: int) -> Any:
        """A numpy generator for the job's draws."""
        import numpy as np

        return np.random.default_rng(seed)

    def prefill(self, job: Job) -> Any:
        """Read the prompt alone under a free sequence id; its last token's logits."""
        seq = self._free.pop(0)
        self._fresh = (job, seq)
        prompt = job.prompt
        for start in range(0, len(prompt), self.n_batch):
            part = prompt[start : start + self.n_batch]
            last = start + len(part) == len(prompt)
            entries = [
                (token, start + i, seq, last and i == len(part) - 1) for i, token in enumerate(part)
            ]
            self._decode(entries)
        return self._logits(1)[0]

    def add(self, job: Job) -> None:
        """Make the job just prefilled the last row."""
        assert self._fresh is not None and self._fresh[0] is job
        self._seqs.append(self._fresh[1])
        self._positions.append(len(job.prompt))
        self._fresh = None

    def discard(self, job: Job) -> None:
        """Free what a job that never became a row held."""
        if self._fresh is not None and self._fresh[0] is job:
            self._forget(self._fresh[1])
            self._fresh = None

    def step(self, tokens: list[int]) -> Any:
        """One decode of each row's newest token at its own position; logits per row."""
        self._decode(
            [
                (token, pos, seq, True)
                for token, pos, seq in zip(tokens, self._positions, self._seqs, strict=True)
            ]
        )
        self._positions = [position + 1 for position in self._positions]
        return self._logits(len(tokens))

    def keep(self, rows: list[int]) -> None:
        """Keep these rows; the others' cells and sequence ids are freed."""
        kept = set(rows)
        for row, seq in enumerate(self._seqs):
            if row not in kept:
                self._forget(seq)
        self._seqs = [self._seqs[row] for row in rows]
        self._positions = [self._positions[row] for row in rows]

    def reset(self) -> None:
        """Forget every row."""
        import llama_cpp

        llama_cpp.llama_memory_clear(self._memory, False)
        self._free = sorted([*self._free, *self._seqs, *([self._fresh[1]] if self._fresh else [])])
        self._seqs, self._positions, self._fresh = [], [], None

    def choose(self, job: Job, row: Any) -> int:
        """Greedy, or top_p then temperature, drawn from the job's generator."""
        import numpy as np

        if job.temperature <= 0:
            return int(np.argmax(row))
        logits = row.astype(np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        if job.top_p < 1.0:  # the smallest set of likeliest tokens holding top_p of the mass
            order = np.argsort(-probs, kind="stable")
            held = int(np.searchsorted(np.cumsum(probs[order]), job.top_p)) + 1
            logits = np.full_like(logits, -np.inf)
            logits[order[:held]] = row[order[:held]]
        scaled = logits / job.temperature
        probs = np.exp(scaled - scaled.max())
        probs /= probs.sum()
        draw = job.generator if job.generator is not None else np.random.default_rng()
        return int(draw.choice(len(probs), p=probs))

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        import llama_cpp

        batch = self._batch
        batch.n_tokens = len(entries)
        for i, (token, position, seq, wanted) in enumerate(entries):
            batch.token[i], batch.pos[i] = token, position
            batch.n_seq_id[i], batch.seq_id[i][0], batch.logits[i] = 1, seq, wanted
        status = llama_cpp.llama_decode(self._ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode failed ({status}): no room in the KV cache?")

    def _logits(self, rows: int) -> Any:
        """The logits of the batch's last ``rows`` outputs, copied (the next decode reuses them)."""
        import llama_cpp
        import numpy as np

        pointer = ctypes.cast(llama_cpp.llama_get_logits(self._ctx), ctypes.POINTER(ctypes.c_float))
        return np.ctypeslib.as_array(pointer, shape=(rows, self.vocab)).copy()

    def _forget(self, seq: int) -> None:
        import llama_cpp

        llama_cpp.llama_memory_seq_rm(self._memory, seq, -1, -1)
        self._free.append(seq)


__all__ = ["SLOTS", "LlamaRows"]
