"""What the store keeps and what its queries return: small pydantic models, safe to JSON."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GuardEventRecord(BaseModel):
    """One guard finding on a request, flattened for the store."""

    model_config = ConfigDict(frozen=True)

    stage: str = Field(description="input or output.")
    filter: str = Field(description="The guard filter that fired.")
    type: str = Field(description="What it found (EMAIL, NIK, toxicity ...).")
    action: str = Field(description="What it did: block, redact, flag ...")
    score: float | None = Field(default=None, description="The filter's confidence.")
    start: int | None = Field(default=None, description="Where the finding starts in the text.")
    end: int | None = Field(default=None, description="Where it ends.")


class RequestRecord(BaseModel):
    """One answered (or refused) request, as the server logs it."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="The response id the client saw.")
    ts: float = Field(description="Arrival time, UTC epoch seconds.")
    route: str = Field(description="chat, completions, embeddings or images.")
    key_id: str | None = Field(default=None, description="The API key's id, never the key.")
    model: str = Field(description="The model name the client asked for.")
    version: str | None = Field(default=None, description="The model that answered.")
    decision: str | None = Field(default=None, description="Routing decisions, in words.")
    status: int = Field(description="HTTP status sent.")
    error: str | None = Field(default=None, description="Error type and message, on failure.")
    latency_ms: float = Field(ge=0, description="Arrival to last byte.")
    ttft_ms: float | None = Field(default=None, description="Arrival to first token.")
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    cost_usd: float | None = Field(default=None, description="API price or hardware time.")
    stream: bool = Field(default=False)
    prompt_text: str | None = Field(default=None, description="Redacted prompt, if logged.")
    response_text: str | None = Field(default=None, description="Redacted answer, if logged.")
    guard_blocked: bool = Field(default=False, description="A guard refused the request.")
    guard_events: list[GuardEventRecord] = Field(default_factory=list)


class FeedbackRecord(BaseModel):
    """A user's verdict on one response."""

    model_config = ConfigDict(frozen=True)

    response_id: str
    ts: float
    key_id: str | None = None
    rating: int | None = Field(default=None, description="+1 up, -1 down.")
    score: float | None = Field(default=None, description="0..1.")
    comment: str | None = None
    correction: str | None = Field(default=None, description="A better answer.")
    label: str | None = Field(default=None, description="The right class for the input.")


class FeedbackRow(FeedbackRecord):
    """Feedback joined with the request it is about."""

    model: str | None = None
    version: str | None = None
    route: str | None = None
    prompt_text: str | None = None
    response_text: str | None = None


class GuardEventRow(GuardEventRecord):
    """A guard finding with the request it belongs to."""

    request_id: str
    ts: float
    model: str


class Bucket(BaseModel):
    """One model's traffic in one time bucket (for charts)."""

    start: float = Field(description="Bucket start, UTC epoch seconds.")
    model: str
    requests: int
    errors: int = Field(description="Status >= 400 (429s included) or a stream broken mid-way.")
    rate_limited: int = Field(description="Answers with status 429.")
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    ttft_p50_ms: float | None


class ModelSummary(BaseModel):
    """One model over a window: volume, speed, tokens, cost, errors, feedback, guard."""

    model: str
    versions: list[str] = Field(description="Versions that answered under this name.")
    requests: int
    errors: int
    error_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    ttft_p50_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    feedback_up: int
    feedback_down: int
    feedback_score: float | None = Field(description="Mean score of scored feedback.")
    guard_events: int
    guard_blocked: int


class Sample(BaseModel):
    """What drift checks read from one request: texts, sizes and outcomes."""

    id: str
    ts: float
    model: str
    version: str | None
    status: int
    prompt_text: str | None
    response_text: str | None
    prompt_tokens: int
    completion_tokens: int
    guard_blocked: bool
    rating: int | None = Field(description="The latest thumbs up/down on it, if any.")
    score: float | None


class KeyInfo(BaseModel):
    """An API key as listed: never the secret, only its first characters."""

    id: str
    name: str
    prefix: str
    created: float
    revoked: float | None
    rate_per_minute: int | None
    models: list[str] | None
    admin: bool

    @property
    def active(self) -> bool:
        """Not revoked."""
        return self.revoked is None


class AliasTarget(BaseModel):
    """One version behind an alias and its share of traffic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1, description="A model id or ref (tuned:runs/lora-7).")
    weight: float = Field(gt=0, le=100, description="Share of requests, in percent.")


class Alias(BaseModel):
    """A served name and the versions that answer it."""

    name: str
    targets: list[AliasTarget]
    updated: float


class AliasChange(BaseModel):
    """One change to an alias, for its history and rollbacks."""

    name: str
    ts: float
    action: str
    targets: list[AliasTarget] | None
