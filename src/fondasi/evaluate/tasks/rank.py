"""Retrieval with embeddings (queries against a corpus) and image classification (top-k)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fondasi.backends.base import Capability
from fondasi.errors import BadInputError
from fondasi.evaluate.cache import cache_key
from fondasi.evaluate.ranking import ndcg_one, relevance, top_hit
from fondasi.evaluate.tasks import Context, Output, Predictor, Task, register

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from fondasi.evaluate.config import CandidateSpec
    from fondasi.evaluate.datasets import Example
    from fondasi.models.contract import ModelHandle

MAX_RANKED = 100  # documents kept per query: enough for any @k a report shows


class RetrievePredictor(Predictor):
    """Embeds the corpus once (as passages), then each batch of queries."""

    def __init__(self, candidate: CandidateSpec, context: Context) -> None:
        if candidate.template or candidate.shots:
            raise BadInputError("retrieval candidates take no template or shots")
        self.context = context
        self.ids = [str(doc.fields["id"]) for doc in context.corpus]
        self.vectors: npt.NDArray[np.float32] | None = None

    def fingerprint(self) -> dict[str, Any]:
        return {"corpus": cache_key([doc.digest for doc in self.context.corpus])}

    def setup(self, model: ModelHandle) -> None:
        if not model.can(Capability.EMBED):
            raise BadInputError(f"{model.id} cannot embed text, which retrieval needs")

    def predict(self, model: ModelHandle, examples: Sequence[Example]) -> list[Output]:
        import numpy as np

        if self.vectors is None:
            # Lazily, so a fully cached run never embeds the corpus.
            texts = [str(doc.fields["text"]) for doc in self.context.corpus]
            self.vectors = model.embed(texts, "passage")
        queries = model.embed([str(e.fields["query"]) for e in examples], "query")
        similarity = queries @ self.vectors.T
        top = min(MAX_RANKED, len(self.ids))
        order = np.argsort(-similarity, axis=1, kind="stable")[:, :top]
        return [Output([self.ids[i] for i in row]) for row in order]


@register
class Retrieval(Task):
    """Queries against a corpus, judged by relevant document ids."""

    name = "retrieval"
    summary = "queries against a corpus (nDCG@k, recall@k, MRR)"
    needed = ("query", "relevant")
    input_field = "query"
    reference_field = "relevant"
    default_metrics = ("ndcg@10", "recall@5", "mrr")
    corpus_fields = ("id", "text")

    def prepare(self, example: Example) -> Example:
        relevant = relevance(example.fields["relevant"])
        if not relevant:
            raise BadInputError(f"query {example.index + 1}: no relevant document ids")
        fields = {"query": str(example.fields["query"]), "relevant": relevant}
        return type(example)(example.index, example.id, fields)

    def predictor(self, candidate: CandidateSpec, context: Context) -> Predictor:
        if not context.corpus:
            raise BadInputError("retrieval needs a corpus: data.corpus (fields id, text)")
        return RetrievePredictor(candidate, context)

    def example_score(self, reference: Any, output: Any) -> float:
        return ndcg_one(reference, output, 10) if output is not None else 0.0

    def shown(self, value: Any) -> str:
        if isinstance(value, dict):
            return ", ".join(value)
        return super().shown(value)


def load_image(ref: str, folder: str) -> Any:
    """An image path relative to the data file, or ``skimage:NAME`` (scikit-image's photos)."""
    if ref.startswith("skimage:"):
        from fondasi.extras import require

        data = require("skimage.data", "eval", "the scikit-image sample photos")
        name = ref.removeprefix("skimage:")
        if not name.isidentifier() or not hasattr(data, name):
            raise BadInputError(f"scikit-image has no sample photo {name!r}")
        image = getattr(data, name)()
        if image.ndim == 2:  # greyscale photos: three equal channels for RGB models
            import numpy as np

            image = np.stack([image] * 3, axis=-1)
        return image[..., :3]
    path = Path(ref).expanduser()
    path = path if path.is_absolute() else Path(folder) / path
    if not path.is_file():
        raise BadInputError(f"no image file {path}")
    return str(path)


class ImagePredictor(Predictor):
    """Top-5 classes per image; labels go to zero-shot models (CLIP) when the run has them."""

    def __init__(self, candidate: CandidateSpec, context: Context) -> None:
        if candidate.template or candidate.shots:
            raise BadInputError("image classification candidates take no template or shots")
        self.context = context

    def fingerprint(self) -> dict[str, Any]:
        return {"labels": self.context.labels if self.context.config.labels else None}

    def setup(self, model: ModelHandle) -> None:
        if not model.can(Capability.IMAGE_CLASSIFY):
            raise BadInputError(f"{model.id} cannot classify images")

    def predict(self, model: ModelHandle, examples: Sequence[Example]) -> list[Output]:
        images = [load_image(str(e.fields["image"]), self.context.data_folder) for e in examples]
        labels = self.context.labels if self.context.config.labels else None
        rankings = model.classify_image(images, labels, top_k=5)
        return [Output([label.label for label in ranking]) for ranking in rankings]


@register
class ImageClassification(Task):
    """A class per image; references may list synonyms as ``cat|tabby``."""

    name = "image-classification"
    summary = "a class per image (top-1, top-5)"
    needed = ("image", "label")
    input_field = "image"
    reference_field = "label"
    default_metrics = ("top1", "top5")

    def predictor(self, candidate: CandidateSpec, context: Context) -> Predictor:
        return ImagePredictor(candidate, context)

    def example_score(self, reference: Any, output: Any) -> float:
        return float(output is not None and top_hit(reference, output, 1))
