"""Async calls on every model object: the sync call runs on a worker thread, off the loop.

    answer = await model.agenerate("Apa ibu kota Indonesia?", max_tokens=20)
    async for chunk in model.astream("Sebutkan tiga pulau di Indonesia."):
        print(chunk.text, end="")
    vectors = await model.aembed(["harga tiket kereta"])

Same arguments, same results, same errors as the sync calls, because they *are* the sync
calls: a model object's behaviour (option checks, JSON mode, the final chunk's timing and
cost from ``results.timed``, a wrapper's routing and guard) lives in its sync ``stream``, and
running that on a worker thread keeps the async answer identical without writing it twice.
A backend's own ``astream`` (``backends.base.AsyncTextGenerator``) would skip all of that,
so it is not used here; a local model computes on the CPU and needs a thread anyway.

A stream crosses to the event loop through a bounded buffer: the worker runs at most
``BUFFER`` chunks ahead of the reader. When the reader stops (``break``, ``aclose``, the
task cancelled), the worker stops at the next chunk and closes the stream in its own
thread, which ends generation in the backend; a call still waiting for its model gives up
its place. ``agenerate`` is the sync ``generate`` on a worker, so its answer is generate's
own (schema parsing included). Errors re-raise in the awaiting task with their own type.

One call at a time on a local model (``gate_of``): the server runs one generation at a time
per local model (its ``Lane`` has capacity 1, ``server/pool.py``) and one encoder call at a
time per embedder (its micro-batcher), because a local model already keeps every core busy,
so two calls at once only slow each other down, and some runtimes (llama.cpp) must not be
called from two threads at once. The async API keeps the same rule for every async call on
the same local model; a hosted model takes as many at once as its provider will. Sync calls
are not gated: threads of one's own are one's own to pace.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, TypeVar, cast

from fondasi.types import Chunk, Completion, GenerateOptions

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from fondasi.backends.base import Purpose
    from fondasi.models.contract import Labels, ModelHandle, PromptInput
    from fondasi.prompts.template import PromptTemplate

T = TypeVar("T")

BUFFER = 8  # chunks a stream's worker may run ahead of its reader
_MAKING = threading.Lock()  # so two first calls on one model make one gate, not two


class Gate:
    """One call at a time; a waiting call that is called off leaves the queue."""

    def __init__(self) -> None:
        self._free = threading.Condition()
        self._busy = False

    def enter(self, stop: threading.Event) -> bool:
        """Wait for the model; False if ``stop`` was set first."""
        with self._free:
            self._free.wait_for(lambda: stop.is_set() or not self._busy)
            if stop.is_set():
                return False
            self._busy = True
            return True

    def leave(self) -> None:
        """Let the next call in."""
        with self._free:
            self._busy = False
            self._free.notify_all()

    def wake(self) -> None:
        """Make waiting calls look at their ``stop`` again."""
        with self._free:
            self._free.notify_all()


def gate_of(model: ModelHandle) -> Gate | None:
    """The gate async calls on ``model`` pass through; None for a hosted model.

    A wrapper that runs locally (a guarded model, an alias) shares its primary model's
    gate. Fallback chains and privacy routes say they are hosted, so they are not gated:
    a local model they fall back to may then run beside a direct async call on it.
    """
    from fondasi.models.wrapper import Wrapper  # it imports results, which imports us

    if model.remote:
        return None
    if isinstance(model, Wrapper):
        return gate_of(model.primary())
    with _MAKING:
        gate = vars(model).setdefault("_async_gate", Gate())
    return cast(Gate, gate)


class _Call:
    """What a reader and its worker share: the stop signal and the gate waited on."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.gate: Gate | None = None

    def enter(self, gate: Gate | None) -> bool:
        self.gate = gate
        return gate is None or gate.enter(self.stop)

    def cancel(self) -> None:
        self.stop.set()
        if self.gate is not None:
            self.gate.wake()


async def bridge(model: ModelHandle, make: Callable[[], Iterator[T]]) -> AsyncGenerator[T, None]:
    """Items of ``make()``, produced on a worker thread through ``model``'s gate."""
    loop = asyncio.get_running_loop()
    arrived: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    room = threading.Semaphore(BUFFER)
    call = _Call()

    def put(kind: str, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(arrived.put_nowait, (kind, value))
        except RuntimeError:  # the loop has closed: nobody reads any more
            call.stop.set()

    def work() -> None:
        items: Iterator[T] | None = None
        entered = False
        try:
            entered = call.enter(gate_of(model))
            if not entered:
                return
            items = iter(make())
            while True:
                room.acquire()
                if call.stop.is_set():
                    return
                try:
                    item = next(items)
                except StopIteration:
                    put("end", None)
                    return
                put("item", item)
        except BaseException as exc:  # raised again in the awaiting task
            put("error", exc)
        finally:
            try:
                close = getattr(items, "close", None)
                if close is not None:
                    close()  # here, in the thread that ran it: ends the backend's generation
            except BaseException as exc:
                put("error", exc)
            finally:
                if entered and call.gate is not None:
                    call.gate.leave()

    context = contextvars.copy_context()  # the caller's context variables go along
    worker = threading.Thread(target=context.run, args=(work,), name="fondasi-async", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = await arrived.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            room.release()
            yield value
    finally:
        call.cancel()
        room.release()  # a worker waiting for room wakes, sees the stop and closes


async def offload(model: ModelHandle, job: Callable[[], T]) -> T:
    """``job()`` on a worker thread through ``model``'s gate."""
    async with aclosing(bridge(model, lambda: iter((job(),)))) as results:
        return await anext(results)


class Awaits:
    """``astream``, ``agenerate``, ``aembed``, ``aclassify``, ``ascore`` for every model."""

    def astream(
        self,
        prompt: PromptInput,
        *,
        system: str | None = None,
        images: Any = None,
        options: GenerateOptions | None = None,
        chat_template: bool = True,
        **overrides: Any,
    ) -> AsyncGenerator[Chunk, None]:
        """``stream`` without blocking the event loop; ``aclose`` (or ``break``) stops it."""
        model = cast("ModelHandle", self)

        def make() -> Iterator[Chunk]:
            return model.stream(
                prompt,
                system=system,
                images=images,
                options=options,
                chat_template=chat_template,
                **overrides,
            )

        return bridge(model, make)

    async def agenerate(
        self,
        prompt: PromptInput,
        *,
        system: str | None = None,
        images: Any = None,
        options: GenerateOptions | None = None,
        chat_template: bool = True,
        **overrides: Any,
    ) -> Completion:
        """``generate`` without blocking the event loop: generate's own answer, on a worker.

        Cancelling a call still waiting for its model withdraws it; a generation already
        running finishes on its worker (``astream`` is the call to stop mid-answer).
        """
        model = cast("ModelHandle", self)

        def job() -> Completion:
            return model.generate(
                prompt,
                system=system,
                images=images,
                options=options,
                chat_template=chat_template,
                **overrides,
            )

        return await offload(model, job)

    async def aembed(
        self, texts: str | Sequence[str], purpose: Purpose = None
    ) -> npt.NDArray[np.float32]:
        """``embed`` without blocking the event loop."""
        model = cast("ModelHandle", self)
        return await offload(model, lambda: model.embed(texts, purpose))

    async def aclassify(
        self,
        texts: str | Sequence[str],
        labels: Labels | None = None,
        *,
        shots: Sequence[Mapping[str, str]] | None = None,
        template: str | PromptTemplate | None = None,
        k: int | None = None,
        select: str | None = None,
        calibrate: bool = True,
    ) -> Any:
        """``classify`` without blocking the event loop."""
        model = cast("ModelHandle", self)

        def job() -> Any:
            return model.classify(
                texts,
                labels,
                shots=shots,
                template=template,
                k=k,
                select=select,
                calibrate=calibrate,
            )

        return await offload(model, job)

    async def ascore(self, prompt: PromptInput, continuations: Sequence[str]) -> list[float]:
        """``score`` without blocking the event loop."""
        model = cast("ModelHandle", self)
        return await offload(model, lambda: model.score(prompt, continuations))


__all__ = ["BUFFER", "Awaits", "Gate", "bridge", "gate_of", "offload"]
