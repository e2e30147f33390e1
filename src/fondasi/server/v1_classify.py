"""``POST /v1/classify``: labels for texts, in the format of vLLM's classification API.

Fine-tuned classifiers (``tuned:DIR``) and ready ones answer with their own labels.
Embedding and language models classify zero-shot against the request's ``labels`` (a
fondasi extension: names, or names -> descriptions), or few-shot from its ``examples``
(``{text, label}`` rows), as ``Model.classify`` does.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from fondasi.backends.base import Capability
from fondasi.errors import FondasiError
from fondasi.server.auth import Caller, state_of
from fondasi.server.generation import bad
from fondasi.server.schemas import ClassifyRequest
from fondasi.server.serving import note_guard, serve_model
from fondasi.server.v1_embeddings import count_tokens, input_texts
from fondasi.types import Label

router = APIRouter()
# What a model needs to classify: its own head, or candidate labels for the others.
ZERO_SHOT = (Capability.EMBED, Capability.GENERATE)


def _classes(ranked: list[list[Label]], labels: list[str] | dict[str, str] | None) -> list[str]:
    """One fixed class order for every row's ``probs``: the request's or the head's."""
    if labels:
        return list(labels)
    order: list[str] = []
    for row in ranked:
        order.extend(one.label for one in row if one.label not in order)
    return order


def _examples(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Few-shot examples as ``{text, label}``, or a 400 naming the first bad one."""
    for number, row in enumerate(rows, 1):
        text, label = row.get("text"), row.get("label")
        if not isinstance(text, str) or not text.strip() or not isinstance(label, str):
            raise bad(f"example {number}: give a non-empty 'text' and its 'label'", "examples")
        if not label.strip():
            raise bad(f"example {number}: the label is empty", "examples")
    return [{"text": row["text"], "label": row["label"]} for row in rows]


def _labels_of(shots: list[dict[str, str]] | None) -> list[str]:
    """The examples' labels in first-seen order."""
    return list(dict.fromkeys(row["label"] for row in shots or []))


def _row(index: int, ranked: list[Label], classes: list[str]) -> dict[str, Any]:
    scores = {one.label: one.score for one in ranked}
    return {
        "index": index,
        "label": ranked[0].label if ranked else None,
        "probs": [scores.get(name, 0.0) for name in classes],
        "num_classes": len(classes),
        "labels": [{"label": one.label, "score": one.score} for one in ranked],
    }


@router.post("/v1/classify")
@router.post("/classify", include_in_schema=False)  # vLLM serves it without the prefix
async def classify(body: ClassifyRequest, request: Request, key: Caller) -> Any:
    """Ranked labels per text from a classifier, or zero-shot against ``labels``."""
    state, call = state_of(request), request.state.call
    call.model = body.model
    texts = input_texts(body.input)
    if isinstance(body.labels, list) and len(set(body.labels)) != len(body.labels):
        raise bad("labels must be distinct", "labels")
    if body.labels is not None and (
        len(body.labels) < 2 or any(not str(name).strip() for name in body.labels)
    ):
        raise bad("labels: give at least two non-empty label names", "labels")
    served, _ = await serve_model(state, call, body.model, key)
    own = served.handle.labels
    if not (served.can(Capability.CLASSIFY) or any(served.can(c) for c in ZERO_SHOT)):
        raise bad(f"{served.ref} does not classify text: use a classifier", "model")
    if body.labels is None and not own and not body.examples:
        raise bad(
            f"{served.ref} has no labels of its own: send the candidates in 'labels'", "labels"
        )
    shots = _examples(body.examples) if body.examples else None
    if shots and own:
        raise bad(f"{served.ref} classifies with its own labels; it takes no examples", "examples")
    if state.config.log_text:
        call.prompt_text = state.redact("\n".join(texts))
    model = served.handle
    async with served.lane.slot():
        try:
            ranked = await state.runner.run(
                lambda: model.classify(texts, body.labels, shots=shots),
                timeout=state.config.timeout_s,
            )
        except FondasiError as exc:
            note_guard(call, exc)
            raise
    call.first()
    tokens = await state.runner.run(count_tokens, served.handle, texts, waiting=True)
    call.prompt_tokens = tokens
    if state.config.log_text:
        call.response_text = "\n".join(row[0].label for row in ranked if row)
    classes = _classes(ranked, body.labels or own or _labels_of(shots))
    return {
        "id": call.id,
        "object": "list",
        "created": int(call.ts),
        "model": call.version,
        "classes": classes,
        "data": [_row(i, row, classes) for i, row in enumerate(ranked)],
        "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
    }
