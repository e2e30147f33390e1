"""Decoding held to a grammar, and token log-probabilities, for local language models.

Both local engines (transformers and llama.cpp) decode token by token and let a callback
change the logits before a token is picked. ``Decoding`` is that callback: it records the
log-probabilities of the model's own distribution (what OpenAI's ``logprobs`` report) and,
given a grammar, masks every token the grammar does not allow next, so the answer always
matches it. Grammars are Lark (llguidance's dialect, ``%json {...}`` embeds a JSON schema);
llguidance, the engine vLLM, SGLang and llama.cpp use, computes the masks.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fondasi.backends.closing import Closing, TokenShapes
from fondasi.errors import BadInputError
from fondasi.extras import require
from fondasi.types import GenerateOptions, TokenLogprob, TopLogprob

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# JSON as models write it: one space after ":" and ",", no other whitespace. Flexible
# whitespace lets a small model pad an answer with newlines until max_tokens runs out.
JSON_LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
# Tool calls are written as Hermes-style blocks, the format Qwen2.5 and Hermes templates
# lay out and their models were trained on; other models are told the format.
TOOL_CALL_TAG = "<tool_call>"

_tokenizers: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_shapes: weakref.WeakKeyDictionary[Any, TokenShapes] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def closed(schema: Any) -> Any:
    """``schema`` with every object that lists properties closed to others.

    A schema that does not say ``additionalProperties`` allows any other key; a small model
    held to it happily invents keys until ``max_tokens`` runs out. OpenAI's strict mode
    requires closed objects; fondasi closes them when decoding (validation still reads the
    schema as given).
    """
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: closed(value) for key, value in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def json_rule(schema: dict[str, Any]) -> str:
    """A Lark right-hand side matching JSON values valid under ``schema``, laid out compactly."""
    import json

    shown = {**closed(schema), "x-guidance": JSON_LAYOUT}
    return "%json " + json.dumps(shown, ensure_ascii=False)


def json_grammar(schema: dict[str, Any]) -> str:
    """A Lark grammar whose only sentences are JSON values valid under ``schema``."""
    return "start: " + json_rule(schema)


def lltokenizer(owner: Any, build: Callable[[], Any]) -> Any:
    """The llguidance tokenizer of ``owner`` (a loaded model), built once (about 1 s)."""
    with _lock:
        made = _tokenizers.get(owner)
        if made is None:
            with warnings.catch_warnings():
                # llguidance reads a llama.cpp vocabulary through llama_token_get_attr,
                # which llama-cpp-python has deprecated: not ours to fix, and under
                # ``-W error`` (the test suite) it would stop every constrained llama.cpp call.
                warnings.filterwarnings(
                    "ignore", "llama_token_get_attr is deprecated", DeprecationWarning
                )
                made = build()
            _tokenizers[owner] = made
        return made


def shapes(owner: Any, tokenizer: Any) -> TokenShapes:
    """What closing needs to know of ``owner``'s vocabulary, worked out once per model."""
    with _lock:
        made = _shapes.get(owner)
        if made is None:
            made = _shapes[owner] = TokenShapes.of(tokenizer)
        return made


def matcher(tokenizer: Any, grammar: str) -> Any:
    """An llguidance matcher for a Lark grammar; a grammar it cannot use is a clear error."""
    llguidance = require("llguidance", "local", "constrained decoding (JSON schemas, tools)")
    compiled = llguidance.LLMatcher.grammar_from_lark(grammar)
    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(compiled, tokenizer)
    if is_error:
        raise BadInputError(f"the grammar (or JSON schema) cannot be used: {messages[0]}")
    made = llguidance.LLMatcher(tokenizer, compiled, log_level=0)
    if made.is_error():
        raise BadInputError(f"the grammar (or JSON schema) cannot be used: {made.get_error()}")
    return made


@dataclass
class Decoding:
    """One generation's logits callback: grammar masking and log-probability recording.

    Called once per new token with the ids so far and the next token's logits; the token
    picked last time is the newest id, so it is recorded (and fed to the grammar) one call
    later, and ``finish`` records the last one.
    """

    prompt_tokens: int
    token_text: Callable[[int], str]
    grammar: Any = None  # an llguidance LLMatcher, or None
    top: int = 0
    record: bool = False
    closing: Closing | None = None  # finishes a held answer inside its token budget
    logprobs: list[TokenLogprob] = field(default_factory=list)
    _previous: Any = None  # the last step's log-softmax row, until its token is known
    _mask: Any = None
    _mask_error: str | None = None

    def __call__(self, ids: Sequence[int], logits: npt.NDArray[np.float32]) -> None:
        """Record the previous token, then mask ``logits`` (one row, changed in place)."""
        import numpy as np

        if len(ids) > self.prompt_tokens:
            self._picked(int(ids[-1]))
        if self.record:
            self._previous = _log_softmax(logits)
        if self.grammar is None:
            return
        import llguidance.numpy as lnp

        if self._mask is None:
            self._mask = lnp.allocate_token_bitmask(1, logits.shape[-1])
        lnp.fill_next_token_bitmask(self.grammar, self._mask, 0)
        lnp.apply_token_bitmask_inplace(logits.reshape(1, -1), self._mask)
        if not np.isfinite(logits).any():  # the grammar allows nothing: the model's vocab
            self._mask_error = self.grammar.get_error() or "no token fits the grammar"
            return
        if self.closing is not None:
            forced = self.closing.next(self.grammar, len(ids) - self.prompt_tokens)
            if forced is not None:
                row = logits.reshape(-1)
                kept = row[forced]
                row[:] = -np.inf
                row[forced] = kept if np.isfinite(kept) else 0.0

    def _picked(self, token: int) -> None:
        if self.grammar is not None and not self.grammar.is_stopped():
            self.grammar.consume_token(token)
            if self.closing is not None:
                self.closing.seen(token)
        if self.record and self._previous is not None:
            self.logprobs.append(logprob_of(token, self._previous, self.top, self.token_text))
            self._previous = None

    def finish(self, last: int | None) -> None:
        """Record the last picked token (engines stop before calling back again)."""
        if last is not None and self._previous is not None:
            self._picked(last)
        if self._mask_error:
            raise BadInputError(f"constrained decoding failed: {self._mask_error}")


def decoding_for(
    owner: Any,
    options: GenerateOptions,
    prompt_tokens: int,
    token_text: Callable[[int], str],
    build: Callable[[], Any],
    budget: int | None = None,
) -> Decoding | None:
    """The logits callback ``options`` need on ``owner`` (a loaded model), or None.

    ``build`` makes the model's llguidance tokenizer, once per model, when a grammar
    first needs it; ``token_text`` shows a token id as text; ``budget`` is the most
    tokens the answer may have (``max_tokens`` unless the context leaves fewer).
    """
    if options.grammar is None and not options.logprobs:
        return None
    grammar = closing = None
    if options.grammar is not None:
        tokenizer = lltokenizer(owner, build)
        grammar = matcher(tokenizer, options.grammar)
        limit = options.max_tokens if budget is None else budget
        closing = Closing(shapes(owner, tokenizer), limit)
    return Decoding(
        prompt_tokens, token_text, grammar, options.top_logprobs, options.logprobs, closing
    )


def _log_softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    import numpy as np

    row = logits.reshape(-1).astype(np.float32, copy=True)
    peak = row.max()
    shifted: npt.NDArray[np.float32] = row - peak - np.log(np.exp(row - peak).sum())
    return shifted


def logprob_of(
    token: int, row: npt.NDArray[np.float32], top: int, text: Callable[[int], str]
) -> TokenLogprob:
    """A token's log-probability in a log-softmax row, with the ``top`` likeliest others."""
    import numpy as np

    alternatives = []
    if top:
        best = np.argpartition(-row, top)[:top]
        best = best[np.argsort(-row[best])]
        alternatives = [_top(int(i), float(row[i]), text) for i in best]
    return TokenLogprob(
        **_top(token, float(row[token]), text).model_dump(), top_logprobs=alternatives
    )


def _top(token: int, value: float, text: Callable[[int], str]) -> TopLogprob:
    shown = text(token)
    return TopLogprob(token=shown, logprob=max(value, -9999.0), bytes=list(shown.encode()))


def text_logprobs(
    ids: Sequence[int], rows: npt.NDArray[np.float32], top: int, text: Callable[[int], str]
) -> list[TokenLogprob | None]:
    """Each token of a read text scored by the row before it (``rows[i]`` predicts ``ids[i+1]``)."""
    out: list[TokenLogprob | None] = [None]
    for position in range(1, len(ids)):
        row = _log_softmax(rows[position - 1])
        out.append(logprob_of(int(ids[position]), row, top, text))
    return out
