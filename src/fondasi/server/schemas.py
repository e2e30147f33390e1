"""Request bodies of the OpenAI wire format, as far as fondasi serves it.

Unknown fields are ignored, as OpenAI-compatible servers do; fields fondasi knows but cannot
honour (token-array prompts, built-in Responses tools, stored responses) are refused with a
clear 400 by the routes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_CHOICES = 8


class ChatMessage(BaseModel):
    """One message of a conversation (content parts and tool calls as OpenAI sends them)."""

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = Field(
        default=None, description="Text, or content parts (text and image_url)."
    )
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = Field(
        default=None, description="An assistant turn's function calls."
    )
    tool_call_id: str | None = Field(default=None, description="A tool turn's call id.")
    function_call: dict[str, Any] | None = Field(
        default=None, description="Legacy: an assistant turn's one function call."
    )


class StreamOptions(BaseModel):
    """Options for streamed answers."""

    include_usage: bool = Field(default=False, description="Send a last chunk with usage.")


class Sampling(BaseModel):
    """What chat and text completions share."""

    model: str = Field(min_length=1, max_length=300, description="A served name or alias.")
    max_tokens: int | None = Field(default=None, ge=1, description="Most new tokens.")
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    n: int | None = Field(
        default=None, ge=1, le=MAX_CHOICES, description="Answers, generated one after another."
    )
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = Field(default=None, description="Up to 4 stop strings.")
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
    user: str | None = Field(default=None, max_length=1000)


class ChatRequest(Sampling):
    """POST /v1/chat/completions."""

    messages: list[ChatMessage] = Field(min_length=1, max_length=2048)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool | None = Field(default=None, description="Each answer token's log-prob.")
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=128)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    functions: list[dict[str, Any]] | None = Field(
        default=None, max_length=128, description="Legacy tools: bare function objects."
    )
    function_call: str | dict[str, Any] | None = Field(
        default=None, description="Legacy tool_choice: none, auto or {name}."
    )
    response_format: dict[str, Any] | None = Field(
        default=None, description="text, json_object or json_schema."
    )


class CompletionRequest(Sampling):
    """POST /v1/completions."""

    prompt: str | list[str] | list[int] | list[list[int]] = Field(
        description="The text to continue, or a list of texts (token arrays are not served)."
    )
    max_tokens: int | None = Field(
        default=None, ge=0, description="Most new tokens; 0 with echo scores the prompt only."
    )
    echo: bool | None = False
    logprobs: int | None = Field(default=None, ge=0, le=5, description="Top alternatives.")
    suffix: str | None = None


class ResponsesRequest(BaseModel):
    """POST /v1/responses: the part of the Responses API that maps onto chat."""

    model: str = Field(min_length=1, max_length=300, description="A served name or alias.")
    input: str | list[dict[str, Any]] = Field(description="Text, or message and output items.")
    instructions: str | None = Field(default=None, description="A system message first.")
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=128)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = Field(default=None, description="text.format: the answer's form.")
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stream: bool | None = False
    store: bool | None = None
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    background: bool | None = None
    reasoning: dict[str, Any] | None = None
    include: list[str] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = Field(default=None, max_length=1000)


class ModerationRequest(BaseModel):
    """POST /v1/moderations."""

    input: str | list[str] | list[dict[str, Any]] = Field(description="A text or texts.")
    model: str | None = Field(default=None, max_length=300, description="Ignored: the guard.")


class EmbeddingRequest(BaseModel):
    """POST /v1/embeddings."""

    model: str = Field(min_length=1, max_length=300)
    input: str | list[str] | list[int] | list[list[int]] = Field(
        description="A text or a list of texts (token arrays are not served)."
    )
    encoding_format: Literal["float", "base64"] | None = "float"
    dimensions: int | None = Field(default=None, ge=1)
    input_type: Literal["query", "passage"] | None = Field(
        default=None, description="fondasi extension: E5-style query or passage prefixes."
    )
    user: str | None = Field(default=None, max_length=1000)


class ClassifyRequest(BaseModel):
    """POST /v1/classify (vLLM's classification format, with fondasi's label extension)."""

    model: str = Field(min_length=1, max_length=300)
    input: str | list[str] | list[int] | list[list[int]] = Field(
        description="A text or a list of texts (token arrays are not served)."
    )
    labels: list[str] | dict[str, str] | None = Field(
        default=None,
        description="fondasi extension: candidate labels (or label -> description) for "
        "zero-shot classification by embedding models and language models.",
    )
    examples: list[dict[str, str]] | None = Field(
        default=None,
        max_length=256,
        description="fondasi extension: labelled examples ({text, label}) for few-shot "
        "classification (class prototypes for embedding models, shots in the prompt for "
        "language models).",
    )
    user: str | None = Field(default=None, max_length=1000)


class ImageRequest(BaseModel):
    """POST /v1/images/generations."""

    model: str = Field(min_length=1, max_length=300)
    prompt: str = Field(min_length=1, max_length=32_000)
    n: int | None = Field(default=1, ge=1, le=4)
    size: str | None = Field(default=None, pattern=r"^\d{2,4}x\d{2,4}$|^auto$")
    response_format: Literal["b64_json", "url"] | None = "b64_json"
    quality: str | None = None
    user: str | None = Field(default=None, max_length=1000)


class FeedbackRequest(BaseModel):
    """POST /v1/feedback: a verdict on one response."""

    model_config = ConfigDict(extra="forbid")

    response_id: str = Field(min_length=1, max_length=64, description="From the response.")
    rating: Literal["up", "down", 1, -1] | None = Field(default=None, description="Thumbs.")
    score: float | None = Field(default=None, ge=0, le=1, description="A 0..1 grade.")
    comment: str | None = Field(default=None, max_length=4000)
    correction: str | None = Field(
        default=None, max_length=100_000, description="A better answer, for tuning."
    )
    label: str | None = Field(
        default=None, max_length=200, description="The right class, for classification data."
    )


class AliasBody(BaseModel):
    """PUT /admin/aliases/{name}: one model, or targets with percent weights."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, min_length=1, max_length=300)
    targets: list[dict[str, Any]] | None = Field(default=None, max_length=16)


class CanaryBody(BaseModel):
    """POST /admin/aliases/{name}/canary."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=300)
    percent: float = Field(gt=0, lt=100)


class PromoteBody(BaseModel):
    """POST /admin/aliases/{name}/promote."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, max_length=300)
