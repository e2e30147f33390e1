"""Concurrent generations on one local model decode together, each as if it ran alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

import fondasi
from fondasi.backends.decode_batching import MAX_BATCH
from fondasi.backends.llama_rows import SLOTS
from fondasi.backends.torch_rows import batchable
from fondasi.server.pool import batch_size
from fondasi.settings import Settings
from fondasi.types import Chunk, GenerateOptions, Message, Role

from .serving import running

SMOL = "smollm2-135m-instruct"
ASKED = [
    "What is the capital of France?",
    "Name three fruits.",
    "Write a haiku about the sea.",
    "What is 2+2?",
]
# Own limits, stops and seeds, asked at once.
CASES = [
    (ASKED[0], GenerateOptions(max_tokens=3)),
    (ASKED[1], GenerateOptions(max_tokens=40, stop=["\n"])),
    (ASKED[2], GenerateOptions(max_tokens=40, stop=[","])),
    (ASKED[3], GenerateOptions(max_tokens=16, temperature=0.9, top_p=0.9, seed=11)),
    ("Tell me a joke.", GenerateOptions(max_tokens=20, temperature=0.8, seed=7)),
]
T = TypeVar("T")


def chat(text: str) -> list[Message]:
    """One user turn."""
    return [Message(role=Role.USER, content=text)]


def together(calls: list[Callable[[], T]]) -> list[T]:
    """Run the calls at once, from threads released together; results in call order."""
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = calls[index]()
        except BaseException as exc:  # re-raised in the test's thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def alone(smol: Any, text: str, options: GenerateOptions) -> list[Chunk]:
    """The unbatched answer: transformers' own ``generate`` on this prompt only."""
    backend = smol.backend
    return list(backend._generate(backend._encode(chat(text), options.tools), options))


def batched(smol: Any, text: str, options: GenerateOptions) -> list[Chunk]:
    """The answer through the batching scheduler."""
    return list(smol.backend.stream(chat(text), options))


def outcome(chunks: list[Chunk]) -> tuple[str, int | None, str | None]:
    """Text, completion tokens and finish reason of a streamed answer."""
    last = chunks[-1]
    tokens = last.usage.completion_tokens if last.usage else None
    return "".join(chunk.text for chunk in chunks), tokens, last.finish_reason


def test_greedy_answers_batched_equal_those_asked_alone(smol: Any) -> None:
    options = GenerateOptions(max_tokens=32)
    expected = [outcome(alone(smol, text, options)) for text in ASKED]
    scheduler = smol.backend.batcher
    scheduler.widest = 0
    answers = together([partial(smol.generate, chat(text), options=options) for text in ASKED])
    got = [(a.text, a.usage.completion_tokens, a.finish_reason) for a in answers]
    assert got == expected
    assert scheduler.widest >= 2  # they really shared decode steps


@pytest.fixture(scope="module")
def cpp(smol: Any, shared_settings: Settings) -> Any:
    """The same GGUF file through llama.cpp, quantised as it ships."""
    return fondasi.model(f"llamacpp:{smol.spec.path}", shared_settings)


@pytest.fixture(params=["transformers", "llama.cpp"])
def local(request: pytest.FixtureRequest) -> Any:
    """SmolLM2-135M-Instruct on each local engine."""
    return request.getfixturevalue("smol" if request.param == "transformers" else "cpp")


def llama_alone(cpp: Any, text: str, most: int) -> str:
    """llama-cpp-python's own greedy loop over the same prompt tokens, in its own context."""
    backend = cpp.backend
    tokens = backend._tokens(chat(text))
    backend._forget_last_call()
    answer: list[int] = []
    for token in backend.llm.generate(tokens, temp=0, top_k=0, min_p=0.0, repeat_penalty=1.0):
        if token == backend.llm.token_eos() or len(answer) >= most:
            break
        answer.append(token)
    return str(backend.llm.detokenize(answer, prev_tokens=tokens).decode())


def test_llama_cpp_greedy_answers_batched_equal_those_asked_alone(cpp: Any) -> None:
    expected = [llama_alone(cpp, text, 32) for text in ASKED]
    scheduler = cpp.backend.batcher
    scheduler.widest = 0
    options = GenerateOptions(max_tokens=32)
    answers = together([partial(cpp.generate, chat(text), options=options) for text in ASKED])
    assert [answer.text for answer in answers] == expected
    assert scheduler.widest >= 2


def test_every_llama_cpp_call_reads_its_whole_prompt_into_empty_cells(
    cpp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What test_llama_cpp checks of the unbatched path, on the rows: a sequence id left by
    # the last call holds nothing, and the prompt is read whole in one batch, so a seed
    # tells the same story whatever ran before.
    import llama_cpp

    rows = cpp.backend.batcher.rows
    decoded: list[tuple[int, list[tuple[int, int, int, bool]]]] = []
    real = rows._decode

    def spy(entries: list[tuple[int, int, int, bool]]) -> None:
        before = llama_cpp.llama_memory_seq_pos_max(rows._memory, entries[0][2])
        decoded.append((before, entries))
        real(entries)

    monkeypatch.setattr(rows, "_decode", spy)
    stories = []
    for text in ("Tell me a story.", ASKED[0], "Tell me a story.", "Tell me a story."):
        decoded.clear()
        answer = cpp.generate(chat(text), max_tokens=6, temperature=1.0, seed=7)
        (before, first), *steps = decoded
        assert before == -1  # nothing left from the last call
        assert [entry[0] for entry in first] == cpp.backend._tokens(chat(text))
        assert [entry[1] for entry in first] == list(range(len(first)))
        assert all(len(entries) == 1 for _, entries in steps)  # then one token a step
        stories.append(answer.text)
    assert stories[0] == stories[2] == stories[3] and stories[0].strip()


def test_streams_keep_their_own_limits_stops_and_seeds(local: Any) -> None:
    # Alone: one at a time, each the only row (llama.cpp's sampler is not ours, so its
    # reference is its own batch of one); together: all at once.
    expected = [outcome(batched(local, *case)) for case in CASES]
    got = [outcome(chunks) for chunks in together([partial(batched, local, *c) for c in CASES])]
    assert got == expected
    assert got[0][1:] == (3, "length")
    assert "\n" not in got[1][0] and got[1][2] == "stop"
    assert "," not in got[2][0]


def test_transformers_streams_equal_generate_alone_with_limits_stops_and_seeds(
    smol: Any,
) -> None:
    expected = [outcome(alone(smol, text, options)) for text, options in CASES]
    got = [outcome(chunks) for chunks in together([partial(batched, smol, *c) for c in CASES])]
    assert got == expected  # a seed draws the same tokens batched as in generate


def test_grammar_and_logprobs_are_kept_per_request_in_a_batch(local: Any) -> None:
    cases = [
        ("Is Paris in France? Answer yes or no.", GenerateOptions(grammar='start: "yes" | "no"')),
        (ASKED[0], GenerateOptions(max_tokens=8, logprobs=True, top_logprobs=2)),
        (ASKED[1], GenerateOptions(max_tokens=24)),
    ]
    expected = [batched(local, text, options) for text, options in cases]
    got = together([partial(batched, local, *case) for case in cases])
    assert [outcome(chunks) for chunks in got] == [outcome(chunks) for chunks in expected]
    assert outcome(got[0])[0] in {"yes", "no"}
    mine, theirs = got[1][-1].logprobs, expected[1][-1].logprobs
    assert mine and theirs and len(mine) == len(theirs)
    assert [p.token for p in mine] == [p.token for p in theirs]
    assert [p.logprob for p in mine] == pytest.approx([p.logprob for p in theirs], abs=1e-4)


def test_a_reader_leaving_mid_stream_frees_its_row(local: Any) -> None:
    smol = local
    scheduler = smol.backend.batcher
    before = scheduler.steps
    story = smol.backend.stream(
        chat("Write a long story about Jakarta."), GenerateOptions(max_tokens=200)
    )
    assert next(story).text  # the first words
    short = threading.Thread(target=lambda: batched(smol, ASKED[0], GenerateOptions(max_tokens=8)))
    short.start()
    story.close()  # the reader leaves
    short.join()
    deadline = time.monotonic() + 60  # a guard against hangs, not a speed check
    while scheduler.active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert scheduler.active == 0
    assert scheduler.steps - before < 100  # far fewer than the story's 200 tokens


def test_only_plain_full_attention_decoders_batch(tmp_path: Path) -> None:
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM

    tiny: dict[str, Any] = {"hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2}
    llama = LlamaForCausalLM(
        LlamaConfig(vocab_size=64, num_hidden_layers=2, num_key_value_heads=1, **tiny)
    )
    gemma = Gemma3ForCausalLM(
        Gemma3TextConfig(
            vocab_size=64, num_hidden_layers=2, num_key_value_heads=1, head_dim=8, **tiny
        )
    )
    assert batchable(llama)
    assert not batchable(gemma)  # sliding-window layers keep a cache of their own shape


def test_the_lane_of_a_batching_model_has_one_slot_per_row(smol: Any, cpp: Any) -> None:
    assert batch_size(smol) == smol.backend.batch_size == MAX_BATCH
    assert batch_size(cpp) == cpp.backend.batch_size == SLOTS


@pytest.fixture
def served(shared_settings: Settings, smol: Any, tmp_path: Path) -> Iterator[Any]:
    with running(shared_settings, {SMOL: smol}, models=[SMOL], db=str(tmp_path / "b.db")) as up:
        yield up


def test_concurrent_chat_requests_through_the_server_all_answer(served: Any, smol: Any) -> None:
    lane = served.state.pool.get(SMOL).lane
    assert lane.capacity == MAX_BATCH
    asked = [*ASKED, *ASKED]

    def ask(text: str) -> httpx.Response:
        body = {"model": SMOL, "messages": [{"role": "user", "content": text}], "max_tokens": 16}
        return httpx.post(served.v1 + "/chat/completions", json=body, timeout=120)

    answers = together([partial(ask, text) for text in asked])
    assert [answer.status_code for answer in answers] == [200] * len(asked)
    options = GenerateOptions(max_tokens=16)
    expected = [smol.generate(chat(text), options=options).text for text in asked]
    assert [answer.json()["choices"][0]["message"]["content"] for answer in answers] == expected
    served.flush()
    assert served.state.store.count_requests() == len(asked)
