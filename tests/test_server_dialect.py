"""The whole OpenAI wire dialect of fondasi serve, driven by the openai SDK and LangChain.

n answers, x-request-id, moderations, the Responses API, images, echo and log-probs, tools
and structured output, against a real server on 127.0.0.1 over the bundled models.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from fondasi.settings import Settings

from .serving import Running, running

SMOL = "smollm2-135m-instruct"
BASE = "smollm2-135m"  # the catalog's alias, served under its own name
E5 = "multilingual-e5-small"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ASK = [{"role": "user", "content": "What is the weather in Jakarta?"}]
PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8Bg"
    "AAMBAQAY3Y2wAAAAAElFTkSuQmCC"
)


@pytest.fixture(scope="module")
def server(
    shared_settings: Settings, smol: Any, e5: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    db = tmp_path_factory.mktemp("dialect") / "logs.db"
    with running(
        shared_settings,
        {SMOL: smol, BASE: smol, E5: e5},
        models=[SMOL, BASE, E5],
        db=str(db),
        log_text=True,
    ) as started:
        yield started


@pytest.fixture
def client(server: Running) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0) as sdk:
        yield sdk


def _row(server: Running, response_id: str) -> Any:
    server.flush()
    row = server.state.store.request(response_id)
    assert row is not None, response_id
    return row


def test_n_answers_one_after_another_with_usage_summed(client: openai.OpenAI) -> None:
    one = client.chat.completions.create(model=SMOL, messages=ASK, max_tokens=8, seed=3)
    two = client.chat.completions.create(
        model=SMOL, messages=ASK, max_tokens=8, n=2, seed=3, temperature=1.0
    )
    assert [c.index for c in two.choices] == [0, 1]
    assert all(c.message.content for c in two.choices)
    assert two.usage is not None and one.usage is not None
    assert two.usage.prompt_tokens == 2 * one.usage.prompt_tokens
    streamed = client.chat.completions.create(
        model=SMOL,
        messages=ASK,
        max_tokens=8,
        n=2,
        seed=3,
        temperature=1.0,
        stream=True,
        stream_options={"include_usage": True},
    )
    texts = {0: "", 1: ""}
    usage = None
    for chunk in streamed:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
        usage = chunk.usage or usage
    assert texts == {i: two.choices[i].message.content for i in (0, 1)}  # same seeds, same text
    assert usage is not None and usage.total_tokens == two.usage.total_tokens


def test_every_response_has_a_request_id(client: openai.OpenAI, server: Running) -> None:
    raw = client.chat.completions.with_raw_response.create(model=SMOL, messages=ASK, max_tokens=2)
    assert raw.headers["x-request-id"] == raw.parse().id
    mine = client.chat.completions.with_raw_response.create(
        model=SMOL, messages=ASK, max_tokens=2, extra_headers={"x-request-id": "trace-42.a"}
    )
    assert mine.headers["x-request-id"] == "trace-42.a"
    odd = httpx.get(server.url + "/health", headers={"x-request-id": "no spaces <allowed>"})
    assert odd.headers["x-request-id"].startswith("req-")
    missing = httpx.post(server.v1 + "/chat/completions", json={"model": "nope", "messages": ASK})
    assert missing.status_code == 404 and missing.headers["x-request-id"].startswith("chatcmpl-")


def test_moderations_from_the_guard(client: openai.OpenAI, server: Running) -> None:
    result = client.moderations.create(
        input=["Dasar goblok, kamu tolol banget!", "Saya suka makan nasi goreng di pagi hari."]
    )
    insult, benign = result.results
    assert insult.flagged and insult.categories.harassment
    assert insult.category_scores.harassment >= 0.5
    assert not benign.flagged and not any(benign.categories.model_dump().values())
    assert not insult.categories.sexual_minors and insult.category_scores.self_harm == 0
    assert result.model == "fondasi-guard"
    threat = client.moderations.create(model="omni-moderation-latest", input="gue bunuh lo")
    assert threat.results[0].categories.violence
    assert threat.model == "omni-moderation-latest"
    # The classifier names the kind of abuse: SARA hate without a swear word is "hate".
    sara = client.moderations.create(input="Orang cina itu licik semua, usir saja dari kampung ini")
    assert sara.results[0].categories.hate and sara.results[0].category_scores.hate >= 0.5
    assert _row(server, result.id).route == "moderations"


def test_responses_create_plain_and_with_instructions(client: openai.OpenAI) -> None:
    plain = client.responses.create(model=SMOL, input="Say hello.", max_output_tokens=12)
    assert plain.status in ("completed", "incomplete") and plain.output_text
    assert plain.output[0].type == "message"
    assert plain.usage is not None and plain.usage.output_tokens > 0
    told = client.responses.create(
        model=SMOL,
        instructions="Answer in one word.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Capital of France?"}]}],
        max_output_tokens=8,
    )
    assert told.output_text and told.instructions == "Answer in one word."
    assert told.usage is not None and told.usage.input_tokens > 0


def test_responses_stream_parses_in_the_sdk(client: openai.OpenAI) -> None:
    words = "Say hello in two words."
    with client.responses.stream(model=SMOL, input=words, max_output_tokens=256) as s:
        kinds = [event.type for event in s]
        final = s.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert "response.output_text.delta" in kinds and kinds[-1] == "response.completed"
    assert final.output_text and final.usage is not None


def test_responses_refuse_what_is_not_served(server: Running) -> None:
    url = server.v1 + "/responses"
    for body, param in [
        ({"input": "x", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"input": "x", "tools": [{"type": "web_search"}]}, "tools.0"),
        ({"input": "x", "text": {"format": {"type": "yaml"}}}, "text.format"),
    ]:
        response = httpx.post(url, json={"model": SMOL, **body}, timeout=30)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param


def test_images_need_a_model_that_sees(client: openai.OpenAI) -> None:
    picture = [
        {"type": "text", "text": "What is in the picture?"},
        {"type": "image_url", "image_url": {"url": PIXEL}},
    ]
    with pytest.raises(openai.BadRequestError, match=f"{SMOL} cannot see images") as error:
        client.chat.completions.create(model=SMOL, messages=[{"role": "user", "content": picture}])
    assert error.value.param == "messages"
    with pytest.raises(openai.BadRequestError, match="cannot see images"):
        client.responses.create(
            model=SMOL,
            input=[
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is this?"},
                        {"type": "input_image", "image_url": PIXEL, "detail": "auto"},
                    ],
                }
            ],
        )


def test_echo_scores_the_prompt(client: openai.OpenAI, smol: Any) -> None:
    prompt = "The capital of Indonesia is Jakarta"
    scored = client.completions.create(
        model=BASE, prompt=prompt, echo=True, logprobs=1, max_tokens=0
    )
    choice = scored.choices[0]
    assert choice.text == prompt and choice.logprobs is not None
    tokens, logprobs = choice.logprobs.tokens, choice.logprobs.token_logprobs
    assert tokens is not None and logprobs is not None and choice.logprobs.top_logprobs
    assert "".join(tokens) == prompt and logprobs[0] is None
    assert all(lp is not None and lp <= 0 for lp in logprobs[1:])
    assert choice.logprobs.text_offset == [
        sum(len(t) for t in tokens[:i]) for i in range(len(tokens))
    ]
    expected = smol.token_logprobs(prompt, 1)
    assert logprobs[1:] == pytest.approx([e.logprob for e in expected[1:]], abs=1e-4)
    assert scored.usage is not None and scored.usage.prompt_tokens == len(tokens)
    # lm-evaluation-harness's local-completions loglikelihood request, read as it reads it
    harness = httpx.post(
        client.base_url.join("completions").__str__(),
        json={
            "model": BASE,
            "prompt": [prompt],
            "temperature": 0,
            "max_tokens": 1,
            "logprobs": 1,
            "seed": 1234,
            "echo": True,
        },
        timeout=120,
    ).json()
    read = harness["choices"][0]["logprobs"]
    assert len(read["token_logprobs"]) == len(tokens) + 1
    assert read["token_logprobs"][: len(tokens)] == pytest.approx(logprobs, abs=1e-4)
    assert all(max(top.values()) <= 0 for top in read["top_logprobs"][1:])


def test_dialect_errors_are_openai_shaped(server: Running) -> None:
    url = server.v1 + "/chat/completions"
    for extra, param in [
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "a"}}},
            "response_format",
        ),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"n": 9}, "n"),
        ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools.0"),
    ]:
        response = httpx.post(url, json={"model": SMOL, "messages": ASK, **extra}, timeout=30)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert set(error) == {"message", "type", "code", "param"}
        assert error["param"] == param and error["type"] == "invalid_request_error"
    link = [
        {"type": "text", "text": "x"},
        {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}},
    ]
    response = httpx.post(
        url, json={"model": SMOL, "messages": [{"role": "user", "content": link}]}, timeout=30
    )
    assert response.status_code == 400


# ---- These need the handle tier's tools, JSON schemas and log-probs for local models. ----


def test_tool_calls_in_openai_shape_and_logged(client: openai.OpenAI, server: Running) -> None:
    answer = client.chat.completions.create(
        model=SMOL,
        messages=ASK,
        tools=[WEATHER],
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=128,
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id
    assert isinstance(json.loads(call.function.arguments), dict)
    row = _row(server, answer.id)
    assert "get_weather(" in (row.response_text or "")


def test_streamed_tool_calls_are_reassembled_by_the_sdk(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model=SMOL,
        messages=ASK,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=64,
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert calls and calls[0].function.name == "get_weather"
    assert "city" in json.loads(calls[0].function.arguments)


def test_a_full_tool_round_trip(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(
        model=SMOL,
        messages=ASK,
        tools=[WEATHER],
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=128,
    )
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    history: list[Any] = [
        *ASK,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 31, "sky": "sunny"}'},
    ]
    second = client.chat.completions.create(model=SMOL, messages=history, max_tokens=24)
    assert second.choices[0].message.content
    out = client.responses.create(
        model=SMOL,
        input=[
            {"role": "user", "content": "What is the weather in Jakarta?"},
            {
                "type": "function_call",
                "call_id": call.id,
                "name": "get_weather",
                "arguments": call.function.arguments,
            },
            {"type": "function_call_output", "call_id": call.id, "output": "31 C, sunny"},
        ],
        max_output_tokens=24,
    )
    assert out.output_text


def test_chat_logprobs_with_alternatives(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model=SMOL, messages=ASK, max_tokens=6, logprobs=True, top_logprobs=2
    )
    content = answer.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content and len(content) <= 6
    assert all(len(item.top_logprobs) == 2 and item.logprob <= 0 for item in content)
    assert "".join(item.token for item in content) == answer.choices[0].message.content


class City(BaseModel):
    """A city and its country."""

    name: str
    country: str


@pytest.mark.parametrize("method", ["json_schema", "json_mode", "function_calling"])
def test_langchain_structured_output(server: Running, method: str) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(model=SMOL, base_url=server.v1, api_key="unused", max_tokens=64)
    schema: Any = City if method != "json_mode" else City.model_json_schema()
    structured = chat.with_structured_output(schema, method=method)  # type: ignore[arg-type]
    prompt = "Jakarta is a city in Indonesia. Reply as JSON with name and country."
    found = structured.invoke(prompt)
    if method == "json_mode":  # JSON mode promises a JSON object, not the schema's keys
        assert isinstance(found, dict)
    else:
        assert isinstance(found, City) and isinstance(found.name, str)


def test_langchain_bind_tools(server: Running) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(model=SMOL, base_url=server.v1, api_key="unused", max_tokens=64)
    bound = chat.bind_tools([WEATHER], tool_choice="get_weather")
    message = bound.invoke("What is the weather in Jakarta?")
    assert message.tool_calls and message.tool_calls[0]["name"] == "get_weather"
