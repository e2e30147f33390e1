"""What a model call needs before its backend sees it: the prompt as the backend reads
it, the options and dialect plan, images set apart, texts checked, tokens counted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fondasi.backends.base import Backend, Capability, speaks
from fondasi.errors import BadInputError
from fondasi.models import json_mode
from fondasi.models.contract import PromptInput
from fondasi.models.dialect import Dialect
from fondasi.types import GenerateOptions, Message

if TYPE_CHECKING:
    from fondasi.models.handle import Model

MAX_TEXTS = 100_000


def count_with(backend: Backend, text: str) -> int | None:
    """Tokens by whatever tokenizer the backend holds; None if it has none."""
    counter = getattr(backend, "count_tokens", None)
    if callable(counter):
        return int(counter(text))
    tokenizer = getattr(backend, "tokenizer", None)
    if tokenizer is not None and callable(tokenizer):
        try:
            return len(tokenizer(text, add_special_tokens=True)["input_ids"])
        except (TypeError, KeyError, ValueError):
            pass
    encode = getattr(tokenizer, "encode", None)
    if callable(encode):
        encoded = encode(text)
        return len(getattr(encoded, "ids", encoded))
    engine_count = getattr(getattr(backend, "engine", None), "token_count", None)
    return int(engine_count(text)) if callable(engine_count) else None


@dataclass(frozen=True)
class Prepared:
    """One call made ready: the prompt as the backend reads it, its options, the plan."""

    asked: Any  # text, or messages
    options: GenerateOptions
    plan: Dialect
    enforced: bool  # JSON mode done here (collected and checked)
    images: list[Any] | None


def pictures(images: Any, messages: Sequence[Message]) -> Any:
    """Images given apart plus those carried by the messages, or None if there are none."""
    given = [] if images is None else list(images) if isinstance(images, list | tuple) else [images]
    carried = [image for message in messages for image in message.images]
    return [*given, *carried] or None


def prepare(
    model: Model,
    prompt: PromptInput,
    system: str | None,
    images: Any,
    chosen: GenerateOptions,
    chat_template: bool,
) -> Prepared:
    """What ``model``'s backend is asked, with which options, and what the handle does around it."""
    if chosen.confidential and model.remote:
        raise BadInputError(
            f"{model.id} is a hosted API and this request is confidential: use a local "
            "model, or set private_model in config.toml to route such requests to one"
        )
    needed = Capability.GENERATE if images is None else Capability.VISION_CHAT
    plan = Dialect.of(model._need(needed), chosen, model.id)
    chosen = plan.options
    backend = model.backend
    enforced = chosen.json_mode and not json_mode.native(backend)
    raw = not chat_template and not model.remote and images is None
    if raw and isinstance(prompt, str) and not enforced and plan.instruction is None:
        if not prompt.strip():
            raise BadInputError("the prompt is empty")
        asked: Any = prompt
    else:
        asked = model._prompt(
            prompt, plan.system(json_mode.with_instruction(system) if enforced else system)
        )
    if isinstance(asked, list):
        asked = plan.turns(asked)
        if not speaks(backend, "native_images"):  # a local model sees them separately
            images = pictures(images, asked)
            asked = [m.model_copy(update={"images": ()}) if m.images else m for m in asked]
    if images is not None:
        images = list(images) if isinstance(images, list | tuple) else [images]
    return Prepared(asked, chosen, plan, enforced, images)


def texts_of(texts: str | Sequence[str]) -> list[str]:
    """The texts of one embedding call, checked."""
    batch = [texts] if isinstance(texts, str) else list(texts)
    if len(batch) > MAX_TEXTS:
        raise BadInputError(f"{len(batch)} texts in one call; send at most {MAX_TEXTS}")
    if any(not isinstance(text, str) for text in batch):
        raise BadInputError("every text to embed must be a string")
    return batch


def operation(chat_template: bool) -> str:
    """The GenAI operation a generation call is: chat, or plain text completion."""
    return "chat" if chat_template else "text_completion"
