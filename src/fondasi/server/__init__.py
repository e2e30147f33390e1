"""The OpenAI-compatible server: ``fondasi serve``.

app.py          create_app / run: lifespan, middleware, routers
v1_chat.py      /v1/chat/completions (SSE streaming, tools, structured output, logprobs)
v1_completions  /v1/completions (echo + logprobs)
v1_responses    /v1/responses
v1_moderations  /v1/moderations, answered by the guard filters
v1_embeddings   /v1/embeddings (micro-batched), /v1/images/generations
v1_classify.py  /v1/classify (vLLM's format): tuned classifiers, zero-shot labels
v1_audio.py     /v1/audio/transcriptions (multipart uploads): speech to text
v1_models.py    /v1/models
feedback.py     /v1/feedback
metrics.py      /metrics (Prometheus), labels bounded to served names
tracing.py      OTLP trace export (when OTEL_EXPORTER_OTLP_ENDPOINT is set), JSON log lines
admin.py        /admin/aliases: model versions, canaries, rollbacks
recorder.py     one log row per model request, after its last byte
limits.py       lanes (bounded queues -> 429), rate limits, body size (413)
redis_limits    per-key rate limits in Redis, held across workers and replicas
processes.py    --workers N: N whole servers on one socket under uvicorn's supervisor
runner.py       model calls on worker threads; streams across threads
"""

from fondasi.extras import require

for _module in ("fastapi", "uvicorn"):  # without the serve extra: one clear error naming it
    require(_module, "serve", "fondasi serve")

from fondasi.server.app import build_state, create_app, run  # noqa: E402
from fondasi.server.config import ServeConfig  # noqa: E402

__all__ = ["ServeConfig", "build_state", "create_app", "run"]
