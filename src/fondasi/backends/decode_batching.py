"""Dynamic batching of decode steps: concurrent generations on one model share each forward.

One scheduler thread per model owns the batch; a ``Rows`` engine holds the model's side of
it (transformers: ``torch_rows``; llama.cpp: ``llama_rows``). A new request is prefilled
alone (its prompt read as an unbatched call reads it), picks its first token, and becomes a
row. Each step then runs one forward over the newest token of every row; each request picks
its own next token (greedy, or sampled at its own temperature and top_p from its own seeded
generator, after its grammar mask and log-probability recording). Requests join and leave at
step boundaries. A reader that stops reading sets ``cancel`` and its row leaves at the next
step.

    reader threads                 scheduler thread
    submit(job) ──> pending ──>    prefill alone, pick token 1, add a row
    job.out.get() <── token ──     step: one forward for all rows, each row picks its token
    cancel.set()  ──────────>      row dropped; finished rows dropped; idle: thread ends

transformers' own continuous batching (``generate_batch``, paged attention) runs on this CPU
but holds one sampling mode and one seed for all requests and no stop strings, and its first
batch took about 50 s here; this keeps every request's own settings.
"""

from __future__ import annotations

import atexit
import contextlib
import queue
import threading
import weakref
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from fondasi.backends.stops import StopScanner
from fondasi.types import Chunk, GenerateOptions, Usage

if TYPE_CHECKING:
    from fondasi.backends.constrained import Decoding

# Most sequences decoded together: the server gives a batching model this many lane slots.
MAX_BATCH = 16

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
    generator: Any = None  # the engine's random generator for a seeded sampled job

    @classmethod
    def of(
        cls, prompt: list[int], max_new: int, options: GenerateOptions, decoding: Decoding | None
    ) -> Job:
        """A job with a call's sampling settings."""
        return cls(
            prompt,
            max_new,
            temperature=options.temperature,
            top_p=options.top_p,
            seed=options.seed,
            decoding=decoding,
        )


class Rows(Protocol):
    """A model's side of the batch: its cache rows, one forward per step, its sampler."""

    def reserve(self, job: Job) -> bool:
        """Set aside the cache room the job may need; False if there is none now (the job
        then waits for rows to leave)."""

    def generator(self, seed: int) -> Any:
        """A random generator seeded for one job."""

    def prefill(self, job: Job) -> Any:
        """Read the job's prompt alone; the logits of its first answer token (numpy)."""

    def add(self, job: Job) -> None:
        """Make the job just prefilled the last row."""

    def step(self, tokens: list[int]) -> Any:
        """One forward over each row's newest token; logits, one numpy row per row."""

    def discard(self, job: Job) -> None:
        """Forget a job that ended before it became a row (on its first token, or cancelled)."""

    def keep(self, rows: list[int]) -> None:
        """Keep only these rows, in this order (their room given back)."""

    def reset(self) -> None:
        """Forget every row (after a failure)."""

    def choose(self, job: Job, row: Any) -> int:
        """The job's next token from its (masked) logits: greedy or sampled."""


class DecodeBatcher:
    """Decodes the jobs submitted to one model together, one forward per step."""

    def __init__(
        self,
        rows: Rows,
        eos: Collection[int],
        max_batch: int = MAX_BATCH,
        scope: Callable[[], Any] = contextlib.nullcontext,
    ) -> None:
        self.rows = rows
        self.eos = frozenset(eos)
        self.max_batch = max_batch
        self._scope = scope  # what the scheduler thread runs inside (torch.inference_mode)
        self._lock = threading.Lock()
        self._pending: deque[Job] = deque()
        self._jobs: list[Job] = []  # the rows' jobs, in row order
        self._worker: threading.Thread | None = None  # the scheduler, while it has work
        self._thread: threading.Thread | None = None  # the latest scheduler, for close()
        self.widest = 0  # most rows one step has decoded: how much batching happened
        self.steps = 0  # batched decode steps run so far

    @property
    def active(self) -> int:
        """Jobs decoding or waiting to join."""
        with self._lock:
            return len(self._jobs) + len(self._pending)

    def submit(self, job: Job) -> None:
        """Queue a job; it joins the batch at the next step boundary."""
        if job.seed is not None and job.temperature > 0:
            job.generator = self.rows.generator(job.seed)
        with self._lock:
            self._pending.append(job)
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._run, name="decode-batcher", daemon=True
                )
                _LIVE.add(self)
                _SCHEDULERS.add(self._worker)
                self._worker.start()
                self._thread = self._worker

    def close(self, timeout: float = 10.0) -> None:
        """Cancel every job and wait for the scheduler thread to end.

        Run at exit too: a daemon thread still inside torch when the interpreter ends makes
        the process abort ("terminate called without an active exception", status 134).
        """
        with self._lock:
            worker = self._thread
            for job in [*self._pending, *self._jobs]:
                job.cancel.set()
        # The model can be collected on the scheduler thread itself, which cannot join itself.
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)  # also one that has just said it is done but not yet ended

    def _run(self) -> None:
        with self._scope():
            while True:
                joining: list[Job] = []
                with self._lock:
                    if not self._jobs and not self._pending:
                        self._worker = None  # a later submit starts a new thread
                        return
                    # First come, first served: a job the cache has no room for yet waits,
                    # and so do those behind it.
                    while (
                        self._pending
                        and len(self._jobs) + len(joining) < self.max_batch
                        and self.rows.reserve(self._pending[0])
                    ):
                        joining.append(self._pending.popleft())
                try:
                    for job in joining:
                        self._join(job)
                    if self._jobs:
                        self._step()
                except BaseException as exc:  # the model failed: every job hears of it
                    with self._lock:
                        failed, self._jobs = self._jobs, []
                    self.rows.reset()
                    for job in {id(job): job for job in [*failed, *joining]}.values():
                        job.out.put(exc)

    def _join(self, job: Job) -> None:
        """Prefill the job's prompt alone, pick its first token, and add it as a row."""
        if job.cancel.is_set():  # the reader left while the job waited
            job.out.put(DONE)
            self.rows.discard(job)
        elif self._pick(job, self.rows.prefill(job)):
            self.rows.add(job)
            with self._lock:
                self._jobs.append(job)
        else:
            self.rows.discard(job)

    def _step(self) -> None:
        """One forward over every row's newest token; each row picks its next one."""
        rows = len(self._jobs)
        self.widest = max(self.widest, rows)
        self.steps += 1
        logits = self.rows.step([job.answer[-1] for job in self._jobs])
        keep = [row for row, job in enumerate(self._jobs) if self._pick(job, logits[row])]
        if len(keep) < rows:
            self.rows.keep(keep)
            with self._lock:
                self._jobs = [self._jobs[row] for row in keep]

    def _pick(self, job: Job, scores: Any) -> bool:
        """Choose the job's next token and hand it over; False when the job is over."""
        import numpy as np

        if job.cancel.is_set():
            job.out.put(DONE)
            return False
        try:
            if job.decoding is not None:
                job.decoding([*job.prompt, *job.answer], scores)  # masked in place
                if not np.isfinite(scores).any():  # the grammar allows nothing: it says why
                    job.out.put(DONE)
                    return False
            token = self.rows.choose(job, scores)
        except Exception as exc:  # this job's grammar or settings failed, not the batch
            job.out.put(exc)
            return False
        job.answer.append(token)
        job.out.put(token)
        if token in self.eos or len(job.answer) >= job.max_new:
            job.out.put(DONE)
            return False
        return True


def stream_job(
    batcher: DecodeBatcher,
    job: Job,
    decode: Callable[[list[int]], str],
    stops: Sequence[str],
    special: Collection[int],
    logprobs: bool,
    count_end: bool = True,
) -> Iterator[Chunk]:
    """Submit ``job`` and stream its text; the last chunk carries usage and why it ended.

    ``decode`` turns the answer's ids into text (special tokens skipped); the whole answer is
    decoded each time, so each piece keeps its leading space and a character split across
    tokens waits for its last byte. ``count_end``: whether the end-of-text token counts as
    an answer token in usage (transformers counts it, llama.cpp does not).
    """
    scanner = StopScanner(stops)
    batcher.submit(job)
    answer: list[int] = []
    shown, ended, closed = "", False, False  # ended: the end token came; closed: job over
    try:
        while not scanner.stopped:
            item = job.out.get()
            if item is DONE:
                closed = True
                break
            if isinstance(item, BaseException):
                raise item
            if item in batcher.eos and not count_end:
                ended = True
                continue
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
        while not closed:  # the scheduler may still be feeding the grammar: wait it out
            closed = job.out.get() is DONE
        last = answer[-1] if answer and not ended else None
        # The end-of-text token is not part of the answer: no log-probability for it.
        job.decoding.finish(None if last in special else last)
    finish = "stop" if ended or scanner.stopped or len(answer) < job.max_new else "length"
    yield Chunk(
        text=rest + scanner.flush(),
        logprobs=job.decoding.logprobs if job.decoding is not None and logprobs else None,
        usage=Usage(prompt_tokens=len(job.prompt), completion_tokens=len(answer)),
        finish_reason=finish,
    )


# Batchers with work, and their scheduler threads, for the exit hook below. The threads
# are kept apart: the last reference to a batcher (and its model) can drop on its own
# scheduler thread as that thread ends, freeing the model there while the interpreter
# shuts down; such a thread must be waited for too.
_LIVE: weakref.WeakSet[DecodeBatcher] = weakref.WeakSet()
_SCHEDULERS: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


@atexit.register
def _close_all(timeout: float = 10.0) -> None:
    """Cancel every job and wait for every scheduler thread before the interpreter ends.

    A daemon thread still inside torch at shutdown is ended by the interpreter mid-call, and
    the process aborts ("terminate called without an active exception", status 134).
    """
    for batcher in list(_LIVE):
        batcher.close(timeout)
    for thread in list(_SCHEDULERS):
        if thread is not threading.current_thread():
            thread.join(timeout)


__all__ = ["DONE", "MAX_BATCH", "DecodeBatcher", "Job", "Rows", "stream_job"]
