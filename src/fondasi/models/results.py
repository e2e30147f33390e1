"""A stream's answer, once: timing and who answered go on the last chunk, and ``fold``
gathers any stream into a ``Completion``.

Every model object streams; ``generate`` is ``fold(stream)``. A plain model stamps its
final chunk with its id, version, cost and timing (``timed``); wrappers pass that chunk on,
adding the route they took (``routed``), so nobody digs through wrappers to learn who
answered or what it cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from fondasi.types import Answered, Chunk, Completion, GenerateOptions, Usage

Price = Callable[[Usage, float], float | None]  # (usage, seconds) -> USD


def timed(
    chunks: Iterator[Chunk], model: str, version: str | None, price: Price
) -> Iterator[Chunk]:
    """Pass ``chunks`` on, stamping the final one with who answered, cost and timing.

    The first chunk names the model too, so a server can say who is answering before the
    answer ends (a fallback chain settles on a model by its first chunk).
    """
    start = time.perf_counter()
    first: float | None = None
    opened = False
    for chunk in chunks:
        if chunk.text and first is None:
            first = time.perf_counter() - start
        if not chunk.final:
            yield chunk if opened else chunk.model_copy(update={"model": model, "version": version})
            opened = True
            continue
        seconds = time.perf_counter() - start
        cost = price(chunk.usage, seconds) if chunk.usage is not None else None
        yield chunk.model_copy(
            update={
                "model": model,
                "version": version,
                "seconds": seconds,
                "first_token_seconds": first,
                "cost_usd": cost,
            }
        )


def routed(chunks: Iterator[Chunk], route: Callable[[], str | None]) -> Iterator[Chunk]:
    """Pass ``chunks`` on, adding ``route()`` (read at the end) to the final chunk's route."""
    for chunk in chunks:
        if not chunk.final:
            yield chunk
            continue
        why = route()
        joined = "; ".join(part for part in (why, chunk.route) if part) or None
        yield chunk.model_copy(update={"route": joined})


def answered(result: Answered) -> dict[str, object]:
    """The who-answered fields of a final chunk or completion, to copy onto another."""
    return result.model_dump(include=set(Answered.model_fields))


def fold(chunks: Iterator[Chunk], model: str) -> Completion:
    """Gather a stream into a ``Completion``; ``model`` names it if the stream did not."""
    start = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    final: Chunk | None = None
    for chunk in chunks:
        if chunk.text and first is None:
            first = time.perf_counter() - start
        parts.append(chunk.text)
        final = chunk
    if final is None or final.usage is None:
        raise RuntimeError(f"{model} ended its answer without usage")
    seconds = time.perf_counter() - start
    return Completion(
        **{
            **answered(final),
            "model": final.model or model,
            "seconds": final.seconds if final.seconds is not None else seconds,
            "first_token_seconds": (
                final.first_token_seconds if final.first_token_seconds is not None else first
            ),
        },
        text="".join(parts),
        usage=final.usage,
        finish_reason=final.finish_reason or "stop",
    )


class Folds:
    """``generate`` as ``stream`` folded, once for every model object."""

    @property
    def id(self) -> str:
        """The id the model goes by."""
        raise NotImplementedError

    def stream(
        self,
        prompt: Any,
        *,
        system: str | None = None,
        images: Any = None,
        options: GenerateOptions | None = None,
        chat_template: bool = True,
        **overrides: Any,
    ) -> Iterator[Chunk]:
        """The answer as it is generated."""
        raise NotImplementedError

    def generate(
        self,
        prompt: Any,
        *,
        system: str | None = None,
        images: Any = None,
        options: GenerateOptions | None = None,
        chat_template: bool = True,
        **overrides: Any,
    ) -> Completion:
        """The whole answer, with usage, timing, cost and who answered: the stream folded."""
        chunks = self.stream(
            prompt,
            system=system,
            images=images,
            options=options,
            chat_template=chat_template,
            **overrides,
        )
        return fold(chunks, self.id)
