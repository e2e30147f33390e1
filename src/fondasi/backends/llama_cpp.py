"""GGUF language models run by llama.cpp (``fondasi[llamacpp]``): quantised, as the file is.

Chosen per model with the ``llamacpp:/path/file.gguf`` id, or for every GGUF with the
``gguf_engine = "llama.cpp"`` setting (``FONDASI_GGUF_ENGINE``); otherwise GGUF files go to
transformers. The contract is the transformers backend's: the chat template stored in the
file, greedy or sampled decoding, stop strings, a token budget, token-by-token streaming
and exact usage counts (fondasi renders and tokenises the prompt itself, so it knows them).
A seed repeats its text: every call reads its whole prompt into empty KV cells.
Concurrent calls are decoded together, one sequence each in a second context
(``llama_rows``); the first context serves ``token_logprobs``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fondasi.backends.base import Capability, ModelSpec, Prompt, message_dict
from fondasi.backends.constrained import TOOL_CALL_TAG, decoding_for, text_logprobs
from fondasi.backends.decode_batching import DecodeBatcher, Job, stream_job
from fondasi.backends.gguf_cache import check_gguf
from fondasi.backends.llama_rows import SLOTS, LlamaRows
from fondasi.errors import BadInputError
from fondasi.extras import require
from fondasi.types import Chunk, GenerateOptions, TokenLogprob, Tool

if TYPE_CHECKING:
    from fondasi.settings import Settings

# llama.cpp allocates the KV cache for the whole context up front; a model trained on 128K
# tokens would take gigabytes before the first request. Longer prompts are refused.
MAX_CONTEXT = 8192


class LlamaCppLM:
    """A GGUF model loaded by llama.cpp."""

    native_logprobs = True  # read off the logits while decoding
    constrains = True  # options.grammar masks the logits (llguidance)

    def __init__(self, llm: Any, name: str) -> None:
        self.llm = llm
        self.name = name
        self.template = llm.metadata.get("tokenizer.chat_template")
        caps = {Capability.GENERATE}
        if self.template:
            caps.add(Capability.CHAT)
        self.capabilities = frozenset(caps)
        self.context_length = int(llm.n_ctx())
        self.batch_size = SLOTS  # concurrent calls decoded together (llama_rows)
        self._batcher: DecodeBatcher | None = None
        self._batcher_lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        """Tokens llama.cpp's tokenizer makes of ``text`` (no BOS)."""
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    @property
    def renders_tools(self) -> bool:
        """Whether the file's chat template lays out tools and ``<tool_call>`` turns."""
        return TOOL_CALL_TAG in str(self.template or "")

    def prompt_text(self, prompt: Prompt, tools: Sequence[Tool] = ()) -> str:
        """The exact text the model reads: the file's chat template applied to messages."""
        if isinstance(prompt, str):
            return prompt
        if not self.template:
            raise BadInputError(f"{self.name} has no chat template: give it plain text to continue")
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        formatter = Jinja2ChatFormatter(
            template=self.template,
            eos_token=self._token_text(self.llm.token_eos()),
            bos_token=self._token_text(self.llm.token_bos()),
        )
        messages: list[Any] = [message_dict(message) for message in prompt]
        listed: Any = [tool.openai() for tool in tools] if tools and self.renders_tools else None
        rendered = formatter(messages=messages, tools=listed)
        return str(rendered.prompt)

    def token_logprobs(self, text: str, top: int) -> list[TokenLogprob | None]:
        """Each token of ``text`` read as given, one token at a time.

        The context keeps logits for the last token of a batch only (keeping them for every
        position would take context x vocabulary floats), so the text is fed token by token.
        """
        import numpy as np

        ids: list[int] = self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        if len(ids) > self.context_length:
            raise BadInputError(
                f"the text has {len(ids)} tokens; {self.name} runs with a context of "
                f"{self.context_length}"
            )
        self._forget_last_call()
        vocab = int(self.llm.n_vocab())
        rows = np.zeros((max(len(ids) - 1, 0), vocab), dtype=np.float32)
        for position, token in enumerate(ids[:-1]):
            self.llm.eval([token])
            rows[position] = np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(vocab,))
        scored = text_logprobs(ids, rows, top, self._piece)
        bos = self.llm.token_bos()
        if ids and ids[0] == bos:  # the BOS llama.cpp put in front is not part of the text
            scored = [None, *scored[2:]] if len(scored) > 1 else scored
        return scored

    def _piece(self, token: int) -> str:
        piece: bytes = self.llm.detokenize([token])
        return piece.decode("utf-8", errors="replace")

    def _token_text(self, token: int) -> str:
        return "" if token < 0 else str(self.llm._model.token_get_text(token))

    def _tokens(self, prompt: Prompt, tools: Sequence[Tool] = ()) -> list[int]:
        text = self.prompt_text(prompt, tools)
        # A chat prompt's template writes special tokens as text; a plain prompt's text is
        # the user's own, so "<|im_end|>" typed by a user stays text there.
        chat = not isinstance(prompt, str)
        tokens: list[int] = self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=chat)
        return tokens

    def _forget_last_call(self) -> None:
        """Empty the KV cache, so that this call evaluates its whole prompt from scratch.

        llama-cpp-python keeps the last call's tokens in the cache and, for a prompt that
        shares a prefix with them, evaluates only the rest: asked the same prompt twice, it
        re-evaluates just the last prompt token. A batch of one token runs other matmul
        kernels than a batch of many (ggml's dot products rather than llamafile's sgemm or
        AMX tiles); their rounding differs, and where it crosses a step of the activations
        requantised to 8 bits the difference grows (up to 0.6 in a logit on an AVX2 build),
        so at a temperature above 0 the same seed need not repeat its text. Emptied, every
        call with the same prompt, options and seed runs the same computation. The price is
        re-reading a shared prefix, which a context of at most ``MAX_CONTEXT`` keeps small.
        """
        import llama_cpp

        self.llm.reset()  # n_tokens = 0: nothing to reuse, so the prompt is evaluated whole
        # Cells only, not data: new tokens land in the same cells as on a fresh context, and
        # stale values sit only in masked cells, which add exact zeros. Zeroing the data too
        # would cost a memset of the whole cache (about 20 ms for SmolLM2 at 8K) per call.
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.llm.ctx), False)

    @property
    def batcher(self) -> DecodeBatcher:
        """The scheduler that decodes this model's concurrent calls together."""
        with self._batcher_lock:
            if self._batcher is None:
                import llama_cpp

                vocab = self.llm._model.vocab
                ends = [
                    t for t in range(self.llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)
                ]
                rows = LlamaRows(self.llm, self.batch_size)
                self._batcher = DecodeBatcher(rows, ends, self.batch_size)
                # Closing the Llama unwinds its stack last-in first-out: the scheduler thread
                # is stopped and joined before the rows' context is freed under it (a step
                # still running on a freed context is a segfault).
                self.llm._stack.callback(self._batcher.close)
            return self._batcher

    def stream(self, prompt: Prompt, options: GenerateOptions) -> Iterator[Chunk]:
        """Decode token by token (concurrent calls share each step); the last chunk carries
        usage and why it ended."""
        tokens = self._tokens(prompt, options.tools)
        room = self.context_length - len(tokens)
        if room < 1:
            raise BadInputError(
                f"the prompt has {len(tokens)} tokens; {self.name} runs with a context of "
                f"{self.context_length}: shorten it"
            )
        budget = min(options.max_tokens, room)
        decoding = decoding_for(
            self, options, len(tokens), self._piece, self._lltokenizer, budget=budget
        )
        job = Job.of(tokens, budget, options, decoding)
        detokenize = self.llm.detokenize

        def decode(answer: list[int]) -> str:
            # Whole-answer detokenising keeps each piece's leading space right.
            text: bytes = detokenize(answer, prev_tokens=tokens)
            return text.decode("utf-8", errors="replace")

        return stream_job(
            self.batcher, job, decode, options.stop, (), options.logprobs, count_end=False
        )

    def _lltokenizer(self) -> Any:
        import llama_cpp
        import llguidance.llamacpp

        vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        return llguidance.llamacpp.lltokenizer_from_vocab(vocab)


class LlamaCppFactory:
    """Loads GGUF files sent to llama.cpp (``llamacpp:`` ids or ``gguf_engine``)."""

    name = "llama-cpp"
    priority = 20  # above transformers, which also claims GGUF files

    def claims(self, spec: ModelSpec) -> bool:
        """GGUF files the user sent to llama.cpp."""
        return spec.format == "gguf" and spec.extra.get("engine") == "llama.cpp"

    def load(self, spec: ModelSpec, settings: Settings) -> LlamaCppLM:
        """Memory-map the file; the context is the model's own, at most ``MAX_CONTEXT``."""
        require("llama_cpp", "llamacpp", "running GGUF files on llama.cpp")
        from llama_cpp import Llama

        if spec.path is None:
            raise BadInputError(f"{spec.id}: no local weights to load")
        check_gguf(spec.path)
        try:
            llm = Llama(
                model_path=str(spec.path),
                n_ctx=MAX_CONTEXT,
                n_threads=settings.threads,
                verbose=False,
            )
            trained = int(llm._model.n_ctx_train())
            if 0 < trained < MAX_CONTEXT:  # the file is memory-mapped: a second open is cheap
                del llm
                llm = Llama(
                    model_path=str(spec.path),
                    n_ctx=trained,
                    n_threads=settings.threads,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as exc:  # llama.cpp: "Failed to load model ..."
            raise BadInputError(
                f"{spec.path}: llama.cpp cannot load it as a model: {exc}"
            ) from None
        return LlamaCppLM(llm, spec.id)
