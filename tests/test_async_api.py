"""The async API: ``agenerate``, ``astream``, ``aembed``, ``aclassify``, ``ascore`` answer
exactly what the sync calls answer, on the real bundled models and on wrappers, without
running one local model in two threads at once, and stop the worker when the reader stops.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

import fondasi
from fondasi.errors import BadInputError
from fondasi.guard import Policy, PolicyConfig
from fondasi.models.aio import gate_of
from fondasi.models.compose import Plan, compose
from fondasi.models.contract import CapabilityError, ModelHandle
from fondasi.models.handle import Model
from fondasi.models.router import Fallback
from fondasi.providers import ProviderConfig
from fondasi.settings import Settings
from fondasi.types import Chunk

from .fakes.openai_server import KEY, FakeState, running

ASK = "Apa ibu kota Indonesia?"
GREEDY: dict[str, Any] = {"temperature": 0.0, "max_tokens": 8}


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    with running(FakeState()) as url:
        yield url


class Spy:
    """Wraps a backend's ``stream``: how many run at once, and where each was closed."""

    def __init__(self, backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.real = backend.stream
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.calls = 0
        self.closed_in: list[str] = []
        monkeypatch.setattr(backend, "stream", self.stream)

    def stream(self, prompt: Any, options: Any) -> Iterator[Chunk]:
        with self.lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        inner = self.real(prompt, options)
        try:
            yield from inner
        finally:
            inner.close()
            with self.lock:
                self.running -= 1
            self.closed_in.append(threading.current_thread().name)


def _join_new_threads(before: set[threading.Thread]) -> None:
    """Wait for every thread started since ``before`` (the generous timeout is a guard)."""
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=120)


def test_agenerate_answers_what_generate_answers(smol: Model) -> None:
    sync = smol.generate(ASK, **GREEDY)
    answer = asyncio.run(smol.agenerate(ASK, **GREEDY))
    timing = {"seconds", "first_token_seconds", "cost_usd"}
    assert answer.text and answer.model_dump(exclude=timing) == sync.model_dump(exclude=timing)
    assert answer.seconds is not None and answer.seconds > 0


def test_astream_chunks_join_to_the_answer_and_the_last_says_who_answered(smol: Model) -> None:
    sync = smol.generate(ASK, **GREEDY)

    async def read() -> list[Chunk]:
        return [chunk async for chunk in smol.astream(ASK, **GREEDY)]

    chunks = asyncio.run(read())
    assert "".join(chunk.text for chunk in chunks) == sync.text
    final = chunks[-1]
    assert final.final and final.usage == sync.usage
    assert final.model == "smollm2-135m-instruct" and final.version == sync.version
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_concurrent_calls_on_one_local_model_take_turns(
    smol: Model, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync = smol.generate(ASK, **GREEDY)
    spy = Spy(smol.backend, monkeypatch)

    async def many() -> list[Any]:
        return list(await asyncio.gather(*(smol.agenerate(ASK, **GREEDY) for _ in range(4))))

    answers = asyncio.run(many())
    assert [answer.text for answer in answers] == [sync.text] * 4
    assert spy.calls == 4 and spy.most == 1  # never two generations at once


def test_breaking_out_of_astream_closes_the_stream_in_its_worker(
    smol: Model, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(smol.backend, monkeypatch)
    before = set(threading.enumerate())

    async def first_chunk() -> str:
        async with aclosing(smol.astream(ASK, temperature=0.0, max_tokens=64)) as chunks:
            async for chunk in chunks:
                return chunk.text
        return ""

    assert asyncio.run(first_chunk())
    _join_new_threads(before)
    assert not set(threading.enumerate()) - before  # no thread left behind
    assert spy.closed_in == ["fondasi-async"] and spy.running == 0


def test_a_cancelled_call_waiting_for_its_model_never_runs(
    smol: Model, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(smol.backend, monkeypatch)
    gate = gate_of(smol)
    assert gate is not None
    before = set(threading.enumerate())

    async def scenario() -> None:
        waiting = asyncio.create_task(smol.agenerate(ASK, **GREEDY))
        await asyncio.sleep(0)  # its worker starts and waits for the model
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    assert gate.enter(threading.Event())  # another call holds the model meanwhile
    try:
        asyncio.run(scenario())
        _join_new_threads(before)  # the waiting worker gave up while the model was busy
        assert spy.calls == 0 and not set(threading.enumerate()) - before
    finally:
        gate.leave()
    answer = asyncio.run(smol.agenerate(ASK, **GREEDY))  # the model is free again
    assert spy.calls == 1 and answer.text == smol.generate(ASK, **GREEDY).text


def test_errors_keep_their_type(smol: Model) -> None:
    with pytest.raises(BadInputError, match="empty"):
        asyncio.run(smol.agenerate("   "))

    async def stream_nothing() -> None:
        async for _ in smol.astream(""):
            pass

    with pytest.raises(BadInputError, match="empty"):
        asyncio.run(stream_nothing())
    with pytest.raises(CapabilityError, match="cannot embed"):
        asyncio.run(smol.aembed("halo"))


def test_aembed_aclassify_ascore_answer_what_the_sync_calls_answer(
    minilm: Model, smol: Model
) -> None:
    texts = ["Saya suka belajar tentang AI", "Resep nasi goreng kampung"]
    vectors = asyncio.run(minilm.aembed(texts))
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, minilm.embed(texts), rtol=1e-5, atol=1e-6)
    labels = ["teknologi", "makanan"]
    assert asyncio.run(minilm.aclassify(texts, labels)) == minilm.classify(texts, labels)
    continuations = [" Jakarta.", " Bandung."]
    assert asyncio.run(smol.ascore(ASK, continuations)) == pytest.approx(
        smol.score(ASK, continuations)
    )


def test_a_fallback_chain_answers_async_too(fake: str, tmp_path: Path) -> None:
    provider = ProviderConfig(adapter="openai", base_url=fake, api_key=SecretStr(KEY), timeout_s=2)
    settings = Settings.load(home=tmp_path / "home", providers={"fake": provider}, retries=0)
    chain = fondasi.model("fake:always-500", settings, ["fake:gpt-test"])
    assert isinstance(chain, Fallback) and isinstance(chain, ModelHandle)
    assert gate_of(chain) is None  # it may reach hosted models: calls run side by side

    async def ask() -> tuple[str, str, str]:
        answer = await chain.agenerate("halo")
        streamed = "".join([chunk.text async for chunk in chain.astream("apa kabar")])
        return answer.text, answer.model, streamed

    assert asyncio.run(ask()) == ("Echo: halo", "fake:gpt-test", "Echo: apa kabar")
    assert "fake:always-500: failed" in chain.explain()


def test_a_local_wrapper_shares_its_models_turns(smol: Model) -> None:
    policy = Policy("async", PolicyConfig(classifier=False, input={"pii": "flag"}))

    def load(ref: str) -> Model:
        return smol

    guarded = compose("smollm2-135m-instruct", load, Plan(guard=lambda inner: policy.wrap(inner)))
    assert gate_of(guarded) is gate_of(smol) is not None
    answer = asyncio.run(guarded.agenerate(ASK, **GREEDY))
    assert answer.text == smol.generate(ASK, **GREEDY).text
    assert answer.model == "smollm2-135m-instruct"


def test_a_hosted_model_streams_on_its_async_client_with_retries(fake: str, tmp_path: Path) -> None:
    provider = ProviderConfig(adapter="openai", base_url=fake, api_key=SecretStr(KEY), timeout_s=5)
    settings = Settings.load(home=tmp_path / "home", providers={"fake": provider}, retries=2)
    hosted = fondasi.model("fake:gpt-test", settings)
    flaky = fondasi.model("fake:flaky-429", settings)
    before = {t.name for t in threading.enumerate()}

    async def ask() -> tuple[list[Chunk], list[Chunk]]:
        plain = [chunk async for chunk in hosted.astream("halo", max_tokens=8)]
        retried = [chunk async for chunk in flaky.astream("halo", max_tokens=8)]
        assert hosted.backend.backend._async  # the SDK's async client answered, on the loop
        await hosted.aclose()  # its connections close with the loop's work
        await flaky.aclose()
        return plain, retried

    plain, retried = asyncio.run(ask())
    assert "".join(c.text for c in plain) == "Echo: halo"
    assert plain[-1].model == "fake:gpt-test" and plain[-1].usage is not None
    assert plain[-1].seconds is not None  # stamped by the handle, as the sync stream is
    # No worker thread was started for it.
    assert not {t.name for t in threading.enumerate()} - before - {"asyncio_0"}
    assert flaky.backend.attempts == 3 and "".join(c.text for c in retried) == "Echo: halo"
    # What the handle adds (a tool call read from text, JSON checked) keeps the worker path.
    assert asyncio.run(hosted.agenerate("halo", max_tokens=8)).text == "Echo: halo"


@pytest.mark.parametrize(
    ("fake_module", "adapter", "model"),
    [
        ("openai_server", "openai", "text-embedding-test"),
        ("gemini_server", "gemini", "text-embedding-test"),
        ("cohere_server", "cohere", "embed-test"),
    ],
)
def test_a_hosted_embedder_embeds_on_its_async_client(
    fake_module: str, adapter: str, model: str, tmp_path: Path
) -> None:
    import importlib

    module = importlib.import_module(f"tests.fakes.{fake_module}")
    with module.running(module.FakeState()) as url:
        provider = ProviderConfig(
            adapter=adapter, base_url=url, api_key=SecretStr(module.KEY), timeout_s=5
        )
        settings = Settings.load(home=tmp_path / "home", providers={"fake": provider})
        embedder = fondasi.model(f"fake:{model}", settings)
        texts = ["harga tiket kereta", "jadwal kereta api", "harga tiket kereta"]
        before = {t.name for t in threading.enumerate()}

        async def embed() -> Any:
            vectors = await embedder.aembed(texts, purpose="query")
            assert embedder.backend.backend._async  # the SDK's async client answered
            await embedder.aclose()
            return vectors

        vectors = asyncio.run(embed())
        assert not {t.name for t in threading.enumerate()} - before - {"asyncio_0"}
        assert vectors.shape[0] == 3 and vectors.dtype.name == "float32"
        assert abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-5
        assert (vectors == embedder.embed(texts, purpose="query")).all()  # as the sync call
        with pytest.raises(BadInputError, match="must be a string"):
            asyncio.run(embedder.aembed([3]))  # type: ignore[list-item]


def test_async_embeddings_are_retried_like_sync_ones() -> None:
    from fondasi.backends.remote import ProviderError, Resilient, RetryPolicy

    class Flaky:
        capabilities = frozenset()
        calls = 0

        async def astream(self, prompt: Any, options: Any) -> Any:
            yield Chunk(text="")

        async def aembed(self, texts: Any, purpose: Any = None) -> list[list[float]]:
            Flaky.calls += 1
            if Flaky.calls < 3:
                raise ProviderError("fake", "busy", status=429, retryable=True, retry_after=0)
            return [[1.0] for _ in texts]

    wrapped = Resilient.around(Flaky(), "fake:flaky", RetryPolicy(max_retries=2))
    assert asyncio.run(wrapped.aembed(["a"])) == [[1.0]]
    assert Flaky.calls == 3 and wrapped.attempts == 3
