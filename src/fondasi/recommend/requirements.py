"""What a user needs from a model: the input to ``recommend``."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fondasi.catalog.schema import Task
from fondasi.errors import UnknownChoiceError
from fondasi.registry import close_matches


class Deploy(StrEnum):
    """Where the model may run (the seeds' three approaches)."""

    LOCAL = "local"  # Model Lokal: on the user's own hardware
    CLOUD = "cloud"  # API Cloud: a hosted API
    HYBRID = "hybrid"  # both, routed per request


class Privacy(StrEnum):
    """How sensitive the data is."""

    HIGH = "high"  # data must not leave the user's machines
    NORMAL = "normal"


class LicenseNeed(StrEnum):
    """Which licences are acceptable."""

    COMMERCIAL = "commercial"  # commercial use must be clearly allowed
    ANY = "any"  # research or personal use


# Other words people use for a task, English and Indonesian.
TASK_ALIASES: dict[str, Task] = {
    "chatbot": Task.CHAT,
    "assistant": Task.CHAT,
    "asisten": Task.CHAT,
    "customer-service": Task.CHAT,
    "generation": Task.TEXT_GENERATION,
    "generate": Task.TEXT_GENERATION,
    "generasi-teks": Task.TEXT_GENERATION,
    "translate": Task.TRANSLATION,
    "terjemahan": Task.TRANSLATION,
    "penerjemahan": Task.TRANSLATION,
    "summarisation": Task.SUMMARIZATION,
    "summary": Task.SUMMARIZATION,
    "ringkasan": Task.SUMMARIZATION,
    "peringkasan": Task.SUMMARIZATION,
    "classify": Task.CLASSIFICATION,
    "sentiment": Task.CLASSIFICATION,
    "intent": Task.CLASSIFICATION,
    "klasifikasi": Task.CLASSIFICATION,
    "embedding": Task.EMBEDDINGS,
    "semantic-search": Task.EMBEDDINGS,
    "search": Task.EMBEDDINGS,
    "retrieval": Task.EMBEDDINGS,
    "rag": Task.EMBEDDINGS,
    "pencarian-semantik": Task.EMBEDDINGS,
    "qa": Task.QUESTION_ANSWERING,
    "tanya-jawab": Task.QUESTION_ANSWERING,
    "coding": Task.CODE,
    "kode": Task.CODE,
    "pemrograman": Task.CODE,
    "image-classify": Task.IMAGE_CLASSIFICATION,
    "klasifikasi-gambar": Task.IMAGE_CLASSIFICATION,
    "image-text": Task.IMAGE_TEXT_MATCHING,
    "vision": Task.IMAGE_UNDERSTANDING,
    "vqa": Task.IMAGE_UNDERSTANDING,
    "text-to-image": Task.IMAGE_GENERATION,
    "speech-to-text": Task.SPEECH_RECOGNITION,
    "transcription": Task.SPEECH_RECOGNITION,
    "transcribe": Task.SPEECH_RECOGNITION,
    "asr": Task.SPEECH_RECOGNITION,
    "transkripsi": Task.SPEECH_RECOGNITION,
    "medical": Task.BIOMEDICAL,
    "medis": Task.BIOMEDICAL,
    "kesehatan": Task.BIOMEDICAL,
    "biomedis": Task.BIOMEDICAL,
    "hukum": Task.LEGAL,
    "financial": Task.FINANCE,
    "keuangan": Task.FINANCE,
}


def parse_task(value: str | Task) -> Task:
    """A task from its name or an alias; an unknown one names the closest."""
    if isinstance(value, Task):
        return value
    key = str(value).strip().lower().replace("_", "-").replace(" ", "-")
    try:
        return Task(key)
    except ValueError:
        pass
    if key in TASK_ALIASES:
        return TASK_ALIASES[key]
    names = [task.value for task in Task]
    close = close_matches(key, [*names, *TASK_ALIASES], cutoff=0.6)
    close = list(dict.fromkeys(TASK_ALIASES[c].value if c in TASK_ALIASES else c for c in close))
    raise UnknownChoiceError("task", str(value), names, close)


class Requirements(BaseModel):
    """A user's needs; ``None`` means "no constraint" or "detect it"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: Task = Field(description="What the model must do (a name or an alias).")
    ram_gb: float | None = Field(
        default=None, ge=0, description="RAM to run models in, GB; default: this machine's."
    )
    vram_gb: float | None = Field(
        default=None, ge=0, description="GPU memory, GB; default: this machine's (0 without one)."
    )
    budget_usd_per_month: float | None = Field(
        default=None, ge=0, description="Most that cloud API calls may cost a month, in USD."
    )
    requests_per_day: int = Field(default=1000, ge=0, description="Expected requests a day.")
    input_tokens: int | None = Field(
        default=None, ge=0, description="Tokens in per request; default: typical for the task."
    )
    output_tokens: int | None = Field(
        default=None, ge=0, description="Tokens out per request; default: typical for the task."
    )
    documents: int | None = Field(
        default=None, ge=0, description="Documents to embed once (semantic search corpus)."
    )
    deploy: Deploy | None = Field(default=None, description="local, cloud or hybrid; None: any.")
    privacy: Privacy = Field(default=Privacy.NORMAL, description="high: data stays local.")
    offline: bool = Field(default=False, description="No internet where it runs.")
    license: LicenseNeed = Field(default=LicenseNeed.ANY, description="commercial or any.")
    lang: Literal["id", "en"] | None = Field(
        default=None, description="Main language of the text: id (Indonesian) or en."
    )
    latency_ms: int | None = Field(
        default=None, gt=0, description="Target time for one response, in milliseconds."
    )
    top: int = Field(default=5, ge=1, le=50, description="How many picks to return.")

    @field_validator("task", mode="before")
    @classmethod
    def _task(cls, value: Any) -> Task:
        return parse_task(value)

    @property
    def local_only(self) -> bool:
        """Nothing may leave the machine: privacy, no internet, or an on-prem deployment."""
        return self.privacy == Privacy.HIGH or self.offline or self.deploy == Deploy.LOCAL
