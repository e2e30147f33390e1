"""Causal language models through transformers: GGUF or safetensors, streamed token by token."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fondasi.backends.base import Capability, ModelSpec, Prompt, message_dict
from fondasi.backends.constrained import (
    TOOL_CALL_TAG,
    decoding_for,
    text_logprobs,
)
from fondasi.backends.decode_batching import MAX_BATCH, DecodeBatcher, Job, stream_job
from fondasi.backends.gguf_cache import dequantise
from fondasi.backends.stops import StopScanner
from fondasi.backends.torch_rows import TorchRows, batchable
from fondasi.errors import BadInputError
from fondasi.extras import quiet_transformers, require
from fondasi.types import Chunk, GenerateOptions, Message, TokenLogprob, Tool, Usage

if TYPE_CHECKING:
    from fondasi.settings import Settings

log = logging.getLogger(__name__)

# Where configs keep the longest input: most say max_position_embeddings, MPT says max_seq_len.
CONTEXT_KEYS = ("max_position_embeddings", "max_seq_len", "n_positions")
# What a decoder's forward takes from the tokenizer; some tokenizers (BERT-style, Falcon's)
# also return token_type_ids, which generate() refuses for models that have no such input.
MODEL_INPUTS = ("input_ids", "attention_mask")
# Causal LMs in transformers' AutoModelForCausalLM map not named *ForCausalLM (GPT-2 above all);
# matching on "LMHeadModel" alone would also claim the seq2seq T5WithLMHeadModel.
OTHER_CAUSAL_LMS = frozenset(
    {"GPT2LMHeadModel", "OpenAIGPTLMHeadModel", "CTRLLMHeadModel", "XLNetLMHeadModel"}
)


class CausalLM:
    """A loaded decoder model and its tokenizer."""

    native_logprobs = True  # read off the logits while decoding
    constrains = True  # options.grammar masks the logits (llguidance)

    def __init__(self, model: Any, tokenizer: Any, name: str) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        # Decoder-only models whose cache rows can be merged decode concurrent calls together
        # (decode_batching); others (vision models, sliding-window caches) one at a time.
        self.batch_size = MAX_BATCH if _decodes_in_batches(model) else 1
        self._batcher: DecodeBatcher | None = None
        self._batcher_lock = threading.Lock()
        caps = {Capability.GENERATE, Capability.SCORE}
        if getattr(tokenizer, "chat_template", None):
            caps.add(Capability.CHAT)
        self.capabilities = frozenset(caps)
        self.context_length = next(
            (int(n) for key in CONTEXT_KEYS if (n := getattr(model.config, key, None))), 0
        )

    @property
    def renders_tools(self) -> bool:
        """Whether the chat template lays out tools and ``<tool_call>`` turns (Qwen, Hermes)."""
        return TOOL_CALL_TAG in str(getattr(self.tokenizer, "chat_template", None) or "")

    def count_tokens(self, text: str) -> int:
        """Tokens the tokenizer makes of ``text``."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _template(self, prompt: Sequence[Message], tools: Sequence[Tool], **how: Any) -> Any:
        if Capability.CHAT not in self.capabilities:
            raise BadInputError(f"{self.name} has no chat template: give it plain text to continue")
        listed = [tool.openai() for tool in tools] if tools and self.renders_tools else None
        return self.tokenizer.apply_chat_template(
            [message_dict(message) for message in prompt],
            tools=listed,
            add_generation_prompt=True,
            **how,
        )

    def _encode(self, prompt: Prompt, tools: Sequence[Tool] = ()) -> dict[str, Any]:
        if isinstance(prompt, str):
            encoded = self.tokenizer(prompt, return_tensors="pt")
        else:
            encoded = self._template(prompt, tools, return_tensors="pt", return_dict=True)
        return {key: encoded[key] for key in MODEL_INPUTS if key in encoded}

    def prompt_text(self, prompt: Prompt, tools: Sequence[Tool] = ()) -> str:
        """The exact text the model reads: the chat template applied to messages."""
        if isinstance(prompt, str):
            return prompt
        text: str = self._template(prompt, tools, tokenize=False)
        return text

    def token_logprobs(self, text: str, top: int) -> list[TokenLogprob | None]:
        """Each token of ``text`` read as given (BOS added where the tokenizer adds one)."""
        import torch

        ids = self.tokenizer(text, return_tensors="pt")["input_ids"]
        if self.context_length and ids.shape[1] > self.context_length:
            raise BadInputError(
                f"the text is {ids.shape[1]} tokens; {self.name} reads at most "
                f"{self.context_length}"
            )
        with torch.inference_mode():
            logits = self.model(input_ids=ids).logits[0].float().numpy()
        scored = text_logprobs(ids[0].tolist(), logits, top, self._token_text)
        # A BOS the tokenizer put in front is not part of the text: drop it.
        if ids.shape[1] and int(ids[0, 0]) in self.tokenizer.all_special_ids:
            scored = [None, *scored[2:]] if len(scored) > 1 else scored
        return scored

    def _token_text(self, token: int) -> str:
        return str(self.tokenizer.decode([token]))

    def _lltokenizer(self) -> Any:
        import llguidance.hf

        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        return llguidance.hf.from_tokenizer(
            self.tokenizer, n_vocab=int(self.model.config.vocab_size), eos_token=eos
        )

    def score(self, prompt: Prompt, continuations: Sequence[str]) -> list[float]:
        """Summed log-probability of each continuation's tokens after the prompt.

        The prompt runs once and its key/value cache is shared by every continuation;
        the continuations then run side by side, right-padded so positions are unchanged.
        """
        import torch

        prefix = self._encode(prompt)["input_ids"]
        tails = [
            self.tokenizer(text, add_special_tokens=False)["input_ids"] for text in continuations
        ]
        if not tails or any(not tail for tail in tails):
            raise BadInputError("every continuation to score must be non-empty text")
        longest = max(len(tail) for tail in tails)
        if self.context_length and prefix.shape[1] + longest > self.context_length:
            raise BadInputError(
                f"prompt and answer take {prefix.shape[1] + longest} tokens; {self.name} "
                f"reads at most {self.context_length}"
            )
        ids = torch.zeros((len(tails), longest), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, tail in enumerate(tails):
            ids[row, : len(tail)] = torch.tensor(tail)
            mask[row, : len(tail)] = 1
        with torch.inference_mode():
            head = self.model(input_ids=prefix, use_cache=True, logits_to_keep=1)
            cache = head.past_key_values
            cache.batch_repeat_interleave(len(tails))
            seen = torch.ones((len(tails), prefix.shape[1]), dtype=torch.long)
            rest = self.model(
                input_ids=ids,
                attention_mask=torch.cat([seen, mask], dim=1),
                past_key_values=cache,
                use_cache=False,
            )
        # The prompt's last logit predicts each tail's first token; the tail's own logits
        # predict its next tokens.
        first = head.logits[0, -1].float().expand(len(tails), -1).unsqueeze(1)
        logits = torch.cat([first, rest.logits[:, :-1].float()], dim=1)
        picked = torch.log_softmax(logits, dim=-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
        return [float(value) for value in (picked * mask).sum(dim=1)]

    def _answer_start(self, prompt_tokens: int) -> int:
        """Where the answer begins in the ids ``generate`` returns (after the prompt)."""
        return prompt_tokens

    def _budget(self, prompt_tokens: int, wanted: int) -> int:
        """New tokens that fit the context; refuse prompts that do not fit at all."""
        if not self.context_length:
            return wanted
        room = self.context_length - prompt_tokens
        if room <= 0:
            raise BadInputError(
                f"the prompt is {prompt_tokens} tokens; {self.name} reads at most "
                f"{self.context_length}. Shorten it (fondasi refuses rather than truncating)"
            )
        if wanted > room:
            log.warning("max_tokens %d cut to %d to fit the context of %s", wanted, room, self.name)
        return min(wanted, room)

    def stream(self, prompt: Prompt, options: GenerateOptions) -> Iterator[Chunk]:
        """Yield text as it is decoded; concurrent calls share each decode step."""
        inputs = self._encode(prompt, options.tools)
        if self.batch_size > 1:
            return self._stream_batched(inputs["input_ids"][0].tolist(), options)
        return self._generate(inputs, options)

    @property
    def batcher(self) -> DecodeBatcher:
        """The scheduler that decodes this model's concurrent calls together."""
        with self._batcher_lock:
            if self._batcher is None:
                eos = self.model.generation_config.eos_token_id
                if eos is None:
                    eos = self.tokenizer.eos_token_id
                ids = {int(eos)} if isinstance(eos, int) else {int(e) for e in eos or ()}
                rows = TorchRows(self.model)
                self._batcher = DecodeBatcher(rows, ids, self.batch_size, rows.context)
            return self._batcher

    def _stream_batched(self, prompt: list[int], options: GenerateOptions) -> Iterator[Chunk]:
        max_new = self._budget(len(prompt), options.max_tokens)
        decoding = decoding_for(
            self, options, len(prompt), self._token_text, self._lltokenizer, budget=max_new
        )
        job = Job.of(prompt, max_new, options, decoding)
        tokenizer = self.tokenizer

        def decode(ids: list[int]) -> str:
            return str(tokenizer.decode(ids, skip_special_tokens=True))

        special = set(tokenizer.all_special_ids)
        return stream_job(self.batcher, job, decode, options.stop, special, options.logprobs)

    def _generate(self, inputs: dict[str, Any], options: GenerateOptions) -> Iterator[Chunk]:
        """Stream ``model.generate`` on ready inputs (token ids, and pixels for vision models)."""
        import torch
        from transformers import (
            GenerationConfig,
            LogitsProcessor,
            StoppingCriteria,
            TextIteratorStreamer,
        )

        prompt_tokens = int(inputs["input_ids"].shape[1])
        max_new = self._budget(prompt_tokens, options.max_tokens)
        cancel = threading.Event()
        tokenizer, stops = self.tokenizer, [stop for stop in options.stop if stop]
        start = self._answer_start(prompt_tokens)
        # transformers' own stop_strings also match across the prompt's end (a chat prompt
        # ending in "\n" stops stop=["\n\n"] after one "\n"), so look at the answer only;
        # a stop must end in the newest token, so a tail of the answer is enough.
        window = 8 * max((len(stop) for stop in stops), default=0) + 16

        class Stopped(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                if cancel.is_set():
                    return True
                if not stops:
                    return False
                tail = input_ids[0, max(start, input_ids.shape[1] - window) :]
                text = tokenizer.decode(tail, skip_special_tokens=True)
                return any(stop in text for stop in stops)

        decoding = decoding_for(
            self, options, start, self._token_text, self._lltokenizer, budget=max_new
        )

        class Decode(LogitsProcessor):
            def __call__(self, input_ids: Any, scores: Any) -> Any:
                if decoding is not None:
                    decoding(input_ids[0], scores[0].numpy())  # a view: masked in place
                return scores

        base = self.model.generation_config
        sampling = options.temperature > 0
        config = GenerationConfig(
            max_new_tokens=max_new,
            do_sample=sampling,
            temperature=options.temperature if sampling else None,
            top_p=options.top_p if sampling else None,
            top_k=None,
            eos_token_id=base.eos_token_id,
            pad_token_id=base.pad_token_id
            if base.pad_token_id is not None
            else self.tokenizer.eos_token_id,
            bos_token_id=base.bos_token_id,
        )
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                if options.seed is not None:
                    torch.manual_seed(options.seed)
                with torch.inference_mode():
                    result["ids"] = self.model.generate(
                        **inputs,
                        generation_config=config,
                        streamer=streamer,
                        stopping_criteria=[Stopped()],
                        logits_processor=[Decode()] if decoding is not None else None,
                    )
            except BaseException as exc:  # surfaced in the caller's thread below
                result["error"] = exc
                streamer.end()

        worker = threading.Thread(target=work, name=f"generate-{self.name}", daemon=True)
        scanner = StopScanner(options.stop)
        worker.start()
        try:
            for text in streamer:
                shown = scanner.feed(text)
                if shown:
                    yield Chunk(text=shown)
                if scanner.stopped:
                    cancel.set()
                    break
        finally:
            cancel.set()  # also when the consumer stops reading early
            worker.join()
        if "error" in result:
            raise result["error"]
        generated = int(result["ids"].shape[1]) - start
        finish = "stop" if scanner.stopped or generated < max_new else "length"
        logprobs = None
        if decoding is not None:
            last = int(result["ids"][0, -1]) if generated else None
            # The end-of-text token is not part of the answer: no log-probability for it.
            decoding.finish(None if last in self.tokenizer.all_special_ids else last)
            logprobs = decoding.logprobs if options.logprobs else None
        yield Chunk(
            text=scanner.flush(),
            logprobs=logprobs,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=generated),
            finish_reason=finish,
        )


def _decodes_in_batches(model: Any) -> bool:
    """A plain causal LM (not a vision or encoder-decoder model) whose cache can be merged."""
    if getattr(getattr(model, "active_peft_config", None), "is_prompt_learning", False):
        return False  # prompt tuning puts virtual tokens before each input: not plain rows
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT
    arch = type(base).__name__
    causal = arch.endswith("ForCausalLM") or arch in OTHER_CAUSAL_LMS
    return causal and batchable(base)


class CausalLMFactory:
    """Loads decoder-only language models: GGUF files and safetensors folders."""

    name = "transformers-causal-lm"
    priority = 10

    def claims(self, spec: ModelSpec) -> bool:
        """GGUF language models, and folders whose config names a causal-LM class."""
        if spec.format == "gguf":
            return True
        arch = spec.hf_architecture or ""
        causal = arch.endswith("ForCausalLM") or arch in OTHER_CAUSAL_LMS
        return spec.format == "safetensors" and causal

    def load(self, spec: ModelSpec, settings: Settings) -> CausalLM:
        """Load weights (dequantising a GGUF file once into the cache)."""
        require("transformers", "local", "running local language models")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if spec.path is None:
            raise BadInputError(f"{spec.id}: no local weights to load")
        folder = dequantise(spec.path, settings.cache_dir) if spec.format == "gguf" else spec.path
        quiet_transformers()
        if settings.threads:
            torch.set_num_threads(settings.threads)
        try:
            # trust_remote_code=False for the tokenizer too: left unset, transformers asks
            # "run the custom code? [y/N]" on stdin and runs it on a yes.
            tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
            model = AutoModelForCausalLM.from_pretrained(
                folder, dtype=torch.float32, use_safetensors=True, trust_remote_code=False
            )
        except (OSError, ValueError) as exc:
            if "trust_remote_code" in str(exc):
                raise BadInputError(
                    f"{spec.id}: {folder} needs Python code shipped with the weights "
                    "(trust_remote_code), which fondasi does not run; use a checkpoint whose "
                    "architecture transformers has built in"
                ) from exc
            raise BadInputError(f"{spec.id}: cannot load the model in {folder}: {exc}") from exc
        model.eval()
        return CausalLM(model, tokenizer, spec.id)
