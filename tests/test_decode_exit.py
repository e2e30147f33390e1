"""At exit every decode scheduler thread is waited for, even one whose batcher is gone."""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

import numpy as np

from fondasi.backends import decode_batching
from fondasi.backends.decode_batching import DONE, DecodeBatcher, Job


class SlowToFreeRows:
    """Rows of a two-token vocabulary whose freeing, like a large model's, takes a while."""

    def __init__(self, freeing: threading.Event, freed: threading.Event) -> None:
        self.freeing, self.freed = freeing, freed

    def __del__(self) -> None:
        self.freeing.set()
        time.sleep(0.5)
        self.freed.set()

    def reserve(self, job: Job) -> bool:
        return True

    def generator(self, seed: int) -> Any:
        return None

    def prefill(self, job: Job) -> Any:
        return np.array([0.0, 1.0])

    def add(self, job: Job) -> None:
        pass

    def step(self, tokens: list[int]) -> Any:
        return np.array([[0.0, 1.0]] * len(tokens))

    def discard(self, job: Job) -> None:
        pass

    def keep(self, rows: list[int]) -> None:
        pass

    def reset(self) -> None:
        pass

    def choose(self, job: Job, row: Any) -> int:
        return int(np.argmax(row))


def test_the_exit_hook_waits_for_a_model_freed_on_its_scheduler_thread() -> None:
    freeing, freed = threading.Event(), threading.Event()
    gc.disable()  # the batcher must go by reference count, on the thread that drops it last
    try:
        batcher = DecodeBatcher(SlowToFreeRows(freeing, freed), eos={0})
        job = Job(prompt=[1], max_new=3)
        batcher.submit(job)
        del batcher  # the caller is done with the model; only the scheduler holds it now
        tokens = []
        while (item := job.out.get(timeout=10)) is not DONE:
            tokens.append(item)
        assert tokens == [1, 1, 1]
        assert freeing.wait(10), "the scheduler thread should drop the last reference"
        decode_batching._close_all()
        assert freed.is_set(), "exit went on while the model was still being freed"
    finally:
        gc.enable()
