"""The few value types every layer shares: messages, options, chunks, completions, labels."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    """Who said a message."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class Message(BaseModel):
    """One turn of a conversation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role = Field(description="system, user or assistant.")
    content: str = Field(description="The text of the turn.")


class GenerateOptions(BaseModel):
    """How to generate text; the same options for every backend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int = Field(default=256, ge=1, le=32768, description="Most new tokens to produce.")
    temperature: float = Field(
        default=0.0, ge=0.0, le=2.0, description="0 decodes greedily; higher samples more freely."
    )
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    stop: list[str] = Field(
        default_factory=list, max_length=8, description="Strings that end the output (not kept)."
    )
    seed: int | None = Field(default=None, description="Seed for sampling, for repeatable output.")
    json_mode: bool = Field(
        default=False,
        description="Answer with one JSON object: the provider's JSON mode where it has one, "
        "otherwise fondasi asks for it and checks the answer.",
    )
    confidential: bool = Field(
        default=False,
        description="Never send this request off the machine: a privacy route answers it "
        "locally, a fallback chain skips hosted models, a hosted model refuses it.",
    )


class Usage(BaseModel):
    """Tokens a call consumed."""

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = Field(ge=0, description="Tokens in the prompt, template included.")
    completion_tokens: int = Field(ge=0, description="Tokens generated.")

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion."""
        return self.prompt_tokens + self.completion_tokens


FinishReason = Literal["stop", "length"]


class Answered(BaseModel):
    """Who answered a call and what it took: set on a ``Completion`` and a stream's last chunk."""

    model_config = ConfigDict(frozen=True)

    model: str | None = Field(default=None, description="The id of the model that answered.")
    version: str | None = Field(
        default=None,
        description="What identifies its weights: the package pin, the provider's model id, "
        "the tuned run or the file.",
    )
    seconds: float | None = Field(default=None, ge=0, description="Wall time of the call.")
    first_token_seconds: float | None = Field(default=None, description="Time to first text.")
    cost_usd: float | None = Field(
        default=None,
        description="API price of the tokens, or hardware time for local models; None if unknown.",
    )
    route: str | None = Field(
        default=None,
        description="Why this model answered: the fallbacks, privacy check or alias split "
        "the call went through; None for a plain model.",
    )


class Chunk(Answered):
    """A piece of streamed output; the last one carries usage, why it ended and who answered."""

    text: str = Field(default="", description="New text.")
    usage: Usage | None = Field(default=None, description="Set on the final chunk.")
    finish_reason: FinishReason | None = Field(default=None, description="Set on the final chunk.")

    @property
    def final(self) -> bool:
        """Whether this is the stream's last chunk."""
        return self.usage is not None or self.finish_reason is not None


class Completion(Answered):
    """A whole generated answer with its accounting."""

    model: str = Field(description="The id of the model that answered.")
    text: str = Field(description="Generated text, stop sequence removed.")
    usage: Usage = Field(description="Token counts.")
    finish_reason: FinishReason = Field(description="stop (natural end or stop string) or length.")
    seconds: float = Field(ge=0, description="Wall time of the call.")


class Label(BaseModel):
    """A class and its probability or similarity."""

    model_config = ConfigDict(frozen=True)

    label: str
    score: float


class ImageOptions(BaseModel):
    """How to draw an image from a prompt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(default=25, ge=1, le=200, description="Denoising steps.")
    width: int | None = Field(default=None, ge=64, le=2048, multiple_of=8, description="Pixels.")
    height: int | None = Field(default=None, ge=64, le=2048, multiple_of=8, description="Pixels.")
    guidance_scale: float = Field(default=7.5, ge=0, le=30, description="Prompt adherence.")
    negative_prompt: str | None = Field(default=None, description="What the image must not show.")
    seed: int | None = Field(default=None, description="Seed for repeatable images.")
    count: int = Field(default=1, ge=1, le=4, description="Images per prompt.")
