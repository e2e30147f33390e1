"""Cloud fine-tuning jobs on OpenAI and any server that speaks its fine-tuning API.

``validate_chat_file`` checks a JSONL training file offline: every bad line is named before
anything is uploaded, and the tokens it holds give a cost estimate. ``create_job`` uploads
the files (purpose ``fine-tune``) and starts a supervised job; ``job_status``, ``list_jobs``
and ``cancel_job`` follow it. Failures of the provider arrive as ``ProviderError``, one
line, never with the key in it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from fondasi.backends.openai_api import client_for, translate
from fondasi.backends.tokens import count_tokens
from fondasi.errors import BadInputError, MissingExtraError

if TYPE_CHECKING:
    from fondasi.settings import Settings

T = TypeVar("T")
MIN_EXAMPLES = 10  # OpenAI refuses training files with fewer examples
MAX_FILE_BYTES = 512_000_000  # OpenAI's upload limit for one file
ROLES = ("system", "user", "assistant")
DONE = frozenset({"succeeded", "failed", "cancelled"})


class FileReport(BaseModel):
    """What ``validate_chat_file`` found in a training file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Path = Field(description="The file that was checked.")
    path: Path = Field(description="The file to upload: source, or a chat-format copy of it.")
    converted: bool = Field(description="True when prompt/completion rows became chat rows.")
    examples: int = Field(description="Training examples (non-blank lines).")
    tokens: int = Field(description="Tokens in one pass over the file (cl100k, with overhead).")
    n_epochs: int = Field(description="Epochs the cost estimate assumes.")
    estimated_cost_usd: float | None = Field(
        description="tokens x epochs at the given training price; None without a price."
    )


class JobInfo(BaseModel):
    """One fine-tuning job as the provider last reported it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="The provider's job id (ftjob-...).")
    provider: str = Field(description="The fondasi provider name the job runs on.")
    status: str = Field(
        description="validating_files, queued, running, succeeded, failed or cancelled."
    )
    base_model: str = Field(description="The model being fine-tuned.")
    fine_tuned_model: str | None = Field(default=None, description="The result, once succeeded.")
    trained_tokens: int | None = Field(default=None, description="Billable tokens, once done.")
    n_epochs: int | None = Field(default=None, description="Epochs; None while 'auto'.")
    error: str | None = Field(default=None, description="Why the job failed.")
    created_at: int | None = Field(default=None, description="Unix seconds.")
    finished_at: int | None = Field(default=None, description="Unix seconds, once done.")
    events: tuple[str, ...] = Field(
        default=(), description="Recent event messages, oldest first (job_status only)."
    )

    @property
    def done(self) -> bool:
        """Whether the job has stopped (succeeded, failed or cancelled)."""
        return self.status in DONE


def to_chat_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``{"prompt", "completion"}`` rows as a user turn and an assistant turn; chat rows pass."""
    chat: list[dict[str, Any]] = []
    for row in rows:
        if "messages" not in row and "prompt" in row and "completion" in row:
            messages = [
                {"role": "user", "content": row["prompt"]},
                {"role": "assistant", "content": row["completion"]},
            ]
            chat.append({"messages": messages})
        else:
            chat.append(dict(row))
    return chat


def _check_row(row: Any, where: str) -> None:
    if not isinstance(row, dict):
        raise BadInputError(f"{where}: each line must be a JSON object")
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadInputError(
            f'{where}: expected {{"messages": [...]}} with at least one message, '
            'or {"prompt": ..., "completion": ...}'
        )
    for number, message in enumerate(messages, 1):
        if not isinstance(message, dict):
            raise BadInputError(f"{where}: message {number} is not an object")
        role = message.get("role")
        if role not in ROLES:
            raise BadInputError(
                f"{where}: message {number} has role {role!r}; use {', '.join(ROLES)}"
            )
        content = message.get("content")
        if not isinstance(content, str):
            raise BadInputError(f"{where}: message {number} ({role}) content must be a string")
        if not content.strip():
            raise BadInputError(f"{where}: message {number} ({role}) is empty")
    if all(message["role"] != "assistant" for message in messages):
        raise BadInputError(f"{where}: no assistant message to learn from")
    if messages[-1]["role"] != "assistant":
        raise BadInputError(f"{where}: the last message must be the assistant's")


def _approx_tokens(text: str) -> int:
    """About four characters a token, for when the bundled cl100k tokenizer is missing."""
    return max(1, len(text) // 4)


def _tokens(rows: list[dict[str, Any]]) -> int:
    """By OpenAI's recipe: 3 tokens of framing per message and 3 to prime the reply."""
    count: Callable[[str], int] = count_tokens
    try:
        count_tokens("")
    except MissingExtraError:
        count = _approx_tokens
    return sum(3 + sum(3 + count(m["content"]) for m in row["messages"]) for row in rows)


def validate_chat_file(
    path: Path | str,
    *,
    price_per_1m: float | None = None,
    n_epochs: int = 3,
    minimum: int = MIN_EXAMPLES,
) -> FileReport:
    """Check a chat fine-tuning JSONL file; a bad line raises BadInputError naming it.

    Prompt/completion rows (and blank lines) make a chat-format copy in a temporary file,
    which the report's ``path`` names. ``price_per_1m`` is the USD training price per
    million tokens; the estimate is tokens x ``n_epochs`` at that price.
    """
    source = Path(path).expanduser()
    if not source.is_file():
        raise BadInputError(f"no such training file: {source}")
    if source.stat().st_size > MAX_FILE_BYTES:
        raise BadInputError(f"{source} is over {MAX_FILE_BYTES // 1_000_000} MB, the API's limit")
    if n_epochs < 1:
        raise BadInputError(f"n_epochs must be at least 1, not {n_epochs}")
    try:
        lines = source.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{source} is not UTF-8 text: {exc.reason}") from None
    rows: list[dict[str, Any]] = []
    converted = rewrite = False
    for number, line in enumerate(lines, 1):
        if not line.strip():
            rewrite = rewrite or number < len(lines)  # a final newline is not a blank line
            continue
        where = f"{source}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInputError(f"{where}: not valid JSON ({exc.msg})") from None
        if isinstance(row, dict) and "messages" not in row and "prompt" in row:
            row, converted = to_chat_rows([row])[0], True
        _check_row(row, where)
        rows.append(row)
    if len(rows) < minimum:
        raise BadInputError(
            f"{source} has {len(rows)} example(s); fine-tuning needs at least {minimum}"
        )
    target = source
    if converted or rewrite:
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", prefix=f"{source.stem}-chat-", suffix=".jsonl", delete=False
        ) as out:
            out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        target = Path(out.name)
    tokens = _tokens(rows)
    cost = None if price_per_1m is None else tokens * n_epochs * price_per_1m / 1e6
    return FileReport(
        source=source,
        path=target,
        converted=converted,
        examples=len(rows),
        tokens=tokens,
        n_epochs=n_epochs,
        estimated_cost_usd=cost,
    )


class _Api:
    """An OpenAI-SDK client for one provider; every call's failure becomes one clear line."""

    def __init__(self, settings: Settings, provider: str) -> None:
        config = settings.provider(provider)
        if config.adapter != "openai":
            able = [
                n for n in settings.known_providers() if settings.provider(n).adapter == "openai"
            ]
            raise BadInputError(
                f"{provider} ({config.adapter} API) has no fine-tuning jobs fondasi can run; "
                f"providers that do: {', '.join(able)} (or an OpenAI-compatible "
                "[providers.NAME] in config.toml)"
            )
        key = config.require_key(provider)
        self.provider = provider
        self.key_env = list(config.key_env)
        self.secret = key.get_secret_value() if key else ""
        self.client = client_for(config, provider)

    def __enter__(self) -> _Api:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.client.close()  # one client per call: do not leave its connections to the GC

    def __call__(self, action: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return action(*args, **kwargs)
        except Exception as exc:
            error = translate(self.provider, exc, self.key_env)
            if self.secret and self.secret in str(error):  # a server that echoes the key
                error.args = (str(error).replace(self.secret, "****"),)
                raise error from None
            raise error from exc


def _job_id(job_id: str) -> str:
    if not job_id.strip():
        raise BadInputError("no job id given (see `list_jobs`)")
    return job_id.strip()


def _epochs(job: Any) -> int | None:
    supervised = getattr(getattr(job, "method", None), "supervised", None)
    places = (getattr(supervised, "hyperparameters", None), getattr(job, "hyperparameters", None))
    found = (getattr(hyper, "n_epochs", None) for hyper in places)
    return next((epochs for epochs in found if isinstance(epochs, int)), None)  # not "auto"


def _info(provider: str, job: Any, events: Sequence[Any] = ()) -> JobInfo:
    return JobInfo(
        id=job.id,
        provider=provider,
        status=job.status,
        base_model=job.model,
        fine_tuned_model=getattr(job, "fine_tuned_model", None),
        trained_tokens=getattr(job, "trained_tokens", None),
        n_epochs=_epochs(job),
        error=getattr(getattr(job, "error", None), "message", None) or None,
        created_at=getattr(job, "created_at", None),
        finished_at=getattr(job, "finished_at", None),
        events=tuple(event.message for event in reversed(events)),  # the API sends newest first
    )


def create_job(
    settings: Settings,
    provider: str,
    base_model: str,
    training_file: Path,
    validation_file: Path | None = None,
    n_epochs: int | None = None,
    suffix: str | None = None,
    seed: int | None = None,
) -> JobInfo:
    """Check the files, upload them and start a supervised job; ``n_epochs`` None: auto."""
    if n_epochs is not None and not 1 <= n_epochs <= 50:
        raise BadInputError(f"n_epochs must be between 1 and 50, not {n_epochs}")
    if suffix is not None and len(suffix) > 64:
        raise BadInputError(f"suffix is {len(suffix)} characters; the API allows 64")
    # The SDK marks ``hyperparameters`` deprecated in favour of ``method``.
    method = {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": n_epochs}}}
    if n_epochs is None:
        method = {"type": "supervised"}
    optional = {"suffix": suffix, "seed": seed}
    with _Api(settings, provider) as api:
        reports = [validate_chat_file(training_file)]
        try:
            if validation_file is not None:
                reports.append(validate_chat_file(validation_file, minimum=1))
            file_ids = [
                api(
                    api.client.files.create,
                    file=(report.source.name, report.path.read_bytes()),
                    purpose="fine-tune",
                ).id
                for report in reports
            ]
        finally:
            for report in reports:  # the chat-format copies, not the user's files
                if report.path != report.source:
                    report.path.unlink(missing_ok=True)
        job = api(
            api.client.fine_tuning.jobs.create,
            model=base_model,
            training_file=file_ids[0],
            method=method,
            **({"validation_file": file_ids[1]} if len(file_ids) > 1 else {}),
            **{name: value for name, value in optional.items() if value is not None},
        )
    return _info(provider, job)


def job_status(settings: Settings, provider: str, job_id: str, events: int = 10) -> JobInfo:
    """A job's state, result and its ``events`` most recent events."""
    with _Api(settings, provider) as api:
        job = api(api.client.fine_tuning.jobs.retrieve, _job_id(job_id))
        page = api(api.client.fine_tuning.jobs.list_events, job.id, limit=events)
    return _info(provider, job, page.data)


def list_jobs(settings: Settings, provider: str, limit: int = 20) -> list[JobInfo]:
    """The most recent jobs, newest first (one page; no events)."""
    if not 1 <= limit <= 100:
        raise BadInputError(f"limit must be between 1 and 100, not {limit}")
    with _Api(settings, provider) as api:
        # .data, not iteration: iterating a page goes on to fetch every following page.
        page = api(api.client.fine_tuning.jobs.list, limit=limit)
    return [_info(provider, job) for job in page.data]


def cancel_job(settings: Settings, provider: str, job_id: str) -> JobInfo:
    """Stop a job that has not finished."""
    with _Api(settings, provider) as api:
        return _info(provider, api(api.client.fine_tuning.jobs.cancel, _job_id(job_id)))
