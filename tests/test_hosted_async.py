"""Every hosted adapter on its SDK's async client, against the fakes of test_hosted_dialect.

The async path reads an answer as the sync path does (text, tool calls, log-probabilities,
usage, errors, a key that is never shown), and ``aclose`` on a loop leaves no client open.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import warnings
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

import fondasi
from fondasi.backends.base import AsyncTextGenerator
from fondasi.backends.remote import ProviderError
from fondasi.providers import BUILTIN_PROVIDERS
from fondasi.settings import Settings
from fondasi.types import Chunk, GenerateOptions
from tests.test_hosted_dialect import CUACA, backend, collect_clients, handle, served

__all__ = ["collect_clients", "served"]  # fixtures used here, defined with the dialect tests

pytestmark = pytest.mark.filterwarnings(
    "ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
)


def test_every_adapter_streams_on_its_sdks_async_client(served: Any, tmp_path: Path) -> None:
    provider = served[0]
    plain = handle(served, tmp_path)
    hosted = plain.backend.backend  # the adapter itself, inside Resilient
    assert isinstance(hosted, AsyncTextGenerator)
    assert isinstance(plain.backend, AsyncTextGenerator)  # Resilient keeps the async path
    options = GenerateOptions(tools=[CUACA], logprobs=provider.logprobs)

    def fields(chunks: list[Chunk]) -> tuple[str, list[Any], str | None, Any]:
        calls = [(c.name, c.args) for chunk in chunks for c in chunk.tool_calls]
        tokens = [t.token for chunk in chunks for t in chunk.logprobs or []]
        return "".join(c.text for c in chunks), calls, chunks[-1].finish_reason, tokens

    async def read(model: str, prompt: str) -> list[Chunk]:
        hosted.model = model
        return [chunk async for chunk in hosted.astream(prompt, options)]

    async def both() -> tuple[list[Chunk], list[Chunk]]:  # one event loop, as a server has
        called = await read("tool-caller", "Cuaca di Solo?")
        said = await read(provider.model, "halo")
        assert hosted._async  # the SDK's async client answered, on this loop
        await hosted.aclose()  # the loop's client closes before the loop does
        assert not hosted._async
        return called, said

    # The module ignores ResourceWarning (SDK noise); here an unclosed client must show.
    gc.collect()  # what earlier tests in this process left is theirs, not this test's
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always", ResourceWarning)
        called, said = asyncio.run(both())
        gc.collect()
    assert not [w for w in warned if issubclass(w.category, ResourceWarning)]
    [(name, args)] = fields(called)[1]
    assert name == "cuaca" and args == {"kota": "Cuaca di Solo?"}
    assert called[-1].finish_reason == "tool_calls"
    assert fields(said)[0] == "Echo: halo" and said[-1].usage is not None
    # The async path reads the answer as the sync one does, chunk fields and all.
    hosted.model = "tool-caller"
    assert fields(called) == fields(list(hosted.stream("Cuaca di Solo?", options)))
    hosted.model = provider.model
    assert fields(said) == fields(list(hosted.stream("halo", options)))
    assert said[-1].usage == list(hosted.stream("halo", options))[-1].usage


def test_a_refused_key_on_the_async_path_names_where_it_lives(served: Any, tmp_path: Path) -> None:
    provider, _, url = served
    module = importlib.import_module(f"tests.fakes.{provider.fake}")
    wrong = "sk-wrong-" + "x" * 24
    config = BUILTIN_PROVIDERS[provider.name].model_copy(
        update={"base_url": url, "api_key": SecretStr(wrong), "timeout_s": 5.0}
    )
    settings = Settings.load(home=tmp_path / "home", providers={provider.name: config})
    model = fondasi.model(f"{provider.name}:{provider.model}", settings)

    async def ask() -> None:
        try:
            async for _ in model.astream("halo", max_tokens=8):
                pass
        finally:
            await model.aclose()

    with pytest.raises(ProviderError) as refused:
        asyncio.run(ask())
    with pytest.raises(ProviderError) as refused_sync:
        model.generate("halo", max_tokens=8)
    assert "refused" in str(refused.value) and str(refused.value) == str(refused_sync.value)
    assert wrong not in str(refused.value) and wrong[-8:] not in repr(refused.value.__cause__)
    assert module.KEY not in str(refused.value)


def test_a_reset_mid_stream_reads_the_same_on_the_async_path(served: Any, tmp_path: Path) -> None:
    provider = served[0]
    hosted = backend(served, tmp_path).backend  # the adapter itself, below the retries
    hosted.model = "reset"  # every fake breaks the stream off after its first events
    options = GenerateOptions(max_tokens=16)

    def read_sync(shown: list[str]) -> None:
        shown.extend(chunk.text for chunk in hosted.stream("a b c d e", options))

    async def read_async(shown: list[str]) -> None:
        try:
            async for chunk in hosted.astream("a b c d e", options):
                shown.append(chunk.text)
        finally:
            await hosted.aclose()

    shown_sync: list[str] = []
    shown_async: list[str] = []
    with pytest.raises(ProviderError) as broke_sync:
        read_sync(shown_sync)
    with pytest.raises(ProviderError) as broke_async:
        asyncio.run(read_async(shown_async))
    assert str(broke_async.value).startswith(f"{provider.name}: the stream broke off")
    assert str(broke_async.value) == str(broke_sync.value)
    assert broke_async.value.retryable == broke_sync.value.retryable
    assert "".join(shown_async) == "".join(shown_sync) and shown_async[0].startswith("Echo:")


def test_a_client_left_open_goes_with_its_ended_loop(served: Any, tmp_path: Path) -> None:
    hosted = backend(served, tmp_path).backend

    async def read() -> str:
        return "".join([chunk.text async for chunk in hosted.astream("halo", GenerateOptions())])

    for _ in range(3):  # each asyncio.run is a new loop, and no aclose
        assert asyncio.run(read()) == "Echo: halo"
    assert len(hosted._async) <= 1  # at most the last loop's client is still kept

    async def read_and_close() -> str:
        try:
            return await read()
        finally:
            await hosted.aclose()

    assert asyncio.run(read_and_close()) == "Echo: halo" and not hosted._async
