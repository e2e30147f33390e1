"""``POST /v1/feedback``: thumbs, a score, a comment, a correction or a label on one response."""

from __future__ import annotations

import secrets
import time
from typing import Any

from fastapi import APIRouter, Request

from fondasi.monitor.records import FeedbackRecord
from fondasi.server.auth import Caller, state_of
from fondasi.server.errors import APIError
from fondasi.server.schemas import FeedbackRequest

router = APIRouter()
RATINGS = {"up": 1, "down": -1, 1: 1, -1: -1}


@router.post("/v1/feedback")
async def feedback(body: FeedbackRequest, request: Request, key: Caller) -> Any:
    """Record a verdict on a response this server gave (by its ``id``)."""
    state = state_of(request)
    given = [body.rating, body.score, body.comment, body.correction, body.label]
    if all(value is None for value in given):
        raise APIError(
            400,
            "give at least one of rating, score, comment, correction or label",
            code="invalid_value",
        )
    if not state.knows(body.response_id):
        raise APIError(
            404,
            f"no response with id {body.response_id!r} was answered here",
            code="response_not_found",
            param="response_id",
        )
    record = FeedbackRecord(
        response_id=body.response_id,
        ts=time.time(),
        key_id=key.id if key else None,
        rating=RATINGS[body.rating] if body.rating is not None else None,
        score=body.score,
        comment=body.comment,
        correction=body.correction,
        label=body.label,
    )
    state.writer.submit(record)
    state.metrics.feedback.labels(
        "up" if record.rating == 1 else "down" if record.rating == -1 else "none"
    ).inc()
    return {
        "id": "fb-" + secrets.token_hex(8),
        "object": "feedback",
        "response_id": body.response_id,
        "rating": record.rating,
        "score": record.score,
    }
