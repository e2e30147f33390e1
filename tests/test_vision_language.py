"""Vision-language models (LLaVA): a tiny LLaVA built from configs, loaded through hf:."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import skimage.data
import skimage.io

import fondasi
from fondasi.backends import Capability
from fondasi.backends.gguf_cache import cached_folder
from fondasi.errors import BadInputError
from fondasi.models.handle import CapabilityError
from fondasi.settings import Settings

from .conftest import Cli

# The processor format of real LLaVA checkpoints: content parts, images as <image>.
TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_llava(
    tmp_path_factory: pytest.TempPathFactory, smol: Any, shared_settings: Settings
) -> Path:
    """LLaVA = a tiny CLIP vision tower + projector + a tiny Llama, with SmolLM2's tokenizer."""
    from transformers import (
        AutoTokenizer,
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = AutoTokenizer.from_pretrained(
        cached_folder(smol.spec.path, shared_settings.cache_dir)
    )
    tokenizer.add_tokens(["<image>"], special_tokens=True)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        ),
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        chat_template=TEMPLATE,
        num_additional_image_tokens=1,
    )
    folder = tmp_path_factory.mktemp("tiny-llava")
    LlavaForConditionalGeneration(config).save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


def test_llava_answers_about_images(tiny_llava: Path, shared_settings: Settings) -> None:
    model = fondasi.model(f"hf:{tiny_llava}", shared_settings)
    assert model.backend_name == "transformers-vision-language"
    assert model.capabilities == {Capability.GENERATE, Capability.CHAT, Capability.VISION_CHAT}
    answer = model.generate(
        "What is in the picture?", images=[skimage.data.chelsea()], max_tokens=5
    )
    assert 0 < answer.usage.completion_tokens <= 5
    text_only = model.generate("What is in the picture?", max_tokens=5)
    # Each image adds its 16 patch tokens (the "default" strategy drops the class token).
    assert answer.usage.prompt_tokens == text_only.usage.prompt_tokens + 16
    pair = [skimage.data.chelsea(), skimage.data.coffee()]
    two = model.generate("What is in the picture?", images=pair, max_tokens=3)
    assert two.usage.prompt_tokens == text_only.usage.prompt_tokens + 32
    streamed = "".join(
        c.text for c in model.stream("Describe.", images=skimage.data.coffee(), max_tokens=5)
    )
    assert streamed == model.generate("Describe.", images=skimage.data.coffee(), max_tokens=5).text


def test_images_need_a_vision_model(smol: Any) -> None:
    with pytest.raises(CapabilityError, match="cannot vision-chat"):
        smol.generate("What is this?", images=[skimage.data.chelsea()])


def test_bad_images_for_llava(tiny_llava: Path, shared_settings: Settings, tmp_path: Path) -> None:
    model = fondasi.model(f"hf:{tiny_llava}", shared_settings)
    notes = tmp_path / "notes.png"
    notes.write_text("no pixels")
    with pytest.raises(BadInputError, match="not an image"):
        model.generate("What is this?", images=[str(notes)], max_tokens=2)
    with pytest.raises(BadInputError, match="at most 8"):
        model.generate("What?", images=[skimage.data.chelsea()] * 9, max_tokens=2)


def test_run_cli_with_an_image(cli: Cli, tiny_llava: Path, tmp_path: Path) -> None:
    photo = tmp_path / "cat.png"
    skimage.io.imsave(photo, skimage.data.chelsea())
    done = cli(
        "run",
        f"hf:{tiny_llava}",
        "What is this?",
        "--image",
        str(photo),
        "--max-tokens",
        "3",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["usage"]["completion_tokens"] <= 3


def _data_url(tmp_path: Path) -> str:
    import base64

    photo = tmp_path / "cat.png"
    skimage.io.imsave(photo, skimage.data.chelsea())
    return "data:image/png;base64," + base64.b64encode(photo.read_bytes()).decode()


def test_images_in_message_content_parts(
    tiny_llava: Path, shared_settings: Settings, tmp_path: Path
) -> None:
    from fondasi.types import Message

    model = fondasi.model(f"hf:{tiny_llava}", shared_settings)
    url = _data_url(tmp_path)
    parts = [
        {"type": "text", "text": "What is in the picture?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    message = Message(role="user", content=parts)
    assert message.content == "What is in the picture?" and message.images == (url,)
    carried = model.generate([message], max_tokens=4)
    apart = model.generate("What is in the picture?", images=[tmp_path / "cat.png"], max_tokens=4)
    assert carried.text == apart.text  # the same image, given in the message or apart
    assert carried.usage.prompt_tokens == apart.usage.prompt_tokens
    with pytest.raises(BadInputError, match="not valid base64"):
        model.generate([Message(role="user", content="x", images=("data:image/png;base64,@@",))])
    with pytest.raises(BadInputError, match="not links"):
        model.generate([Message(role="user", content="x", images=("https://example.com/a.png",))])


def test_image_url_parts_over_the_server(
    tiny_llava: Path, shared_settings: Settings, smol: Any, tmp_path: Path
) -> None:
    import openai

    from .serving import running

    ref = f"hf:{tiny_llava}"
    llava = fondasi.models.load.load(ref, shared_settings)
    url = _data_url(tmp_path)
    image_turn = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in the picture?"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]
    loaded = {ref: llava, "smollm2-135m-instruct": smol}
    with (
        running(shared_settings, loaded, models=[ref, "smollm2-135m-instruct"]) as served,
        openai.OpenAI(base_url=served.v1, api_key="x", max_retries=0) as sdk,
    ):
        reply = sdk.chat.completions.create(model=ref, messages=image_turn, max_tokens=4)  # type: ignore[arg-type]
        with pytest.raises(openai.BadRequestError) as blind:
            sdk.chat.completions.create(
                model="smollm2-135m-instruct",
                messages=image_turn,
                max_tokens=4,  # type: ignore[arg-type]
            )
    direct = llava.generate("What is in the picture?", images=[tmp_path / "cat.png"], max_tokens=4)
    assert reply.choices[0].message.content == direct.text
    assert reply.usage is not None and reply.usage.prompt_tokens == direct.usage.prompt_tokens
    assert "smollm2-135m-instruct" in blind.value.message
