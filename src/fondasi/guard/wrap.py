"""A model with a policy around it: the same ``generate``/``stream`` calls, guarded.

Input: every message is checked before the call (the system prompt too, except for
injection rules: it is the developer's own text); a block raises and the model is never
called. Output: the answer is checked, new personal data masked, abuse or a leaked system
prompt blocked, then pseudonyms are put back. A stream releases text only after it has
been checked, holding back a short tail so a value split across chunks is still seen whole.

Tool calls and tool turns are conversation too. In the input, a tool result is untrusted
text (injection rules apply) and an assistant turn's call arguments are checked like user
text. In the answer, each call's arguments are checked by the output stage like answer
text. Arguments, and an answer asked for as JSON, stay valid JSON: pseudonyms are put back
inside their string values and the value is written out again. Filters that judge the
whole answer (a JSON schema) read the answer, not the arguments.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from fondasi.guard.base import Finding, ScanContext
from fondasi.guard.events import GuardBlockedError, GuardEvent
from fondasi.guard.policy import EventSink, Vault, edit, event
from fondasi.models.contract import ModelHandle
from fondasi.models.wrapper import Wrapper
from fondasi.types import Chunk, Completion, Message, Role, ToolCall

if TYPE_CHECKING:
    from fondasi.guard.policy import Policy

Answer = TypeVar("Answer", Chunk, Completion)

LOG = logging.getLogger("fondasi.guard")
HOLD_CHARS = 96  # unreleased tail of a stream: longer than any phone, card or placeholder
LOOKBACK_CHARS = 256  # released text re-read with each new piece, for spans across pieces


class GuardedModel(Wrapper):
    """``model`` under ``policy``: conversations are checked both ways; every other call
    (embeddings, classification, scoring) passes through to the model unchanged."""

    def __init__(self, model: Any, policy: Policy, on_event: EventSink | None = None) -> None:
        self.model = model
        self.policy = policy
        self.on_event = on_event
        # The latest call's events; one wrapper per request where calls run concurrently.
        self.last_events: list[GuardEvent] = []

    def primary(self) -> ModelHandle:
        """The guarded model."""
        return self.model  # type: ignore[no-any-return]

    def explain(self) -> str:
        """The guarded model's account of the latest call."""
        return str(self.model.explain())

    def _record(self, event: GuardEvent) -> None:
        self.last_events.append(event)
        # Always to the standard log too (events hold no matched text, so this is safe).
        LOG.info("%s", event.describe(), extra={"guard_event": event.model_dump()})
        if self.on_event is not None:
            self.on_event(event)

    def _guard_input(
        self, prompt: Any, system: str | None, vault: Vault
    ) -> tuple[Any, str | None, str]:
        """The prompt and system prompt as the model may see them, and the original text."""
        self.last_events = []
        if hasattr(prompt, "messages") and hasattr(prompt, "prompt"):  # a rendered template
            can = getattr(self.model, "can", None)
            from fondasi.backends.base import Capability

            prompt = prompt.prompt(bool(can(Capability.CHAT)) if can else True)
        originals: list[str] = []

        def check(text: str, part: int, trusted: bool) -> str:
            originals.append(text)
            skip = frozenset({"injection"}) if trusted else frozenset()
            return self.policy.check(
                text, "input", vault=vault, on_event=self._record, part=part, skip=skip
            ).text

        guarded_system = check(system, 0, True) if system else system
        if isinstance(prompt, str):
            guarded: Any = check(prompt, 0, False)
        else:
            guarded = []
            for index, item in enumerate(prompt):
                message = item if isinstance(item, Message) else Message.model_validate(item)
                text = check(message.content, index, message.role == Role.SYSTEM)
                untrusted = functools.partial(check, part=index, trusted=False)
                calls = tuple(
                    _with_arguments(call, in_json(call.arguments, untrusted))
                    for call in message.tool_calls
                )
                guarded.append(message.model_copy(update={"content": text, "tool_calls": calls}))
        return guarded, guarded_system, "\n".join(originals)

    def _output_context(self, system: str | None, source: str) -> ScanContext:
        return ScanContext(stage="output", system=system, source=source)

    def generate(self, prompt: Any, *, system: str | None = None, **kwargs: Any) -> Completion:
        """Check the prompt, call the model, check and restore the answer."""
        vault = Vault()
        guarded, guarded_system, source = self._guard_input(prompt, system, vault)
        completion: Completion = self.model.generate(guarded, system=guarded_system, **kwargs)
        context = self._output_context(system, source)
        return self._answer(completion, context, vault, structured=_asks_json(kwargs))

    def _answer(
        self, answer: Answer, context: ScanContext, vault: Vault, *, structured: bool
    ) -> Answer:
        """A whole answer (a completion, a stream's last chunk) checked and restored."""
        checked = self.policy.check(answer.text, "output", context, vault, self._record).text
        text = in_json(checked, vault.restore) if structured else vault.restore(checked)
        update: dict[str, Any] = {
            "text": text,
            "tool_calls": self._calls(answer.tool_calls, context, vault),
        }
        parsed = getattr(answer, "parsed", None)
        if parsed is not None and text != answer.text:
            update["parsed"] = _reparsed(parsed, text)
        return answer.model_copy(update=update)

    def _calls(
        self, calls: Sequence[ToolCall], context: ScanContext, vault: Vault
    ) -> list[ToolCall]:
        """Each call's arguments checked by the output stage and restored inside their JSON."""
        skip = frozenset(f.name for f, _ in self.policy.rules["output"] if f.whole_text)
        guarded = []
        for call in calls:
            checked = self.policy.check(
                call.arguments, "output", context, vault, self._record, skip=skip
            ).text
            guarded.append(_with_arguments(call, in_json(checked, vault.restore)))
        return guarded

    def stream(self, prompt: Any, *, system: str | None = None, **kwargs: Any) -> Iterator[Chunk]:
        """Check the prompt before anything is sent; release checked, restored text as it comes."""
        vault = Vault()
        guarded, guarded_system, source = self._guard_input(prompt, system, vault)
        context = self._output_context(system, source)
        upstream = self.model.stream(guarded, system=guarded_system, **kwargs)
        structured = _asks_json(kwargs)
        if self.policy.whole_output or structured:
            return self._whole(upstream, context, vault, structured)
        calls = functools.partial(self._calls, context=context, vault=vault)
        return OutputStream(self.policy, context, vault, self._record, calls).run(upstream)

    def _whole(
        self, upstream: Iterator[Chunk], context: ScanContext, vault: Vault, structured: bool
    ) -> Iterator[Chunk]:
        """For a whole-answer filter or a JSON answer: one checked chunk at the end."""
        parts: list[str] = []
        calls: list[ToolCall] = []
        last: Chunk | None = None
        for chunk in upstream:
            parts.append(chunk.text)
            calls.extend(chunk.tool_calls)
            last = chunk
        whole = (last or Chunk()).model_copy(update={"text": "".join(parts), "tool_calls": calls})
        yield self._answer(whole, context, vault, structured=structured)

    def chat(self, messages: Sequence[Message | dict[str, str]], **kwargs: Any) -> Completion:
        """A conversation turn: ``generate`` on a list of messages."""
        return self.generate(list(messages), **kwargs)


class OutputStream:
    """Checks a stream piece by piece, releasing only text that has been read."""

    def __init__(
        self,
        policy: Policy,
        context: ScanContext,
        vault: Vault,
        record: Callable[[GuardEvent], None],
        calls: Callable[[list[ToolCall]], list[ToolCall]] = list,
    ) -> None:
        self.policy = policy
        self.context = context
        self.vault = vault
        self.record = record
        self.calls = calls  # checks a chunk's finished tool calls
        self.released = ""  # raw text already shown (before restoring pseudonyms)
        self.reported: set[tuple[str, str, int, int]] = set()

    def run(self, upstream: Iterator[Chunk]) -> Iterator[Chunk]:
        """Yield checked chunks; the final one carries usage and the finish reason."""
        pending = ""
        for chunk in upstream:
            pending += chunk.text
            calls = self.calls(chunk.tool_calls) if chunk.tool_calls else []
            if chunk.usage is not None or chunk.finish_reason is not None:
                text, pending = self._step(pending, final=True)
                yield chunk.model_copy(update={"text": text, "tool_calls": calls})
                return
            if len(pending) > 2 * HOLD_CHARS:
                text, pending = self._step(pending, final=False)
                if text:
                    yield Chunk(text=text)
            if calls:  # a finished call is checked whole: nothing of it is held back
                yield Chunk(tool_calls=calls)
        if pending:
            yield Chunk(text=self._step(pending, final=True)[0])

    def _step(self, pending: str, final: bool) -> tuple[str, str]:
        """Check the lookback and ``pending``; release a head of it, keep the rest."""
        behind = self.released[-LOOKBACK_CHARS:]
        window = behind + pending
        shift = len(self.released) - len(behind)
        hits = self.policy.findings(window, "output", self.context)
        cut = (
            len(pending)
            if final
            else self._cut(
                pending, [(f.start - len(behind), f.end - len(behind)) for f, _, _ in hits]
            )
        )
        if cut <= 0:
            return "", pending
        low, high = len(behind), len(behind) + cut
        inside = [(f, a, flt) for f, a, flt in hits if f.start < high and f.end > low]
        events = [event(f, "output", a, shift=shift) for f, a, _ in inside]
        fresh = [e for e in events if self._fresh(e)]
        for one in fresh:
            self.record(one)
        if any(one.action == "block" for one in events):
            raise GuardBlockedError(fresh or events, self.policy.name)
        piece = pending[:cut]
        moved = [
            (Finding(f.type, f.start - low, f.end - low, f.score, f.filter, f.detail), a, flt)
            for f, a, flt in inside
            if f.start >= low and f.end <= high
        ]
        self.released += piece
        return self.vault.restore(edit(piece, moved, self.vault)), pending[cut:]

    def _cut(self, pending: str, spans: list[tuple[int, int]]) -> int:
        """A release point at a space, outside every finding and every half-read placeholder."""
        cut = pending.rfind(" ", 0, len(pending) - HOLD_CHARS)
        for start, end in sorted(spans, reverse=True):
            if start < cut < end:
                cut = start
        return self.vault.pending(pending[:cut]) if cut > 0 else 0

    def _fresh(self, one: GuardEvent) -> bool:
        key = (one.filter, one.type, one.start, one.end)
        if key in self.reported:
            return False
        self.reported.add(key)
        return True


def _asks_json(kwargs: dict[str, Any]) -> bool:
    """Whether the call asks for a JSON answer (a schema or JSON mode)."""
    options = kwargs.get("options")
    return bool(
        kwargs.get("json_schema")
        or kwargs.get("json_mode")
        or getattr(options, "json_schema", None)
        or getattr(options, "json_mode", False)
    )


def _strings(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_strings(item, fn) for item in value]
    if isinstance(value, dict):
        return {key: _strings(item, fn) for key, item in value.items()}
    return value


def in_json(text: str, fn: Callable[[str], str]) -> str:
    """``fn`` on every string value of the JSON ``text``, written out again when one changed
    (so a value with quotes stays escaped); text that is not a JSON object or list is
    handed to ``fn`` whole."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return fn(text)
    if not isinstance(value, dict | list):
        return fn(text)
    changed = _strings(value, fn)
    return text if changed == value else json.dumps(changed, ensure_ascii=False)


def _with_arguments(call: ToolCall, arguments: str) -> ToolCall:
    return call if arguments == call.arguments else call.model_copy(update={"arguments": arguments})


def _reparsed(parsed: Any, text: str) -> Any:
    """The answer parsed again after restoring, as it was parsed before (None if it no
    longer parses)."""
    try:
        if isinstance(parsed, BaseModel):
            return type(parsed).model_validate_json(text)
        return json.loads(text)
    except ValueError:
        return None
