"""Beside every tuning result: the classical baseline, and a model card."""

from __future__ import annotations

from typing import Any

from fondasi.extras import require


def baseline(train: list[dict[str, Any]], dev: list[dict[str, Any]]) -> dict[str, float]:
    """TF-IDF + logistic regression on the same split: what tuning has to beat."""
    require("sklearn", "local", "the tuning report's baseline")  # the extra, named
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline

    pipeline = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
        LogisticRegression(max_iter=2000),
    )
    pipeline.fit([str(r["text"]) for r in train], [str(r["label"]) for r in train])
    guesses = pipeline.predict([str(r["text"]) for r in dev])
    truth = [str(r["label"]) for r in dev]
    return {
        "accuracy": float(accuracy_score(truth, guesses)),
        "macro_f1": float(f1_score(truth, guesses, average="macro", zero_division=0)),
    }


def model_card(meta: dict[str, Any]) -> str:
    """A README.md for the tuned model: what it is, how it was made, how well it does."""
    lines = [
        f"# {meta['method']} fine-tune of {meta['base']}",
        "",
        f"Made by fondasi {meta['fondasi']} on {meta['created']}. Task: {meta['task']}.",
        "",
        "| | |",
        "|---|---|",
        f"| base model | `{meta['base']}` |",
        f"| method | {meta['method']} |",
        f"| trainable parameters | {meta['trainable']:,} of {meta['total']:,} "
        f"({meta['trainable'] / max(meta['total'], 1):.2%}) |",
        f"| training time | {meta['seconds']:.1f} s |",
        f"| peak RAM | {meta['peak_ram_mb']:.0f} MB |",
        f"| data SHA-256 | `{meta['data_sha256'][:16]}…` |",
    ]
    lines += [f"| {key} | {value} |" for key, value in meta["hyperparameters"].items()]
    lines += ["", "## Dev metrics", ""]
    lines += [f"- {key}: {value:.4f}" for key, value in meta["metrics"].items()]
    if meta.get("baseline"):
        lines += [
            "",
            "TF-IDF + logistic regression on the same split: "
            + ", ".join(f"{k} {v:.4f}" for k, v in meta["baseline"].items()),
        ]
        tuned, classical = meta["metrics"].get("accuracy"), meta["baseline"]["accuracy"]
        if tuned is not None and classical > tuned:
            lines += ["", "**The classical baseline is more accurate than this model.**"]
    if meta.get("privacy"):
        spent = meta["privacy"]
        lines += [
            "",
            f"Trained with differential privacy (DP-SGD, Opacus): ε = {spent['epsilon_spent']:.2f}"
            f" spent of {spent['epsilon_target']:g}, δ = {spent['delta']:.1e}, noise multiplier "
            f"{spent['noise_multiplier']:.3f}, per-example clip {spent['clip']:g}.",
        ]
    if meta.get("labels"):
        lines += ["", "Labels: " + ", ".join(meta["labels"])]
    lines += ["", 'Load it with `fondasi.model("tuned:<this folder>")`.']
    return "\n".join(lines) + "\n"
