"""SetFit's first stage on sentence-transformers' own trainer: a sentence encoder learns to
put texts of one label close together and texts of different labels apart.

The ``setfit`` package (1.2.0) installs beside the locked versions, but it saves its head
with joblib (a pickle) and adds two packages for what is one loss and one trainer call
here; the head is fitted by ``fondasi.backends.heads`` like the other head methods.
"""

from __future__ import annotations

import importlib
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from fondasi.extras import quiet_transformers

if TYPE_CHECKING:
    from fondasi.tune.options import TuneOptions


def train_encoder(
    base: Path,
    out: Path,
    pairs: list[tuple[str, str, float]],
    options: TuneOptions,
    *,
    epochs: float,
    rate: float,
    progress: bool,
) -> int:
    """Tune the encoder in ``base`` on labelled pairs and save it (safetensors) to ``out``;
    the number of its parameters."""
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    # The losses module is untyped where the package root is typed: looked up by name.
    losses = importlib.import_module("sentence_transformers.sentence_transformer.losses")
    from transformers import PrinterCallback, set_seed

    from fondasi.tune.progress import RichProgress

    quiet_transformers()
    set_seed(options.seed)
    # A folder without modules.json gets mean pooling, with a warning that says just that.
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder = SentenceTransformer(str(base), device=device, local_files_only=True)
    # Its model card's widget examples print a tqdm bar and draw from the global random
    # state; fondasi writes its own model card, so they are skipped.
    encoder.model_card_data.set_widget_examples = lambda dataset: None  # type: ignore[method-assign]
    encoder.max_seq_length = min(options.max_length, encoder.max_seq_length or options.max_length)
    first, second, same = zip(*pairs, strict=True) if pairs else ((), (), ())
    dataset = Dataset.from_dict(
        {"sentence1": list(first), "sentence2": list(second), "label": list(same)}
    )
    with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
        arguments = SentenceTransformerTrainingArguments(
            output_dir=scratch,
            num_train_epochs=epochs,
            max_steps=options.max_steps or -1,
            learning_rate=rate,
            per_device_train_batch_size=options.batch_size,
            warmup_steps=0,
            save_strategy="no",
            logging_steps=10,
            report_to=[],
            disable_tqdm=True,
            seed=options.seed,
            use_cpu=device == "cpu",
        )
        trainer = SentenceTransformerTrainer(
            model=encoder,
            args=arguments,
            train_dataset=dataset,
            # SetFit's loss: the cosine of a pair regressed to 1 (same label) or 0.
            loss=losses.CosineSimilarityLoss(encoder),
            callbacks=[RichProgress()] if progress else [],
        )
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    encoder.save(str(out), safe_serialization=True)
    return sum(p.numel() for p in encoder.parameters())
