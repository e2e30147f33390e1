"""The whole chat dialect over every hosted adapter, each against its local fake.

The same tool conversation (a call, the tool's result, the final answer), the same tool
choices, the same JSON schema and the same earlier-turn image go through OpenAI,
Anthropic, Gemini and Cohere; each fake checks the request has its provider's real
shape and answers in its provider's real stream. The backends are called directly
(``model.backend.stream(messages, options)``), below the handle tier.
"""

from __future__ import annotations

import gc
import importlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import SecretStr

import fondasi
from fondasi.backends.base import speaks
from fondasi.backends.remote import ProviderError
from fondasi.models.contract import CapabilityError
from fondasi.providers import BUILTIN_PROVIDERS
from fondasi.settings import Settings
from fondasi.types import Chunk, GenerateOptions, Message, Role, Tool, ToolCall

pytestmark = pytest.mark.filterwarnings(
    "ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
)

Body = dict[str, Any]


@pytest.fixture(autouse=True)
def collect_clients() -> Iterator[None]:
    """Collect this test's SDK clients now, under this module's filter."""
    yield
    gc.collect()


@dataclass(frozen=True)
class Provider:
    """A provider, its fake, a model name, and how its wire says each part of the dialect."""

    name: str
    fake: str
    model: str
    logprobs: bool
    tools_sent: Callable[[Body], list[str]]  # the tool names in the request
    choice_sent: Callable[[Body], Any]  # the tool choice, as the provider spells it
    schema_sent: Callable[[Body], Any]  # the JSON schema the request holds
    first_turn_images: Callable[[Body], int]  # images in the first message's own content


def _gemini_choice(body: Body) -> Any:
    config = body.get("toolConfig", {}).get("functionCallingConfig", {})
    return config.get("mode"), config.get("allowedFunctionNames")


PROVIDERS = [
    Provider(
        "openai",
        "openai_server",
        "gpt-test",
        logprobs=True,
        tools_sent=lambda b: [t["function"]["name"] for t in b.get("tools", [])],
        choice_sent=lambda b: b.get("tool_choice"),
        schema_sent=lambda b: b["response_format"]["json_schema"]["schema"],
        first_turn_images=lambda b: sum(
            p["type"] == "image_url" for p in b["messages"][0]["content"]
        ),
    ),
    Provider(
        "anthropic",
        "anthropic_server",
        "claude-test",
        logprobs=False,
        tools_sent=lambda b: [t["name"] for t in b.get("tools", [])],
        choice_sent=lambda b: b.get("tool_choice"),
        schema_sent=lambda b: b["output_config"]["format"]["schema"],
        first_turn_images=lambda b: sum(p["type"] == "image" for p in b["messages"][0]["content"]),
    ),
    Provider(
        "google",
        "gemini_server",
        "gemini-test",
        logprobs=True,
        tools_sent=lambda b: [
            f["name"] for t in b.get("tools", []) for f in t.get("functionDeclarations", [])
        ],
        choice_sent=_gemini_choice,
        schema_sent=lambda b: b["generationConfig"]["responseJsonSchema"],
        first_turn_images=lambda b: sum(
            "inlineData" in p or "fileData" in p for p in b["contents"][0]["parts"]
        ),
    ),
    Provider(
        "cohere",
        "cohere_server",
        "command-test",
        logprobs=False,
        tools_sent=lambda b: [t["function"]["name"] for t in b.get("tools", [])],
        choice_sent=lambda b: b.get("tool_choice"),
        schema_sent=lambda b: b["response_format"]["json_schema"],
        first_turn_images=lambda b: sum(
            p["type"] == "image_url" for p in b["messages"][0]["content"]
        ),
    ),
]

# How each provider is told the choice: auto, none, required, and "named: pasar".
CHOICES: dict[str, dict[str, Any]] = {
    "openai": {
        "none": "none",
        "required": "required",
        "named": {"type": "function", "function": {"name": "pasar"}},
    },
    "anthropic": {
        "none": {"type": "none"},
        "required": {"type": "any"},
        "named": {"type": "tool", "name": "pasar"},
    },
    "google": {
        "none": ("NONE", None),
        "required": ("ANY", None),
        "named": ("ANY", ["pasar"]),
    },
    "cohere": {"none": "NONE", "required": "REQUIRED", "named": "REQUIRED"},
}

CUACA = Tool(
    name="cuaca",
    description="Cuaca sekarang di sebuah kota.",
    parameters={
        "type": "object",
        "properties": {"kota": {"type": "string"}},
        "required": ["kota"],
    },
)
PASAR = Tool(
    name="pasar",
    description="Harga beras di pasar sebuah kota.",
    parameters={
        "type": "object",
        "properties": {"kota": {"type": "string"}, "kilo": {"type": "integer"}},
        "required": ["kota", "kilo"],
    },
)
SCHEMA = {
    "type": "object",
    "properties": {"kota": {"type": "string"}, "jumlah": {"type": "integer"}},
    "required": ["kota", "jumlah"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module", params=PROVIDERS, ids=[p.name for p in PROVIDERS])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Provider, Any, str]]:
    provider: Provider = request.param
    module = importlib.import_module(f"tests.fakes.{provider.fake}")
    state = module.FakeState()
    with module.running(state) as url:
        yield provider, state, url


def backend(served: tuple[Provider, Any, str], tmp_path: Path) -> Any:
    """The loaded backend (inside fondasi's retry wrapper), for a model of the fake."""
    return handle(served, tmp_path).backend


def handle(served: tuple[Provider, Any, str], tmp_path: Path) -> Any:
    """The model handle of a model of the fake."""
    provider, _, url = served
    module = importlib.import_module(f"tests.fakes.{provider.fake}")
    config = BUILTIN_PROVIDERS[provider.name].model_copy(
        update={"base_url": url, "api_key": SecretStr(module.KEY), "timeout_s": 5.0}
    )
    settings = Settings.load(home=tmp_path / "home", providers={provider.name: config}, retries=0)
    return fondasi.model(f"{provider.name}:{provider.model}", settings)


def ask(
    model: Any, name: str, prompt: list[Message] | str, **options: Any
) -> tuple[str, list[ToolCall], list[Chunk]]:
    """Stream ``prompt`` to the backend as the model ``name``: text, calls and chunks."""
    model.backend.model = name
    chunks = list(model.stream(prompt, GenerateOptions(**options)))
    calls = [call for chunk in chunks for call in chunk.tool_calls]
    assert chunks[-1].finish_reason is not None and chunks[-1].usage is not None
    return "".join(c.text for c in chunks), calls, chunks


def test_every_adapter_declares_the_dialect(served: Any, tmp_path: Path) -> None:
    provider = served[0]
    model = backend(served, tmp_path)
    assert speaks(model, "native_tools") and speaks(model, "native_schema")
    assert speaks(model, "native_images")
    assert speaks(model, "native_logprobs") is provider.logprobs
    assert not speaks(model, "constrains")


def test_a_tool_conversation_calls_then_answers_with_the_result(
    served: Any, tmp_path: Path
) -> None:
    provider, state, _ = served
    model = backend(served, tmp_path)
    asked = [
        Message(role=Role.SYSTEM, content="Pakai alat bila perlu."),
        Message(role=Role.USER, content="Cuaca di Bandung?"),
    ]
    text, calls, chunks = ask(model, "tool-caller", asked, tools=[CUACA, PASAR])
    assert provider.tools_sent(state.bodies[-1]) == ["cuaca", "pasar"]
    assert chunks[-1].finish_reason == "tool_calls" and not text.strip()
    [call] = calls
    assert call.name == "cuaca" and call.args == {"kota": "Cuaca di Bandung?"} and call.id
    answered = [
        *asked,
        Message(role=Role.ASSISTANT, tool_calls=(call,)),
        Message(role=Role.TOOL, tool_call_id=call.id, name="cuaca", content='{"suhu": 24}'),
    ]
    text, calls, chunks = ask(model, "tool-caller", answered, tools=[CUACA, PASAR])
    assert text == 'Result: {"suhu": 24}' and not calls
    assert chunks[-1].finish_reason == "stop"


def test_a_tool_turn_without_its_call_is_refused_by_the_api(served: Any, tmp_path: Path) -> None:
    model = backend(served, tmp_path)
    orphan = [
        Message(role=Role.USER, content="Cuaca?"),
        Message(role=Role.TOOL, tool_call_id="call_unknown", name="cuaca", content="24"),
    ]
    with pytest.raises(ProviderError) as error:
        ask(model, "tool-caller", orphan, tools=[CUACA])
    assert error.value.status == 400


@pytest.mark.parametrize("kind", ["none", "required", "named"])
def test_tool_choice_is_sent_in_the_providers_words(served: Any, tmp_path: Path, kind: str) -> None:
    provider, state, _ = served
    model = backend(served, tmp_path)
    choice = "pasar" if kind == "named" else kind
    text, calls, chunks = ask(
        model, provider.model, "Beras di Medan?", tools=[CUACA, PASAR], tool_choice=choice
    )
    assert provider.choice_sent(state.bodies[-1]) == CHOICES[provider.name][kind]
    if kind == "none":
        assert text == "Echo: Beras di Medan?" and not calls
        return
    expected = "pasar" if kind == "named" else "cuaca"
    assert [c.name for c in calls] == [expected] and chunks[-1].finish_reason == "tool_calls"
    if kind == "named":
        assert calls[0].args == {"kota": "Beras di Medan?", "kilo": 3}


def test_parallel_calls_can_be_turned_off(served: Any, tmp_path: Path) -> None:
    model = backend(served, tmp_path)
    _, calls, _ = ask(model, "parallel-caller", "Cuaca dan beras?", tools=[CUACA, PASAR])
    assert [c.name for c in calls] == ["cuaca", "pasar"]
    assert len({c.id for c in calls}) == 2
    _, one, _ = ask(
        model,
        "parallel-caller",
        "Cuaca dan beras?",
        tools=[CUACA, PASAR],
        parallel_tool_calls=False,
    )
    assert [c.name for c in one] == ["cuaca"]


def test_a_json_schema_answer_matches_the_schema(served: Any, tmp_path: Path) -> None:
    provider, state, _ = served
    model = backend(served, tmp_path)
    text, _, _ = ask(model, provider.model, "Tiga kota di Jawa", json_schema=SCHEMA)
    sent = provider.schema_sent(state.bodies[-1])
    assert sent["properties"] == SCHEMA["properties"]
    value = json.loads(text)
    jsonschema.validate(value, SCHEMA)
    assert value["kota"] == "Tiga kota di Jawa"


def test_images_stay_in_their_own_earlier_turn(served: Any, tmp_path: Path) -> None:
    import skimage.data
    from PIL import Image

    provider, state, _ = served
    model = backend(served, tmp_path)
    photo = tmp_path / "kucing.png"
    Image.fromarray(skimage.data.chelsea()).save(photo)
    conversation = [
        Message(role=Role.USER, content="Apa ini?", images=(str(photo),)),
        Message(role=Role.ASSISTANT, content="Seekor kucing."),
        Message(role=Role.USER, content="Warnanya apa?"),
    ]
    text, _, _ = ask(model, provider.model, conversation)
    assert text == "Echo: Warnanya apa?"
    assert provider.first_turn_images(state.bodies[-1]) == 1


def test_log_probabilities_where_the_api_has_them(served: Any, tmp_path: Path) -> None:
    provider = served[0]
    if not provider.logprobs:  # the handle says so rather than answering without them
        plain = handle(served, tmp_path)
        assert not speaks(plain.backend, "native_logprobs")
        with pytest.raises(CapabilityError, match="does not return log-probabilities"):
            plain.generate("satu dua", logprobs=True)
        return
    model = backend(served, tmp_path)
    text, _, chunks = ask(model, provider.model, "satu dua", logprobs=True, top_logprobs=2)
    tokens = [t for chunk in chunks for t in chunk.logprobs or []]
    assert "".join(t.token for t in tokens) == text == "Echo: satu dua"
    assert all(t.logprob < 0 and len(t.top_logprobs) == 2 for t in tokens)
    assert tokens[0].top_logprobs[0].token == tokens[0].token
