"""``POST /v1/embeddings`` (micro-batched, float or base64) and ``POST /v1/images/generations``."""

from __future__ import annotations

import base64
import io
from typing import Any

from fastapi import APIRouter, Request

from fondasi.backends.base import Capability
from fondasi.errors import FondasiError
from fondasi.models.contract import ModelHandle
from fondasi.server.auth import Caller, state_of
from fondasi.server.generation import bad
from fondasi.server.pool import Served
from fondasi.server.schemas import EmbeddingRequest, ImageRequest
from fondasi.server.serving import note_guard, serve_model
from fondasi.types import ImageOptions

router = APIRouter()
MAX_INPUTS = 2048


def input_texts(raw: str | list[str] | list[int] | list[list[int]]) -> list[str]:
    """The ``input`` field as a list of non-empty texts, or a 400 saying what is wrong."""
    texts = [raw] if isinstance(raw, str) else raw
    if not texts:
        raise bad("input is empty: send a text or a list of texts", "input")
    if not all(isinstance(text, str) for text in texts):
        raise bad("token arrays are not served: send text", "input", "unsupported_value")
    if len(texts) > MAX_INPUTS:
        raise bad(f"{len(texts)} inputs; send at most {MAX_INPUTS} per request", "input")
    if any(not text.strip() for text in texts):  # type: ignore[union-attr]
        raise bad("every input must be a non-empty string", "input")
    return [str(text) for text in texts]


def count_tokens(model: ModelHandle, texts: list[str]) -> int:
    """Tokens the model's tokenizer makes of the texts (words when it has none)."""
    return sum(model.count_tokens(text) for text in texts)


def _shortened(served: Served, wanted: int | None) -> int | None:
    """The length to cut vectors to, or None; models not trained for it refuse."""
    card = served.handle.card
    dimension = served.handle.dimension or (card.embedding_dim if card else None)
    if wanted is None or wanted == dimension:
        return None
    if card is not None and card.matryoshka and dimension and wanted < dimension:
        return wanted
    why = "it was not trained to shorten them (Matryoshka)"
    if card is not None and card.matryoshka:
        why = "it can only shorten them"
    raise bad(
        f"{served.ref} makes {dimension}-dimensional vectors; it cannot make {wanted}: {why}",
        "dimensions",
        "unsupported_value",
    )


@router.post("/v1/embeddings")
async def embeddings(body: EmbeddingRequest, request: Request, key: Caller) -> Any:
    """Vectors for texts; concurrent requests share one encoder batch."""
    state, call = state_of(request), request.state.call
    call.model = body.model
    texts = input_texts(body.input)
    served, _ = await serve_model(state, call, body.model, key)
    if not served.can(Capability.EMBED):
        raise bad(f"{served.ref} does not make embeddings: use an embedding model", "model")
    shorter = _shortened(served, body.dimensions)
    if state.config.log_text:
        call.prompt_text = state.redact("\n".join(texts))
    batcher = served.batcher(body.input_type, state.config)
    async with served.lane.slot():
        call.first()
        vectors = await state.runner.run(
            batcher.embed, texts, timeout=state.config.timeout_s, waiting=True
        )
    tokens = await state.runner.run(count_tokens, served.handle, texts, waiting=True)
    call.prompt_tokens = tokens
    import numpy as np

    rows = np.asarray(vectors, dtype="<f4")
    if shorter is not None:  # a Matryoshka prefix, made unit length again
        if shorter > rows.shape[1]:
            raise bad(f"{served.ref} made {rows.shape[1]}-dimensional vectors", "dimensions")
        rows = rows[:, :shorter]
        rows = rows / np.clip(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12, None)
    if body.encoding_format == "base64":
        data: list[Any] = [base64.b64encode(row.tobytes()).decode() for row in rows]
    else:
        data = rows.tolist()
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(data)],
        "model": call.version,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _size(size: str | None) -> dict[str, int]:
    if size in (None, "auto"):
        return {}
    width, height = (int(part) for part in size.split("x"))
    return {"width": width, "height": height}


@router.post("/v1/images/generations")
async def images(body: ImageRequest, request: Request, key: Caller) -> Any:
    """Draw images with a text-to-image model (PNG, base64 or a data URL)."""
    state, call = state_of(request), request.state.call
    call.model = body.model
    served, _ = await serve_model(state, call, body.model, key)
    if not served.can(Capability.IMAGE_GENERATE):
        raise bad(f"{served.ref} does not draw images", "model")
    try:
        opts = ImageOptions(count=body.n or 1, **_size(body.size))
    except ValueError as exc:
        raise bad(f"size {body.size!r}: {exc}", "size") from None
    if state.config.log_text:
        call.prompt_text = state.redact(body.prompt)
    async with served.lane.slot():
        try:
            pictures = await state.runner.run(
                lambda: served.handle.imagine(body.prompt, options=opts),
                timeout=state.config.timeout_s,
            )
        except FondasiError as exc:
            note_guard(call, exc)
            raise
    call.first()
    data = []
    for picture in pictures:
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        encoded = base64.b64encode(buffer.getvalue()).decode()
        if body.response_format == "url":
            data.append({"url": "data:image/png;base64," + encoded})
        else:
            data.append({"b64_json": encoded})
    return {"created": int(call.ts), "data": data}
