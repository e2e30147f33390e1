"""Tuning on an eval's behalf: ``tune:`` candidates and the learning curve's tuned points.

The eval hands over a candidate, the examples it may learn from and a folder; the model is
tuned there on every example given (nothing held out: the eval's own test split measures
it, so no early stopping) and comes back as ``tuned:FOLDER``. A folder already tuned on the
same examples is used again, so a rerun into the same output folder tunes nothing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fondasi.backends.tuned import META

if TYPE_CHECKING:
    from fondasi.settings import Settings

# The eval's Tuner, spelled out: tune and evaluate are siblings and do not import each other.
EvalTuner = Callable[[Any, Sequence[Any], Path], str]


def eval_tuner(settings: Settings, seed: int = 0, progress: bool = False) -> EvalTuner:
    """A tuner for ``fondasi.evaluate.evaluate``, tuning with fondasi's tune methods."""

    def tuned(spec: Any, examples: Sequence[Any], out: Path) -> str:
        """Tune ``spec.model`` with ``spec.tune`` on the examples' fields into ``out``."""
        from fondasi.tune.local import tune
        from fondasi.tune.options import TuneOptions

        data = out.with_name(out.name + ".train.jsonl")
        rows = "".join(json.dumps(e.fields, ensure_ascii=False) + "\n" for e in examples)
        # What was tuned is the examples and the settings: either changed, it tunes again.
        asked = out.with_name(out.name + ".options.json")
        settings_text = json.dumps(spec.tune_options, sort_keys=True)
        if (out / META).exists():
            same = data.exists() and data.read_text("utf-8") == rows
            if same and asked.exists() and asked.read_text("utf-8") == settings_text:
                return f"tuned:{out}"
            shutil.rmtree(out)  # tuned on other examples by an earlier run into this folder
        out.parent.mkdir(parents=True, exist_ok=True)
        data.write_text(rows, encoding="utf-8")
        asked.write_text(settings_text, encoding="utf-8")
        from pydantic import ValidationError

        from fondasi.errors import BadInputError

        try:
            options = TuneOptions.model_validate(
                {
                    "seed": seed,
                    **spec.tune_options,
                    "base": spec.model,
                    "data": data,
                    "eval_data": data,
                    "out": out,
                    "method": spec.tune or "lora",
                    "patience": 0,
                }
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise BadInputError(f"{spec.label}: tune_options {where}: {first['msg']}") from None
        tune(options, settings, progress=progress)
        return f"tuned:{out}"

    return tuned


__all__ = ["eval_tuner"]
