"""A local server speaking OpenAI's documented files and fine-tuning jobs wire format.

Uploads are multipart (``POST /v1/files``) and must be JSONL whose lines are chat rows, so a
test proves the upload carried the content. A job advances one step on each GET:
validating_files, then running, then succeeded with ``ft:BASE:fondasi:SUFFIX:abc123``.
Base model ``missing`` does not exist (400); ``echo-key`` answers 400 with the caller's
Authorization header in the message, as a careless server might.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from .openai_server import KEY
from .serve import serve

STEPS = ["validating_files", "running", "succeeded"]


@dataclass
class FinetuneState:
    """What the fake holds: uploaded files (their bytes), jobs, events and GET counts."""

    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=itertools.count)


def _error(status: int, message: str, code: str, param: str | None = None) -> Response:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return JSONResponse({"error": error}, status_code=status)


def _form(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """A multipart/form-data body as {name: (filename, bytes)}, read with the stdlib."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    parts: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        parts[str(name)] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return parts


def _chat_jsonl(content: bytes) -> str | None:
    """Why the bytes are not chat JSONL, or None when they are."""
    try:
        lines = content.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return "the file is not UTF-8"
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            return f"line {number} is not JSON"
        if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
            return f"line {number} has no messages"
    return None if lines else "the file is empty"


def build_app(state: FinetuneState) -> FastAPI:
    """The FastAPI app behind the fake."""
    app = FastAPI()

    def refused(request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        return None

    def event(job_id: str, message: str) -> None:
        created = int(time.time())
        state.events[job_id].append(
            {
                "object": "fine_tuning.job.event",
                "id": f"ftevent-{next(state.ids)}",
                "created_at": created,
                "level": "info",
                "message": message,
                "type": "message",
            }
        )

    @app.post("/v1/files")
    async def upload(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        form = _form(request.headers.get("content-type", ""), await request.body())
        name, content = form.get("file", (None, b""))
        purpose = form.get("purpose", (None, b""))[1].decode()
        if purpose != "fine-tune":
            return _error(400, f"Invalid purpose {purpose!r}", "invalid_purpose", "purpose")
        if (problem := _chat_jsonl(content)) is not None:
            return _error(400, f"Invalid file format for Fine-Tuning API: {problem}", "bad", "file")
        file_id = f"file-{next(state.ids)}"
        record = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": name or "upload.jsonl",
            "purpose": purpose,
            "status": "processed",
        }
        state.files[file_id] = {**record, "content": content}
        return JSONResponse(record)

    @app.post("/v1/fine_tuning/jobs")
    async def create(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        body = await request.json()
        state.bodies.append(body)
        model = body["model"]
        if model == "missing":
            message = f"Model {model} is not available for fine-tuning or does not exist."
            return _error(400, message, "model_not_available", "model")
        if model == "echo-key":
            said = request.headers["authorization"]
            return _error(400, f"Model not allowed for {said}", "model_not_available", "model")
        for param in ("training_file", "validation_file"):
            if body.get(param) is not None and body[param] not in state.files:
                return _error(400, f"invalid {param}: {body[param]}", "invalid_file", param)
        method = body.get("method") or {"type": "supervised"}
        hyper = (method.get("supervised") or {}).get("hyperparameters") or {}
        hyper = {
            "n_epochs": "auto",
            "batch_size": "auto",
            **body.get("hyperparameters", {}),
            **hyper,
        }
        job_id = f"ftjob-{next(state.ids)}"
        state.jobs[job_id] = {
            "object": "fine_tuning.job",
            "id": job_id,
            "model": model,
            "created_at": int(time.time()),
            "finished_at": None,
            "fine_tuned_model": None,
            "organization_id": "org-fondasi",
            "result_files": [],
            "status": STEPS[0],
            "training_file": body["training_file"],
            "validation_file": body.get("validation_file"),
            "hyperparameters": hyper,
            "method": {"type": method["type"], method["type"]: {"hyperparameters": hyper}},
            "trained_tokens": None,
            "error": None,
            "seed": body.get("seed") or 42,
            "suffix": body.get("suffix"),
        }
        state.events[job_id] = []
        event(job_id, f"Created fine-tuning job: {job_id}")
        return JSONResponse(state.jobs[job_id])

    @app.get("/v1/fine_tuning/jobs")
    async def listing(request: Request, limit: int = 20, after: str | None = None) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        jobs = list(reversed(state.jobs.values()))
        if after is not None:
            jobs = jobs[[job["id"] for job in jobs].index(after) + 1 :]
        page = jobs[:limit]
        return JSONResponse({"object": "list", "data": page, "has_more": len(jobs) > limit})

    @app.get("/v1/fine_tuning/jobs/{job_id}")
    async def retrieve(request: Request, job_id: str) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        if job_id not in state.jobs:
            return _error(404, f"No such fine-tuning job: {job_id}", "not_found", "id")
        job = state.jobs[job_id]
        if job["status"] in STEPS[:-1]:
            job["status"] = STEPS[STEPS.index(job["status"]) + 1]
            event(job_id, f"Job status: {job['status']}")
            if job["status"] == "succeeded":
                suffix = job["suffix"] or ""
                job["fine_tuned_model"] = f"ft:{job['model']}:fondasi:{suffix}:abc123"
                job["finished_at"] = int(time.time())
                content = state.files[job["training_file"]]["content"]
                epochs = job["hyperparameters"]["n_epochs"]
                epochs = epochs if isinstance(epochs, int) else 3
                job["trained_tokens"] = len(content.split()) * epochs
                event(job_id, "The job has successfully completed")
        return JSONResponse(job)

    @app.get("/v1/fine_tuning/jobs/{job_id}/events")
    async def events(request: Request, job_id: str, limit: int = 20) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        if job_id not in state.events:
            return _error(404, f"No such fine-tuning job: {job_id}", "not_found", "id")
        newest = list(reversed(state.events[job_id]))
        page = newest[:limit]
        return JSONResponse({"object": "list", "data": page, "has_more": len(newest) > limit})

    @app.post("/v1/fine_tuning/jobs/{job_id}/cancel")
    async def cancel(request: Request, job_id: str) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        if job_id not in state.jobs:
            return _error(404, f"No such fine-tuning job: {job_id}", "not_found", "id")
        job = state.jobs[job_id]
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return _error(400, f"Job {job_id} has already finished", "invalid_state")
        job["status"] = "cancelled"
        job["finished_at"] = int(time.time())
        event(job_id, "Job cancelled")
        return JSONResponse(job)

    return app


@contextmanager
def running(state: FinetuneState) -> Iterator[str]:
    """Serve the fake on 127.0.0.1 in a thread; yields its base URL (with /v1)."""
    with serve(build_app(state), "/v1") as url:
        yield url
