"""Loading one model: resolve a ref to a spec, find the backend that claims it, load it.

A hosted API's backend gets fondasi's retries and circuit breaker here, once, whatever its
adapter.
"""

from __future__ import annotations

from typing import Any

from fondasi.backends.onnx_embed import OnnxEmbedderFactory, Variant, onnx_spec
from fondasi.backends.registry import Registry
from fondasi.backends.remote import Resilient, RetryPolicy
from fondasi.backends.resolve import resolve
from fondasi.catalog.loader import Catalog
from fondasi.errors import BadInputError, FondasiError
from fondasi.models.handle import Model
from fondasi.settings import Settings


def load(ref: str, settings: Settings | None = None, catalog: Catalog | None = None) -> Model:
    """Resolve ``ref`` (a catalog id or hf:/gguf:/onnx: path) and load it."""
    settings = settings or Settings.load()
    catalog = catalog or Catalog.load(settings.card_dirs())
    spec = resolve(ref, catalog, settings)
    factory = Registry.from_entry_points().find(spec)
    try:
        backend = factory.load(spec, settings)
    except FondasiError:
        raise
    except Exception as exc:
        # Third-party loaders raise many types for corrupt or truncated weights; the
        # user needs one clear line naming the model and the file, not a traceback.
        raise BadInputError(
            f"{spec.id}: cannot load {spec.path} with {factory.name}: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    endpoint = getattr(backend, "remote_endpoint", None)
    if endpoint:
        # Every hosted API gets the same retries and circuit breaker, whatever its adapter.
        backend = Resilient.around(backend, endpoint, RetryPolicy(max_retries=settings.retries))
    return Model(spec, backend, factory.name, settings.hardware_usd_per_hour, settings)


def embedder_for(settings: Settings | None) -> Any:
    """The settings' embedding model's ``embed``, for k-NN example selection; each text is
    embedded once (k-NN compares every input with the same pool of examples)."""
    settings = settings or Settings.load()
    return memoised(load(settings.embedding_model, settings).embed)


def memoised(embed: Any, most: int = 20_000) -> Any:
    """``embed`` keeping each text's vector, the oldest forgotten past ``most`` texts."""
    import numpy as np

    kept: dict[str, Any] = {}

    def cached(texts: str | list[str]) -> Any:
        batch = [texts] if isinstance(texts, str) else list(texts)
        missing = list(dict.fromkeys(text for text in batch if text not in kept))
        if missing:
            kept.update(zip(missing, embed(missing), strict=True))
        rows = np.stack([kept[text] for text in batch])
        while len(kept) > most:
            kept.pop(next(iter(kept)))
        return rows

    return cached


def onnx_model(
    ref: str,
    settings: Settings | None = None,
    *,
    variant: Variant = "fp32",
    catalog: Catalog | None = None,
) -> Model:
    """An embedding model on the ONNX fast path (fp32 or int8), for a catalog id or an
    ad-hoc id (``hf:``, ``onnx:``)."""
    settings = settings or Settings.load()
    spec = onnx_spec(ref, settings, variant=variant, catalog=catalog)
    factory = OnnxEmbedderFactory()
    backend = factory.load(spec, settings)
    return Model(spec, backend, factory.name, settings.hardware_usd_per_hour, settings)
