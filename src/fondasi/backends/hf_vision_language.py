"""Vision-language models (LLaVA and kin): answer questions about images, streamed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fondasi.backends.base import Capability, ModelSpec, Prompt, message_dict
from fondasi.backends.hf_causal import CausalLM
from fondasi.backends.images import load_image
from fondasi.errors import BadInputError
from fondasi.extras import quiet_transformers, require
from fondasi.types import Chunk, GenerateOptions

if TYPE_CHECKING:
    from fondasi.settings import Settings

MAX_IMAGES = 8
VISION_INPUTS = ("input_ids", "attention_mask", "pixel_values", "image_sizes", "image_grid_thw")


class VisionLM(CausalLM):
    """A decoder that also reads images through its processor."""

    def __init__(self, model: Any, processor: Any, name: str) -> None:
        super().__init__(model, processor.tokenizer, name)
        self.processor = processor
        self.capabilities = frozenset(
            {Capability.GENERATE, Capability.CHAT, Capability.VISION_CHAT}
        )
        text_config = getattr(model.config, "text_config", model.config)
        self.context_length = int(getattr(text_config, "max_position_embeddings", 0) or 0)

    def stream_vision(
        self, prompt: Prompt, images: Sequence[Any], options: GenerateOptions
    ) -> Iterator[Chunk]:
        """Answer ``prompt`` about ``images`` (paths, bytes, arrays or PIL images)."""
        if not images:
            raise BadInputError("no images given")
        if len(images) > MAX_IMAGES:
            raise BadInputError(f"{len(images)} images; send at most {MAX_IMAGES} per request")
        pictures = [load_image(image) for image in images]
        messages = self._with_images(prompt, len(pictures))
        if getattr(self.processor, "chat_template", None):
            text = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        else:
            token = getattr(self.processor, "image_token", "<image>")
            text = token * len(pictures) + "\n" + _plain(prompt)
        encoded = self.processor(images=pictures, text=text, return_tensors="pt")
        return self._generate({k: encoded[k] for k in VISION_INPUTS if k in encoded}, options)

    @staticmethod
    def _with_images(prompt: Prompt, count: int) -> list[dict[str, Any]]:
        """Messages in the processor's format, the images in the last user turn."""
        turns: list[dict[str, Any]] = (
            [{"role": "user", "content": prompt}]
            if isinstance(prompt, str)
            else [dict(message_dict(message)) for message in prompt]
        )
        for turn in turns:
            turn["content"] = [{"type": "text", "text": turn["content"]}]
        last_user = max(i for i, turn in enumerate(turns) if turn["role"] == "user")
        turns[last_user]["content"] = [{"type": "image"}] * count + turns[last_user]["content"]
        return turns


def _plain(prompt: Prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n".join(message_dict(message)["content"] for message in prompt)


class VisionLMFactory:
    """Loads image-text-to-text folders (LLaVA, LLaVA-NeXT, Qwen2-VL, PaliGemma, SmolVLM)."""

    name = "transformers-vision-language"
    priority = 15
    ARCHITECTURES = frozenset(
        {
            "LlavaForConditionalGeneration",
            "LlavaNextForConditionalGeneration",
            "Qwen2VLForConditionalGeneration",
            "Qwen2_5_VLForConditionalGeneration",
            "PaliGemmaForConditionalGeneration",
            "Idefics3ForConditionalGeneration",
            "SmolVLMForConditionalGeneration",
            "Gemma3ForConditionalGeneration",
        }
    )

    def claims(self, spec: ModelSpec) -> bool:
        """Vision-language architectures in safetensors folders."""
        return spec.format == "safetensors" and (spec.hf_architecture or "") in self.ARCHITECTURES

    def load(self, spec: ModelSpec, settings: Settings) -> VisionLM:
        """Model and processor (image processor + tokenizer + chat template)."""
        require("transformers", "local", "vision-language models")
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        if spec.path is None:
            raise BadInputError(f"{spec.id}: no local weights to load")
        quiet_transformers()
        if settings.threads:
            torch.set_num_threads(settings.threads)
        processor = AutoProcessor.from_pretrained(spec.path, trust_remote_code=False)
        model = AutoModelForImageTextToText.from_pretrained(
            spec.path, dtype=torch.float32, use_safetensors=True, trust_remote_code=False
        )
        model.eval()
        return VisionLM(model, processor, spec.id)
