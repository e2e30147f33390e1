"""Speech to text: transcripts scored against reference text, WER and CER by jiwer.

An example names an audio file (relative to the data file's folder) and the words said; an
optional ``language`` column tells the model the language instead of letting it guess, so
the run measures transcription rather than language detection. Texts are compared lower-cased
without punctuation, as speech benchmarks do. The headline is word accuracy (1 - WER, at
least 0): higher is better, as for every other headline; WER and CER are reported beside it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fondasi.errors import BadInputError
from fondasi.evaluate.metrics import metric
from fondasi.evaluate.tasks import Context, Output, Predictor, Task, register
from fondasi.extras import require

if TYPE_CHECKING:
    from fondasi.evaluate.config import CandidateSpec
    from fondasi.evaluate.datasets import Example
    from fondasi.models.contract import ModelHandle


def normalised(text: Any) -> str:
    """Lower case, punctuation as spaces, single spaces: what WER compares."""
    return " ".join(re.sub(r"[^\w\s]", " ", str(text or "").lower()).split())


def _pairs(references: Sequence[Any], outputs: Sequence[Any]) -> tuple[list[str], list[str]]:
    return [normalised(r) for r in references], [normalised(o) for o in outputs]


@metric("speech-to-text", "wer", "word error rate (lower is better)")
def wer(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    jiwer = require("jiwer", "speech", "WER and CER")
    return float(jiwer.wer(*_pairs(references, outputs)))


@metric("speech-to-text", "cer", "character error rate (lower is better)")
def cer(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    jiwer = require("jiwer", "speech", "WER and CER")
    return float(jiwer.cer(*_pairs(references, outputs)))


@metric("speech-to-text", "word_accuracy", "1 - WER, at least 0 (higher is better)")
def word_accuracy(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    return max(0.0, 1.0 - wer(references, outputs, k))


class TranscribePredictor(Predictor):
    """One transcription per example, in the example's language when it names one."""

    def __init__(self, context: Context) -> None:
        self.folder = Path(context.data_folder)

    def setup(self, model: ModelHandle) -> None:
        from fondasi.backends.base import Capability

        if not model.can(Capability.TRANSCRIBE):
            raise BadInputError(f"{model.id} does not transcribe speech")

    def predict(self, model: ModelHandle, examples: Sequence[Example]) -> list[Output]:
        outputs = []
        for example in examples:
            path = self.folder / str(example.fields["audio"])
            language = example.fields.get("language") or None
            result = model.transcribe(path, language=language)
            outputs.append(Output(result.text, note=f"language {result.language}"))
        return outputs


@register
class SpeechToText(Task):
    """Speech to text against reference transcripts."""

    name = "speech-to-text"
    summary = "transcripts against reference text (word accuracy, WER, CER)"
    needed = ("audio", "reference")
    optional = ("language",)
    input_field = "audio"
    reference_field = "reference"
    default_metrics = ("word_accuracy", "wer", "cer")

    def prepare(self, example: Example) -> Example:
        audio, reference = example.fields["audio"], example.fields["reference"]
        if not isinstance(audio, str) or not audio.strip():
            raise BadInputError(f"example {example.index + 1}: audio names no file")
        if not normalised(reference):
            raise BadInputError(f"example {example.index + 1}: the reference is empty")
        fields = {"audio": audio, "reference": str(reference)}
        if example.fields.get("language"):
            fields["language"] = str(example.fields["language"]).strip().lower()
        return type(example)(example.index, example.id, fields)

    def predictor(self, candidate: CandidateSpec, context: Context) -> Predictor:
        return TranscribePredictor(context)

    def example_score(self, reference: Any, output: Any) -> float:
        return word_accuracy([reference], [output], 0)
