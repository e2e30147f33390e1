"""Server-sent events read off the wire: the parts of the format compatible servers use."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import openai
import pytest

from fondasi.backends.openai_wire import Events, body_for, logprobs_of


def _lines(*events: object, done: bool = True) -> list[str]:
    lines = []
    for event in events:
        lines += [f"data: {json.dumps(event)}", ""]
    if done:
        lines += ["data: [DONE]", ""]
    return lines


def test_events_are_read_up_to_done_and_the_rest_is_drained_unparsed() -> None:
    lines = [*_lines({"n": 1}, {"n": 2}), "data: not json after the end", ""]
    consumed: list[str] = []

    def watched() -> list[str]:
        for line in lines:
            consumed.append(line)
        return consumed

    got = list(Events().read(iter(watched())))
    assert got == [{"n": 1}, {"n": 2}]
    assert consumed == lines  # read to the end, so the connection goes back to the pool


def test_comments_event_names_multiline_data_and_a_last_event_without_a_blank_line() -> None:
    lines = [": keep-alive", "event: chunk", 'data: {"a":', "data: 1}", "", 'data:{"b": 2}']
    assert list(Events().read(lines)) == [{"a": 1}, {"b": 2}]


def test_the_async_reader_gives_the_same_events() -> None:
    lines = _lines({"n": 1}, {"n": 2})

    async def source() -> AsyncIterator[str]:
        for line in lines:
            yield line

    async def read() -> list[dict[str, object]]:
        return [event async for event in Events().aread(source())]

    assert asyncio.run(read()) == list(Events().read(lines))


def test_an_error_told_in_the_stream_raises_the_sdks_error_with_its_message() -> None:
    lines = _lines({"n": 1}, {"error": {"message": "model overloaded", "type": "server_error"}})
    with pytest.raises(openai.APIError, match="model overloaded"):
        list(Events().read(lines))


def test_an_event_that_is_not_a_json_object_is_refused() -> None:
    with pytest.raises(ValueError, match="not a JSON object"):
        list(Events().read(["data: [1, 2]", ""]))
    with pytest.raises(json.JSONDecodeError):
        list(Events().read(["data: {oops", ""]))


def test_unset_options_are_left_out_of_the_body() -> None:
    body = body_for({"model": "m", "stop": None, "seed": None, "temperature": 0.0})
    assert body == {"model": "m", "temperature": 0.0}


def test_logprobs_are_read_from_plain_json() -> None:
    raw = {
        "content": [
            {
                "token": "Halo",
                "logprob": -0.1,
                "bytes": [72, 97, 108, 111],
                "top_logprobs": [{"token": "Hai", "logprob": -2.5, "bytes": None}],
            }
        ]
    }
    [token] = logprobs_of(raw) or []
    assert (token.token, token.logprob, token.bytes) == ("Halo", -0.1, [72, 97, 108, 111])
    assert [(t.token, t.logprob) for t in token.top_logprobs] == [("Hai", -2.5)]
    assert logprobs_of(None) is None and logprobs_of({"content": []}) is None
