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

from pydantic import ValidationError

from fondasi.errors import BadInputError
from fondasi.models.aio import Awaits
from fondasi.prompts.parse import OutputParseError
from fondasi.types import (
    Answered,
    Chunk,
    Completion,
    GenerateOptions,
    TokenLogprob,
    ToolCall,
    Usage,
)

Price = Callable[[Usage, float], float | None]  # (usage, seconds) -> USD


class Stamp:
    """Stamps a stream's chunks: the first and the final one with who answered, the final one
    with the cost and timing. Call it on each chunk in order."""

    def __init__(self, model: str, version: str | None, price: Price) -> None:
        self.model, self.version, self.price = model, version, price
        self.start = time.perf_counter()
        self.first: float | None = None
        self.opened = False

    def __call__(self, chunk: Chunk) -> Chunk:
        """The chunk, stamped as its place in the stream asks."""
        if (chunk.text or chunk.tool_calls) and self.first is None:
            self.first = time.perf_counter() - self.start
        who = {"model": self.model, "version": self.version}
        if not chunk.final:
            opened, self.opened = self.opened, True
            return chunk if opened else chunk.model_copy(update=who)
        seconds = time.perf_counter() - self.start
        cost = self.price(chunk.usage, seconds) if chunk.usage is not None else None
        timing = {"seconds": seconds, "first_token_seconds": self.first, "cost_usd": cost}
        return chunk.model_copy(update={**who, **timing})


def timed(
    chunks: Iterator[Chunk], model: str, version: str | None, price: Price
) -> Iterator[Chunk]:
    """Pass ``chunks`` on, stamping the final one with who answered, cost and timing.

    The first chunk names the model too, so a server can say who is answering before the
    answer ends (a fallback chain settles on a model by its first chunk).
    """
    stamp = Stamp(model, version, price)
    for chunk in chunks:
        yield stamp(chunk)


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
    calls: list[ToolCall] = []
    logprobs: list[TokenLogprob] | None = None
    final: Chunk | None = None
    for chunk in chunks:
        if (chunk.text or chunk.tool_calls) and first is None:
            first = time.perf_counter() - start
        parts.append(chunk.text)
        calls.extend(chunk.tool_calls)
        if chunk.logprobs is not None:
            logprobs = [*(logprobs or []), *chunk.logprobs]
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
        tool_calls=calls,
        logprobs=logprobs,
    )


def options_of(options: GenerateOptions | None, overrides: dict[str, Any]) -> GenerateOptions:
    """``options`` with keyword overrides applied; a bad value is a clear ``BadInputError``.

    ``schema=`` is short for ``json_schema=`` (a pydantic model class or a JSON schema).
    """
    if "schema" in overrides:
        overrides = {**overrides, "json_schema": overrides["schema"]}
        del overrides["schema"]
    try:
        base = dict(options) if options else {}  # objects kept: a schema keeps its class
        return GenerateOptions(**{**base, **overrides})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "options"
        raise BadInputError(f"bad option {where!r}: {first['msg']}") from None


def parsed(answer: Completion, options: GenerateOptions) -> Completion:
    """The answer with its ``parsed`` value, when a schema was asked and the answer is whole."""
    schema = options.json_schema
    if schema is None or answer.finish_reason != "stop" or answer.tool_calls:
        return answer
    try:
        value = schema.parse(answer.text)
    except ValueError as exc:  # JSON or pydantic validation: the model broke the schema
        raise OutputParseError(f"the answer does not match the schema: {exc}") from None
    return answer.model_copy(update={"parsed": value})


class Folds(Awaits):
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
        """The whole answer, with usage, timing, cost and who answered: the stream folded.

        With a schema (``json_schema=`` or ``schema=``: a pydantic model class or a JSON
        schema) the answer's ``parsed`` holds the object read from it.
        """
        chosen = options_of(options, overrides)
        chunks = self.stream(
            prompt, system=system, images=images, options=chosen, chat_template=chat_template
        )
        return parsed(fold(chunks, self.id), chosen)
