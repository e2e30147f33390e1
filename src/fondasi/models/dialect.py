"""Tools, JSON schemas, grammars, log-probabilities and images for every backend.

A backend that speaks a part of the chat dialect itself (``fondasi.backends.base.speaks``)
gets the options as they are. For one that does not, the handle does it here:

    tools        local models get a grammar that lets them write either plain text or
                 ``<tool_call>{"name": ..., "arguments": ...}</tool_call>`` blocks whose
                 JSON matches one function's schema (``tool_choice`` narrows it), the tools
                 in the system prompt unless their chat template lays them out, and earlier
                 tool turns written as text; the blocks come back as ``ToolCall`` objects
    json_schema  local models are held to the schema's grammar; models that can be held
                 to nothing are asked for it and their answer is checked
    json_mode    a local model is held to "one JSON object" by grammar too

Whatever answer this returns parses and validates: a tool call's arguments match its
function's schema and a structured answer matches its schema, or the call fails with
``OutputParseError``. An answer cut short by ``max_tokens`` comes back as its raw text
with ``finish_reason="length"`` and no tool calls, as OpenAI returns one.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fondasi.backends.base import speaks
from fondasi.backends.constrained import TOOL_CALL_TAG, json_rule
from fondasi.models.contract import CapabilityError
from fondasi.prompts.json_mode import INSTRUCTION as JSON_INSTRUCTION
from fondasi.prompts.parse import OutputParseError, parse_json
from fondasi.prompts.tools import (
    schema_instruction,
    tool_call_text,
    tool_instruction,
    tool_result_text,
)
from fondasi.types import Chunk, GenerateOptions, JsonSchema, Message, Role, Tool, ToolCall

# A call is a <tool_call> block (Qwen's and Hermes' templates), or the same object in a
# ```json block or bare, as small Qwen models write it when they are offered tools.
CALLS = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>|```json\s*(.*?)\s*```", re.S)
QUOTED = 200  # characters of a bad answer quoted in errors
# Plain text may not open with "<", "`" or "{": that is how the forms of a tool call start,
# so the first character tells text from calls and a text answer streams at once.
PLAIN_TEXT = r"TEXT: /[^<`{](.|\n)*/"
CALL_OPENINGS = ("<", "`", "{")


@dataclass(frozen=True)
class Dialect:
    """What the handle does for one call around a backend, decided before it starts."""

    options: GenerateOptions  # what the backend is given
    instruction: str | None = None  # added to the system prompt
    tools: tuple[Tool, ...] = ()  # the functions the answer may call (read by the handle)
    only_calls: bool = False  # the answer is calls and nothing else (required or named)
    textual_turns: bool = False  # earlier tool turns are written into the text
    check: JsonSchema | None = None  # a text answer is validated against this schema

    @classmethod
    def of(cls, backend: object, options: GenerateOptions, model: str) -> Dialect:
        """The plan for ``options`` on ``backend``; a part no one can do is a clear error."""
        if options.logprobs and not speaks(backend, "native_logprobs"):
            raise CapabilityError(f"{model} does not return log-probabilities")
        local = speaks(backend, "constrains")
        if options.grammar is not None and not local:
            raise CapabilityError(f"{model} cannot be held to a grammar (local models can)")
        plan = cls(options)
        if options.tools and not speaks(backend, "native_tools"):
            plan = plan._with_tools(backend, local, model)
        if options.json_schema is not None and not speaks(backend, "native_schema"):
            plan = plan._with_schema(options.json_schema, local)
        elif options.json_mode and local and not plan.tools:
            grammar = "start: " + json_rule({"type": "object"})
            options = _with(plan.options, grammar=grammar, json_mode=False)
            plan = replace(plan, options=options, instruction=JSON_INSTRUCTION)
        return plan

    def _with_tools(self, backend: object, local: bool, model: str) -> Dialect:
        options = self.options
        renders = bool(getattr(backend, "renders_tools", False))
        if options.tool_choice == "none":  # the model is not told of them, so cannot call
            return replace(self, options=_with(options, tools=()), textual_turns=not renders)
        if not local:
            raise CapabilityError(f"{model} cannot call tools")
        named = options.tool_choice not in ("auto", "required")
        offered = tuple(t for t in options.tools if not named or t.name == options.tool_choice)
        only = options.tool_choice != "auto"
        parallel = options.parallel_tool_calls and not named
        return replace(
            self,
            options=_with(
                options,
                grammar=tool_grammar(offered, parallel, only, None),
                tools=options.tools if renders else (),  # a template lays them out itself
                tool_choice=options.tool_choice if renders else "auto",
            ),
            instruction=None if renders else tool_instruction(options.tools, options.tool_choice),
            tools=offered,
            only_calls=only,
            textual_turns=not renders,
        )

    def _with_schema(self, schema: JsonSchema, local: bool) -> Dialect:
        if self.only_calls:  # the answer is tool calls: the schema has nothing to hold
            return self
        ask = schema_instruction(schema.schema_)
        instruction = f"{self.instruction}\n\n{ask}" if self.instruction else ask
        if not local:  # asked for, collected whole (JSON mode) and checked
            options = _with(self.options, json_mode=True)
            return replace(self, options=options, instruction=instruction, check=schema)
        if self.tools:  # tool calls, or else an answer matching the schema
            parallel = self.options.parallel_tool_calls and len(self.tools) > 0
            grammar = tool_grammar(self.tools, parallel, False, schema)
        else:
            grammar = "start: " + json_rule(schema.schema_)
        options = _with(self.options, grammar=grammar, json_mode=False)
        return replace(self, options=options, instruction=instruction, check=schema)

    @property
    def passes_through(self) -> bool:
        """Whether the backend's answer comes back as it is (it speaks all that was asked)."""
        return not self.tools and self.check is None

    def system(self, system: str | None) -> str | None:
        """The system prompt with this call's instruction after the user's own."""
        if not self.instruction:
            return system
        return f"{system}\n\n{self.instruction}" if system else self.instruction

    def turns(self, messages: Sequence[Message]) -> list[Message]:
        """Earlier tool calls and results written as text, for templates without tools."""
        if not self.textual_turns:
            return list(messages)
        out: list[Message] = []
        for message in messages:
            if message.tool_calls:
                written = [tool_call_text(call.name, _args(call)) for call in message.tool_calls]
                text = "\n".join(filter(None, [message.content, *written]))
                out.append(Message(role=Role.ASSISTANT, content=text))
            elif message.role is Role.TOOL:
                shown = tool_result_text(message.content)
                last = out[-1] if out else None
                if last and last.role is Role.USER and last.content.endswith("</tool_response>"):
                    shown = f"{out.pop().content}\n{shown}"  # results of parallel calls
                out.append(Message(role=Role.USER, content=shown))
            else:
                out.append(message)
        return out

    def answer(self, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
        """The backend's stream, with tool-call blocks read into calls and answers checked.

        Plain text streams as it comes; an answer that opens a tool call is held until the
        end and returned as calls on the final chunk.
        """
        parts: list[str] = []
        calling: bool | None = True if self.only_calls else None if self.tools else False
        for chunk in chunks:
            if calling is None and chunk.text:
                # Plain text never opens like a call; a JSON answer opens like a bare one.
                openings = CALL_OPENINGS if self.check is None else CALL_OPENINGS[:2]
                calling = chunk.text.startswith(openings)
            parts.append(chunk.text)
            if chunk.final:
                yield self._final(chunk, "".join(parts), bool(calling))
            elif not calling:
                yield chunk  # plain text, or nothing yet
            elif chunk.logprobs:
                yield chunk.model_copy(update={"text": ""})

    def _final(self, chunk: Chunk, text: str, calling: bool) -> Chunk:
        if calling and call_blocks(text):
            # Whole calls are the answer, even when max_tokens cut a further one short
            # (small models repeat a call until the budget runs out).
            calls = read_calls(text, self.tools)
            return chunk.model_copy(
                update={"text": "", "tool_calls": calls, "finish_reason": "tool_calls"}
            )
        if chunk.finish_reason == "length":
            return chunk.model_copy(update={"text": text}) if calling else chunk
        if calling:
            raise OutputParseError(f"the answer holds no whole tool call: {text[:QUOTED]!r}")
        if self.check is not None:
            validate(text, self.check)
        return chunk


def tool_grammar(
    tools: Sequence[Tool], parallel: bool, only_calls: bool, text_schema: JsonSchema | None
) -> str:
    """A Lark grammar: tool-call blocks (one or several), or else plain text or a JSON answer."""
    options = [
        {
            "type": "object",
            "properties": {"name": {"const": tool.name}, "arguments": tool.parameters},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for tool in tools
    ]
    value = json_rule({"anyOf": options})
    call = (
        f'call: "{TOOL_CALL_TAG}\\n" {value} "\\n</tool_call>" | "```json\\n" {value} "\\n```"'
        # Bare objects are calls only where a JSON answer is not also allowed.
        + ("" if text_schema is not None else f" | {value}")
    )
    calls = 'calls: call ("\\n" call)*' if parallel else "calls: call"
    if only_calls:
        return f"start: calls\n{calls}\n{call}\n"
    if text_schema is not None:
        return f"start: calls | answer\n{calls}\n{call}\nanswer: {json_rule(text_schema.schema_)}\n"
    return f"start: calls | TEXT\n{calls}\n{call}\n{PLAIN_TEXT}\n"


def call_blocks(text: str) -> list[str]:
    """The JSON text of each call an answer writes, in whichever form it wrote them."""
    blocks = [tagged or fenced for tagged, fenced in CALLS.findall(text)]
    rest = text.strip()
    if blocks or not rest.startswith("{"):
        return blocks
    decoder = json.JSONDecoder()
    while rest.startswith("{"):  # bare objects, one after another
        try:
            _, end = decoder.raw_decode(rest)
        except json.JSONDecodeError:
            blocks.append(rest)  # read_calls says why it is not a call
            break
        blocks.append(rest[:end])
        rest = rest[end:].strip()
    return blocks


def read_calls(text: str, tools: Sequence[Tool]) -> list[ToolCall]:
    """The tool-call blocks of an answer as calls; anything unreadable is an error."""
    known = {tool.name: tool for tool in tools}
    calls: list[ToolCall] = []
    seen: set[tuple[str, str]] = set()
    for block in call_blocks(text):
        try:
            value = json.loads(block)
        except json.JSONDecodeError:
            raise OutputParseError(f"a tool call is not JSON: {block[:QUOTED]!r}") from None
        name = value.get("name") if isinstance(value, dict) else None
        if name not in known or not isinstance(value.get("arguments", {}), dict):
            raise OutputParseError(f"a tool call names no given function: {block[:QUOTED]!r}")
        arguments = json.dumps(value.get("arguments", {}), ensure_ascii=False)
        _validate(arguments, known[name].parameters, f"the arguments of {name}")
        if (name, arguments) in seen:  # the same call twice is asked once
            continue
        seen.add((name, arguments))
        calls.append(ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=name, arguments=arguments))
    if not calls:
        raise OutputParseError(f"the answer holds no tool call: {text[:QUOTED]!r}")
    return calls


def validate(text: str, schema: JsonSchema) -> None:
    """Raise ``OutputParseError`` unless ``text`` is JSON valid under the schema."""
    _validate(text, schema.schema_, "the answer")


def _validate(text: str, schema: dict[str, Any], what: str) -> None:
    try:
        parse_json(text, schema)
    except OutputParseError as exc:
        raise OutputParseError(f"{what} does not match its schema: {exc}") from None


def _args(call: ToolCall) -> dict[str, Any]:
    try:
        return call.args
    except json.JSONDecodeError:
        return {"_raw": call.arguments}


def _with(options: GenerateOptions, **changes: Any) -> GenerateOptions:
    return GenerateOptions(**{**dict(options), **changes})
