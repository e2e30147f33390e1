"""Encoder-family models: text-to-text (T5, BART) and fill-mask (BERT, RoBERTa)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fondasi.backends.base import Capability, ModelSpec, Prompt
from fondasi.backends.hf_causal import MODEL_INPUTS, CausalLM
from fondasi.errors import BadInputError
from fondasi.extras import quiet_transformers, require
from fondasi.types import Label, Tool

if TYPE_CHECKING:
    from fondasi.settings import Settings

# T5's relative positions have no hard limit, but it was trained on 512 tokens.
ENCODER_CONTEXT_KEYS = ("max_position_embeddings", "n_positions")
DEFAULT_ENCODER_CONTEXT = 512


class Seq2SeqLM(CausalLM):
    """An encoder-decoder: the prompt is encoded once, the answer decoded token by token."""

    def __init__(self, model: Any, tokenizer: Any, name: str) -> None:
        super().__init__(model, tokenizer, name)
        self.capabilities = frozenset({Capability.GENERATE})
        config = model.config
        self.context_length = next(
            (int(n) for key in ENCODER_CONTEXT_KEYS if (n := getattr(config, key, None))),
            DEFAULT_ENCODER_CONTEXT,
        )

    def _encode(self, prompt: Prompt, tools: Sequence[Tool] = ()) -> dict[str, Any]:
        if not isinstance(prompt, str):
            raise BadInputError(f"{self.name} is a text-to-text model: give it plain text")
        encoded = self.tokenizer(prompt, return_tensors="pt")
        return {key: encoded[key] for key in MODEL_INPUTS if key in encoded}

    def _answer_start(self, prompt_tokens: int) -> int:
        return 1  # the decoder starts from one decoder-start token, not from the prompt

    def _budget(self, prompt_tokens: int, wanted: int) -> int:
        if prompt_tokens > self.context_length:
            raise BadInputError(
                f"the input is {prompt_tokens} tokens; {self.name} reads at most "
                f"{self.context_length}. Shorten it (fondasi refuses rather than truncating)"
            )
        return wanted


class Seq2SeqFactory:
    """Loads ``*ForConditionalGeneration`` text-to-text folders (T5, BART, mT5, Flan-T5)."""

    name = "transformers-seq2seq"
    priority = 10
    ARCHITECTURES = (
        "T5ForConditionalGeneration",
        "MT5ForConditionalGeneration",
        "BartForConditionalGeneration",
        "MBartForConditionalGeneration",
        "PegasusForConditionalGeneration",
        "MarianMTModel",
    )

    def claims(self, spec: ModelSpec) -> bool:
        """Text-to-text architectures in safetensors folders."""
        return spec.format == "safetensors" and (spec.hf_architecture or "") in self.ARCHITECTURES

    def load(self, spec: ModelSpec, settings: Settings) -> Seq2SeqLM:
        """Load model and tokenizer."""
        require("transformers", "local", "text-to-text models")
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        if spec.path is None:
            raise BadInputError(f"{spec.id}: no local weights to load")
        quiet_transformers()
        if settings.threads:
            torch.set_num_threads(settings.threads)
        tokenizer = AutoTokenizer.from_pretrained(spec.path, trust_remote_code=False)
        model = AutoModelForSeq2SeqLM.from_pretrained(
            spec.path, dtype=torch.float32, use_safetensors=True, trust_remote_code=False
        )
        model.eval()
        return Seq2SeqLM(model, tokenizer, spec.id)


class MaskFiller:
    """A masked language model: predicts the hidden word."""

    capabilities = frozenset({Capability.FILL_MASK})

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.mask = str(tokenizer.mask_token)

    def fill_mask(self, text: str, top_k: int) -> list[Label]:
        """Candidates for the single mask token in ``text``, best first."""
        import torch

        if text.count(self.mask) != 1:
            example = f"Paris is the {self.mask} of France"
            raise BadInputError(f"put exactly one {self.mask} in the text, e.g. {example!r}")
        encoded = self.tokenizer(text, return_tensors="pt", truncation=True)
        position = int((encoded["input_ids"][0] == self.tokenizer.mask_token_id).nonzero()[0, 0])
        with torch.inference_mode():
            logits = self.model(**encoded).logits[0, position]
        probabilities = torch.softmax(logits.float(), dim=-1)
        best = torch.topk(probabilities, k=min(top_k, probabilities.shape[0]))
        words = self.tokenizer.convert_ids_to_tokens(best.indices.tolist())
        return [
            Label(label=str(word).replace("Ġ", "").replace("▁", ""), score=float(score))
            for word, score in zip(words, best.values.tolist(), strict=True)
        ]


class MaskFillerFactory:
    """Loads ``*ForMaskedLM`` folders (BERT, RoBERTa, IndoBERT, LegalBERT)."""

    name = "transformers-fill-mask"
    priority = 10

    def claims(self, spec: ModelSpec) -> bool:
        """Masked-LM architectures in safetensors folders."""
        return spec.format == "safetensors" and (spec.hf_architecture or "").endswith("ForMaskedLM")

    def load(self, spec: ModelSpec, settings: Settings) -> MaskFiller:
        """Load model and tokenizer."""
        require("transformers", "local", "fill-mask models")
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        if spec.path is None:
            raise BadInputError(f"{spec.id}: no local weights to load")
        quiet_transformers()
        tokenizer = AutoTokenizer.from_pretrained(spec.path, trust_remote_code=False)
        if tokenizer.mask_token is None:
            raise BadInputError(f"{spec.id}: its tokenizer has no mask token")
        model = AutoModelForMaskedLM.from_pretrained(
            spec.path, use_safetensors=True, trust_remote_code=False
        )
        model.eval()
        return MaskFiller(model, tokenizer)
