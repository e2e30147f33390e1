"""``serve.toml``: what the server serves and how, as one closed pydantic object.

```toml
host = "127.0.0.1"
port = 8000
models = ["smollm2-135m-instruct", "multilingual-e5-small"]
db = "postgresql://fondasi@127.0.0.1/fondasi"   # default: FONDASI_HOME/fondasi.db
workers = 4              # processes on one port; replicas elsewhere share db and redis
redis_url = "redis://127.0.0.1:6379/0"   # per-key rate limits held across all of them
log_text = true          # keep prompts and answers (redacted) in the log
trace_text = true        # ... and put them on the request's trace span (needs log_text)
log_format = "json"      # one JSON object a log line, with request and trace ids
guard = "default"        # a guard policy wrapped around every model

[aliases]
support-bot = "tuned:runs/lora-7"
```
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fondasi.errors import BadInputError

DEFAULT_MODELS = ["smollm2-135m-instruct", "multilingual-e5-small"]


class ServeConfig(BaseModel):
    """How ``fondasi serve`` runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(default="127.0.0.1", description="Address to bind; loopback by default.")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port (0: any free one).")
    models: list[str] = Field(
        default_factory=lambda: list(DEFAULT_MODELS),
        min_length=1,
        description="Model ids or refs served under their own names.",
    )
    aliases: dict[str, str] = Field(
        default_factory=dict,
        description="Served names -> model refs, created at start when the store lacks them.",
    )
    db: str | None = Field(default=None, description="Log store URL or SQLite path.")
    log_text: bool = Field(
        default=False, description="Log prompts and answers (redacted by the guard policy)."
    )
    trace_text: bool = Field(
        default=False,
        description="Add the logged prompts and answers (redacted) to the request's trace "
        "span as events; needs log_text.",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Server log lines as text, or one JSON object a line with an access "
        "line per request, the request id and the trace and span ids.",
    )
    guard: str | None = Field(default=None, description="Guard policy wrapped around models.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS; none by default."
    )
    metrics_public: bool = Field(
        default=False, description="Serve /metrics without a key even when keys exist."
    )
    max_body_bytes: int = Field(
        default=2 * 2**20, ge=1024, description="Largest request body; bigger ones get 413."
    )
    max_upload_bytes: int = Field(
        default=25 * 2**20,
        ge=1024,
        description="Largest audio upload (/v1/audio/transcriptions); OpenAI's limit is 25 MB.",
    )
    timeout_s: float = Field(
        default=120.0, gt=0, description="Longest a model call may take before a 504."
    )
    max_queue: int = Field(
        default=64, ge=0, description="Requests that may wait per model; more get 429."
    )
    max_wait_s: float = Field(
        default=30.0, gt=0, description="Expected queue wait beyond which requests get 429."
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Server processes sharing the port; each loads the models and writes to "
        "the one store (use PostgreSQL, and redis_url so rate limits hold in total).",
    )
    threads: int = Field(default=8, ge=1, le=256, description="Threads running model calls.")
    redis_url: str | None = Field(
        default=None,
        description="Redis for per-key rate limits shared by every worker and replica "
        "(redis://host:6379/0); without it each process counts on its own.",
    )
    remote_concurrency: int = Field(
        default=16, ge=1, description="Calls at once to one hosted model (local models: one)."
    )
    embed_batch: int = Field(default=64, ge=1, description="Most texts in one embedding batch.")
    embed_wait_ms: float = Field(
        default=5.0, ge=0, description="How long an embedding request waits for company."
    )
    max_tokens_cap: int = Field(
        default=4096, ge=1, description="Most tokens one request may ask to generate."
    )
    allow_image_urls: bool = Field(
        default=False,
        description="Fetch http(s) image links in chat messages; off: only data URLs are read "
        "(a link makes the server fetch what a client names).",
    )
    graceful_timeout_s: float = Field(
        default=30.0, ge=0, description="On shutdown, how long in-flight requests may finish."
    )

    @model_validator(mode="after")
    def _texts_to_trace(self) -> ServeConfig:
        # The span takes the texts the log keeps, redacted once for both.
        if self.trace_text and not self.log_text:
            raise ValueError("trace_text puts the logged texts on spans: turn on log_text too")
        return self

    @classmethod
    def load(cls, path: Path | None = None, **overrides: object) -> ServeConfig:
        """The file's settings (if any) with command-line values on top."""
        data: dict[str, object] = {}
        if path is not None:
            if not path.is_file():
                raise BadInputError(f"no such file: {path}")
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise BadInputError(f"{path} is not valid TOML: {exc}") from None
        data.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            if not where:  # a check across settings names them in its message
                message = str(first["msg"]).removeprefix("Value error, ")
                raise BadInputError(f"bad serve settings: {message}") from None
            raise BadInputError(f"bad serve setting {where!r}: {first['msg']}") from None
