"""Dynamic batching of decode steps: concurrent generations on one model share each forward.

One scheduler thread per model owns the batch. A new request is prefilled alone (its prompt
through the model into a fresh cache, as an unbatched call does), picks its first token, and
its cache joins the batch's, left-padded to a common length. Each step then runs one forward
over the newest token of every active request; each request picks its own next token
(greedy, or sampled at its own temperature and top_p from its own seeded generator, after its
grammar mask and log-probability recording). Requests join and leave at step boundaries. A
reader that stops reading sets ``cancel`` and its row leaves at the next step.

    reader threads                 scheduler thread
    submit(job) ──> pending ──>    prefill alone, pick token 1, join the batch
    job.out.get() <── token ──     step: one forward for all rows, each row picks its token
    cancel.set()  ──────────>      row dropped; finished rows dropped; idle: thread ends

transformers' own continuous batching (``generate_batch``, paged attention) runs on this CPU
but holds one sampling mode and one seed for all requests and no stop strings, and its first
batch took about 50 s here; this keeps every request's own settings.
"""

from __future__ import annotations

import atexit
import queue
import threading
import weakref
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fondasi.backends.stops import StopScanner
from fondasi.types import Chunk, Usage

if TYPE_CHECKING:
    from fondasi.backends.constrained import Decoding

# Most sequences decoded together: the server gives a batching model this many lane slots.
MAX_BATCH = 16

# transformers' default top-k: the unbatched path asks ``generate`` for top_k=None, which its
# generation config fills with 50, so sampled answers keep to the 50 likeliest tokens there too
# (and a seed gives the same text batched or not).
SAMPLE_TOP_K = 50

DONE = None  # put on a job's queue after its last token


@dataclass
class Job:
    """One generation in the batch: its prompt, its settings, and where its tokens go."""

    prompt: list[int]
    max_new: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    decoding: Decoding | None = None  # grammar mask / log-probabilities, per token
    out: queue.Queue[int | BaseException | None] = field(default_factory=queue.Queue)
    cancel: threading.Event = field(default_factory=threading.Event)
    answer: list[int] = field(default_factory=list)  # picked so far (scheduler thread)
    generator: Any = None  # torch.Generator for a seeded sampled job


def batchable(model: Any) -> bool:
    """Whether rows of this model's cache can be padded and merged: every layer a plain
    full-attention ``DynamicLayer`` and positions passed in (left padding moves them)."""
    import inspect

    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    try:
        cache = DynamicCache(config=model.config)
    except Exception:  # a config the cache cannot read: not a plain decoder
        return False
    plain = bool(cache.layers) and all(type(layer) is DynamicLayer for layer in cache.layers)
    return plain and "position_ids" in inspect.signature(model.forward).parameters


class DecodeBatcher:
    """Decodes the jobs submitted to one model together, one forward per step."""

    def __init__(self, model: Any, eos: set[int], max_batch: int = MAX_BATCH) -> None:
        self.model = model
        self.eos = eos
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: deque[Job] = deque()
        self._worker: threading.Thread | None = None  # the scheduler, while it has work
        self._thread: threading.Thread | None = None  # the latest scheduler, for close()
        self._hooked = False  # close() registered to run at exit
        self.widest = 0  # most rows one step has decoded: how much batching happened
        self.steps = 0  # batched decode steps run so far
        # The batch, touched by the scheduler thread only.
        self._jobs: list[Job] = []
        self._cache: Any = None
        self._mask: Any = None  # (rows, cached length): 0 where a row is left padding
        self._positions: Any = None  # (rows,): the position of each row's next token
        self._last: Any = None  # (rows,): each row's newest token, the next step's input

    @property
    def active(self) -> int:
        """Jobs decoding or waiting to join."""
        with self._lock:
            return len(self._jobs) + len(self._pending)

    def submit(self, job: Job) -> None:
        """Queue a job; it joins the batch at the next step boundary."""
        import torch

        if job.seed is not None and job.temperature > 0:
            job.generator = torch.Generator().manual_seed(job.seed)
        with self._lock:
            self._pending.append(job)
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._run, name="decode-batcher", daemon=True
                )
                self._worker.start()
                self._thread = self._worker
                if not self._hooked:
                    self._hooked = True
                    atexit.register(_close_later, weakref.ref(self))

    def close(self, timeout: float = 10.0) -> None:
        """Cancel every job and wait for the scheduler thread to end.

        Run at exit too: a daemon thread still inside torch when the interpreter ends makes
        the process abort ("terminate called without an active exception", status 134).
        """
        with self._lock:
            worker = self._thread
            for job in [*self._pending, *self._jobs]:
                job.cancel.set()
        if worker is not None:
            worker.join(timeout)  # also one that has just said it is done but not yet ended

    def _run(self) -> None:
        import torch

        with torch.inference_mode():
            while True:
                with self._lock:
                    if not self._jobs and not self._pending:
                        self._worker = None  # a later submit starts a new thread
                        return
                    room = min(self.max_batch - len(self._jobs), len(self._pending))
                    joining = [self._pending.popleft() for _ in range(room)]
                try:
                    for job in joining:
                        self._join(job)
                    if self._jobs:
                        self._step()
                except BaseException as exc:  # the model failed: every job hears of it
                    with self._lock:
                        failed, self._jobs = self._jobs, []
                    self._cache = self._mask = self._positions = self._last = None
                    for job in {id(job): job for job in [*failed, *joining]}.values():
                        job.out.put(exc)

    def _join(self, job: Job) -> None:
        """Prefill the job's prompt alone, pick its first token, and add it to the batch."""
        import torch
        from transformers import DynamicCache

        if job.cancel.is_set():
            job.out.put(DONE)
            return
        ids = torch.tensor([job.prompt])
        cache = DynamicCache(config=self.model.config)
        out = self.model(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            position_ids=torch.arange(ids.shape[1]).unsqueeze(0),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        if not self._pick(job, out.logits[0, -1].float()):
            return
        length = ids.shape[1]
        with self._lock:
            if not self._jobs:
                self._cache, self._mask = cache, torch.ones((1, length), dtype=torch.long)
            else:
                self._merge(cache, length)
            self._jobs.append(job)
        self._positions = _append(self._positions, length)
        self._last = _append(self._last, job.answer[-1])

    def _merge(self, cache: Any, length: int) -> None:
        """Add one row's cache to the batch, left-padding whichever is shorter."""
        import torch

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

    def _step(self) -> None:
        """One forward over every row's newest token; each row picks its next one."""
        import torch

        rows = len(self._jobs)
        self.widest = max(self.widest, rows)
        self.steps += 1
        self._mask = torch.cat([self._mask, torch.ones((rows, 1), dtype=torch.long)], dim=1)
        out = self.model(
            input_ids=self._last.view(rows, 1),
            attention_mask=self._mask,
            position_ids=self._positions.view(rows, 1),
            past_key_values=self._cache,
            use_cache=True,
        )
        logits = out.logits[:, -1].float()
        self._positions = self._positions + 1
        keep = []
        for row, job in enumerate(self._jobs):
            if self._pick(job, logits[row]):
                keep.append(row)
                self._last[row] = job.answer[-1]
        if len(keep) < rows:
            self._drop(keep)

    def _pick(self, job: Job, scores: Any) -> bool:
        """Choose the job's next token and hand it over; False when the job is over."""
        import torch

        if job.cancel.is_set():
            job.out.put(DONE)
            return False
        try:
            if job.decoding is not None:
                # The ids so far and a numpy view of the row: masked in place.
                job.decoding([*job.prompt, *job.answer], scores.numpy())
                if not torch.isfinite(scores).any():  # the grammar allows nothing: it says why
                    job.out.put(DONE)
                    return False
            token = _choose(job, scores)
        except Exception as exc:  # this job's grammar or settings failed, not the batch
            job.out.put(exc)
            return False
        job.answer.append(token)
        job.out.put(token)
        if token in self.eos or len(job.answer) >= job.max_new:
            job.out.put(DONE)
            return False
        return True

    def _drop(self, keep: list[int]) -> None:
        """Keep only these rows, and cut the padding columns no row needs any more."""
        import torch

        index = torch.tensor(keep, dtype=torch.long)
        with self._lock:
            self._jobs = [self._jobs[row] for row in keep]
        if not keep:
            self._cache = self._mask = self._positions = self._last = None
            return
        self._cache.batch_select_indices(index)
        self._mask, self._positions = self._mask[index], self._positions[index]
        self._last = self._last[index]
        start = int(self._mask.any(dim=0).long().argmax())  # first column some row reads
        if start:
            for layer in self._cache.layers:
                layer.keys, layer.values = layer.keys[:, :, start:], layer.values[:, :, start:]
            self._mask = self._mask[:, start:]


def stream_job(
    batcher: DecodeBatcher,
    job: Job,
    decode: Callable[[list[int]], str],
    stops: Sequence[str],
    special: Collection[int],
    logprobs: bool,
) -> Iterator[Chunk]:
    """Submit ``job`` and stream its text; the last chunk carries usage and why it ended.

    ``decode`` turns the answer's ids into text (special tokens skipped); the whole answer is
    decoded each time, so each piece keeps its leading space and a character split across
    tokens waits for its last byte.
    """
    scanner = StopScanner(stops)
    batcher.submit(job)
    answer: list[int] = []
    shown, ended = "", False  # ended: the scheduler said the job is over
    try:
        while not scanner.stopped:
            item = job.out.get()
            if item is DONE:
                ended = True
                break
            if isinstance(item, BaseException):
                raise item
            answer.append(item)
            text = decode(answer)
            if text.endswith("\ufffd"):
                continue
            piece = scanner.feed(text[len(shown) :])
            shown = text
            if piece:
                yield Chunk(text=piece)
    finally:
        job.cancel.set()  # also when the reader leaves early: the row goes at the next step
    rest = "" if scanner.stopped else scanner.feed(decode(answer)[len(shown) :])
    if job.decoding is not None:
        while not ended:  # the scheduler may still be feeding the grammar: wait it out
            ended = job.out.get() is DONE
        last = answer[-1] if answer else None
        # The end-of-text token is not part of the answer: no log-probability for it.
        job.decoding.finish(None if last in special else last)
    finish = "stop" if scanner.stopped or len(answer) < job.max_new else "length"
    yield Chunk(
        text=rest + scanner.flush(),
        logprobs=job.decoding.logprobs if job.decoding is not None and logprobs else None,
        usage=Usage(prompt_tokens=len(job.prompt), completion_tokens=len(answer)),
        finish_reason=finish,
    )


def _choose(job: Job, scores: Any) -> int:
    """Greedy, or sampled as transformers' ``generate`` samples: temperature, top-k, top_p."""
    import torch
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    if job.temperature <= 0:
        return int(torch.argmax(scores))
    row = scores.unsqueeze(0)
    if job.temperature != 1.0:
        row = TemperatureLogitsWarper(job.temperature)(None, row)
    row = TopKLogitsWarper(SAMPLE_TOP_K)(None, row)
    if job.top_p < 1.0:
        row = TopPLogitsWarper(job.top_p)(None, row)
    probs = torch.softmax(row, dim=-1)
    return int(torch.multinomial(probs, num_samples=1, generator=job.generator)[0, 0])


def _close_later(batcher: weakref.ref[DecodeBatcher]) -> None:
    alive = batcher()
    if alive is not None:
        alive.close()


def _pad(tensor: Any, width: int) -> Any:
    """Left-pad the sequence axis (dim 2 of keys and values, dim 1 of a mask) with zeros."""
    import torch.nn.functional as F

    axis = 2 if tensor.dim() == 4 else 1
    missing = width - tensor.shape[axis]
    if missing <= 0:
        return tensor
    padding = (0, 0, missing, 0) if axis == 2 else (missing, 0)
    return F.pad(tensor, padding)


def _append(tensor: Any, value: int) -> Any:
    import torch

    row = torch.tensor([value], dtype=torch.long)
    return row if tensor is None else torch.cat([tensor, row])


__all__ = ["MAX_BATCH", "DecodeBatcher", "Job", "batchable", "stream_job"]
