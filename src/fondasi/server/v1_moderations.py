"""``POST /v1/moderations``, answered by fondasi's guard filters in OpenAI's shape.

What the filters measure, mapped onto OpenAI's category names:

    toxicity lexicon ``insult``, ``severe`` (profanity), ``mild``, cued ``ambiguous``
    words and the toxicity classifier        -> harassment
    lexicon ``slur``                         -> hate (and harassment)
    lexicon ``threat`` ("gue bunuh lo")      -> violence and harassment/threatening

The filters measure nothing for hate/threatening, illicit, illicit/violent, self-harm (and
its intent and instructions), sexual, sexual/minors and violence/graphic: those are always
``false`` with score 0. A category is flagged at the toxicity filter's threshold (the
server's guard policy's, when it sets one). Prompt injection and personal data have no
OpenAI category; each result carries them in a ``fondasi`` field (injection score, PII types).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from fondasi.server.auth import Caller, state_of
from fondasi.server.generation import bad
from fondasi.server.schemas import ModerationRequest
from fondasi.server.state import MODERATION_MODEL

router = APIRouter()
MODEL = MODERATION_MODEL
MAX_INPUTS = 256
CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
# The toxicity filter's finding kinds (the lexicon category, or the classifier) -> OpenAI's.
MEASURED = {
    "insult": ("harassment",),
    "severe": ("harassment",),
    "mild": ("harassment",),
    "ambiguous": ("harassment",),
    "classifier": ("harassment",),
    "slur": ("hate", "harassment"),
    "threat": ("violence", "harassment/threatening", "harassment"),
    # The classifier's categories ("hate (classifier)"): SARA hate is OpenAI's "hate".
    "hate": ("hate", "harassment"),
    "sexual": ("sexual",),
    "self-harm": ("self-harm",),
}


def _texts(raw: str | list[str] | list[dict[str, Any]]) -> list[str]:
    items = [raw] if isinstance(raw, str) else raw
    if not items:
        raise bad("input is empty: send a text or a list of texts", "input")
    if len(items) > MAX_INPUTS:
        raise bad(f"{len(items)} inputs; send at most {MAX_INPUTS} per request", "input")
    texts: list[str] = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            if item.get("type") != "text":
                raise bad(
                    f"input[{index}]: {item.get('type')!r} is not moderated (text only)",
                    f"input.{index}",
                    "unsupported_value",
                )
            texts.append(str(item.get("text") or ""))
        else:
            texts.append(str(item))
    return texts


def _policy(request: Request) -> Any:
    """The moderation policy (built once per app): every filter flags, every score is kept."""
    app_state = request.app.state
    if getattr(app_state, "moderation", None) is None:
        from fondasi.guard import Policy, PolicyConfig

        served = state_of(request).policy
        base = served.config if served is not None else PolicyConfig()
        config = PolicyConfig(
            input={"toxicity": "flag", "injection": "flag", "pii": "flag"},
            thresholds={"toxicity": 0.0, "injection": 0.0},
            classifier=base.classifier,
            embedding_model=base.embedding_model,
            pii_types=base.pii_types,
        )
        from fondasi.guard.toxicity import ToxicityFilter

        line = base.thresholds.get("toxicity", ToxicityFilter.threshold)
        app_state.moderation = (Policy("moderation", config, state_of(request).settings), line)
    return app_state.moderation


def moderate(policy: Any, line: float, text: str) -> dict[str, Any]:
    """One result: flags and scores per OpenAI category, plus what has no category."""
    scores = dict.fromkeys(CATEGORIES, 0.0)
    injection, personal = 0.0, set()
    for finding in policy.scan(text, "input") if text.strip() else []:
        if finding.filter == "toxicity":
            kind = finding.detail.split(" ")[0]
            for category in MEASURED.get(kind, ("harassment",)):
                scores[category] = max(scores[category], round(finding.score, 4))
        elif finding.filter == "injection":
            injection = max(injection, finding.score)
        elif finding.filter == "pii":
            personal.add(finding.type)
    flags = {name: score >= line and name in _MAPPED for name, score in scores.items()}
    return {
        "flagged": any(flags.values()),
        "categories": flags,
        "category_scores": scores,
        "category_applied_input_types": {name: ["text"] for name in CATEGORIES},
        "fondasi": {"prompt_injection": round(injection, 4), "personal_data": sorted(personal)},
    }


_MAPPED = {name for names in MEASURED.values() for name in names}


@router.post("/v1/moderations")
async def moderations(body: ModerationRequest, request: Request, key: Caller) -> Any:
    """Flags and scores for texts (OpenAI moderations) from the guard's filters."""
    state, call = state_of(request), request.state.call
    call.model = call.version = body.model or MODEL
    texts = _texts(body.input)
    if state.config.log_text:
        call.prompt_text = state.redact("\n".join(texts))
    policy, line = _policy(request)

    def work() -> list[dict[str, Any]]:
        return [moderate(policy, line, text) for text in texts]

    call.first()
    results = await state.runner.run(work, timeout=state.config.timeout_s)
    if state.config.log_text:
        flagged = [",".join(k for k, v in r["categories"].items() if v) or "none" for r in results]
        call.response_text = "\n".join(flagged)
    return {"id": call.id, "model": call.model, "results": results}
