"""Function calling, scored the way BFCL scores it: by the calls' names and arguments.

A row gives a prompt (``text``, or ``messages`` in the OpenAI chat form, tool turns
included), the ``tools`` offered (OpenAI tool dicts) and the ``expected`` calls
(``[{"name", "arguments"}]``; ``[]`` when the right answer is not to call anything). The
model answers with ``tools`` set and ``tool_choice="auto"``.

Arguments are matched like an abstract syntax tree, not as text: every expected argument
must be present with an equal value (strings by case and spacing, numbers by value); an
optional argument may be left out when the expected value is its default; the call may add
optional arguments the tool declares, but no other ones. Calls match as a set, in any order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fondasi.errors import BadInputError
from fondasi.evaluate.metrics import metric
from fondasi.evaluate.tasks import Context, Output, Predictor, Task, register
from fondasi.evaluate.tasks.extract import same

if TYPE_CHECKING:
    from fondasi.evaluate.config import CandidateSpec
    from fondasi.evaluate.datasets import Example
    from fondasi.models.contract import ModelHandle

TASK = "function_calling"


# -- matching calls -----------------------------------------------------------------------


def _calls(value: Any) -> list[Mapping[str, Any]]:
    """The calls of an output (or a reference's expected calls)."""
    calls = value.get("calls") if isinstance(value, Mapping) else None
    return [call for call in calls or [] if isinstance(call, Mapping)]


def _parameters(reference: Any, name: str) -> dict[str, Any]:
    tools = reference.get("tools") if isinstance(reference, Mapping) else None
    found = (tools or {}).get(name)
    return found if isinstance(found, dict) else {}


def arguments_match(expected: Mapping[str, Any], got: Any, parameters: Mapping[str, Any]) -> bool:
    """AST-style: expected arguments present and equal (an optional one may be absent when
    it is expected at its default); extra arguments only if the tool declares them optional."""
    if not isinstance(got, Mapping):
        return False
    declared = parameters.get("properties") or {}
    required = set(parameters.get("required") or [])
    for key, value in expected.items():
        if key in got:
            if not same(value, got[key]):
                return False
        else:
            spec = declared.get(key) if isinstance(declared, Mapping) else None
            if key in required or not isinstance(spec, Mapping) or "default" not in spec:
                return False
            if not same(value, spec["default"]):
                return False
    extra = set(got) - set(expected)
    return all(key in declared and key not in required for key in extra)


def matched(reference: Any, output: Any, *, names_only: bool = False) -> bool:
    """Whether the output's calls are the expected ones, one to one, in any order."""
    expected, made = _calls(reference), _calls(output)
    if len(expected) != len(made):
        return False
    left = list(made)
    for want in expected:
        name = want.get("name")
        parameters = _parameters(reference, str(name))
        for i, call in enumerate(left):
            if call.get("name") != name:
                continue
            wanted = want.get("arguments") or {}
            if names_only or arguments_match(wanted, call.get("arguments"), parameters):
                del left[i]
                break
        else:
            return False
    return True


def _share(hits: list[bool]) -> float:
    return sum(hits) / len(hits) if hits else 0.0


def _expecting(references: Sequence[Any], outputs: Sequence[Any], calls: bool) -> list[Any]:
    pairs = zip(references, outputs, strict=True)
    return [(ref, out) for ref, out in pairs if bool(_calls(ref)) is calls]


# -- metrics ------------------------------------------------------------------------------


@metric(TASK, "call_accuracy", "share of examples answered right: the calls, or no call")
def call_accuracy(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    return _share([matched(ref, out) for ref, out in zip(references, outputs, strict=True)])


@metric(TASK, "name_accuracy", "share of examples expecting calls that call the right functions")
def name_accuracy(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    pairs = _expecting(references, outputs, True)
    return _share([matched(ref, out, names_only=True) for ref, out in pairs])


@metric(TASK, "argument_accuracy", "share of examples expecting calls with every argument right")
def argument_accuracy(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    return _share([matched(ref, out) for ref, out in _expecting(references, outputs, True)])


@metric(TASK, "irrelevance", "share of examples expecting no call that make none")
def irrelevance(references: Sequence[Any], outputs: Sequence[Any], k: int) -> float:
    pairs = _expecting(references, outputs, False)
    return _share([not _calls(out) for _, out in pairs])


# -- predicting ---------------------------------------------------------------------------


def read_calls(completion: Any) -> dict[str, Any]:
    """A completion as the output record: its calls (arguments parsed) and its text."""
    calls = []
    for call in completion.tool_calls:
        try:
            arguments: Any = json.loads(call.arguments or "{}")
        except json.JSONDecodeError:
            arguments = None
        entry = {"name": call.name, "arguments": arguments}
        if not isinstance(arguments, dict):
            entry["raw"] = call.arguments
        calls.append(entry)
    return {"calls": calls, "text": completion.text.strip()}


class ToolsPredictor(Predictor):
    """One call per example with the row's tools offered."""

    per_example = True

    def __init__(self, candidate: CandidateSpec, context: Context) -> None:
        self.candidate = candidate
        self.context = context

    def fingerprint(self) -> dict[str, Any]:
        c = self.candidate
        return {"max_tokens": c.max_tokens, "seed": self.context.config.seed}

    def setup(self, model: ModelHandle) -> None:
        from fondasi.backends.base import Capability

        if not model.can(Capability.GENERATE):
            raise BadInputError(f"{model.id} cannot generate text")

    def predict(self, model: ModelHandle, examples: Sequence[Example]) -> list[Output]:
        return [self.one(model, example) for example in examples]

    def one(self, model: ModelHandle, example: Example) -> Output:
        """Offer the row's tools and read the calls."""
        from fondasi.types import GenerateOptions

        c = self.candidate
        options = GenerateOptions(
            max_tokens=c.max_tokens,
            stop=c.stop,
            seed=self.context.config.seed,
            tools=example.fields["tools"],
            tool_choice="auto",
        )
        completion = model.generate(example.fields["input"], options=options)
        found = read_calls(completion)
        broken = [call["name"] for call in found["calls"] if "raw" in call]
        note = f"arguments not a JSON object: {', '.join(broken)}" if broken else None
        return Output(found, completion.usage.total_tokens, completion.cost_usd, note)


def _json(value: Any, what: str, index: int) -> Any:
    """A field that a CSV cell holds as JSON text."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise BadInputError(f"example {index + 1}: {what} is not JSON") from None


@register
class FunctionCalling(Task):
    """Which function to call with which arguments, or none."""

    name = TASK
    summary = "tool calls (call accuracy, names, arguments, irrelevance), BFCL-style"
    needed = ("tools", "expected")
    optional = ("text", "messages")
    input_field = "input"
    reference_field = "expected"
    default_metrics = ("call_accuracy", "name_accuracy", "argument_accuracy", "irrelevance")

    def prepare(self, example: Example) -> Example:
        from fondasi.types import Message, Tool

        n = example.index
        fields = example.fields
        messages = _json(fields.get("messages"), "messages", n)
        text = fields.get("text")
        if messages:
            if not isinstance(messages, list):
                raise BadInputError(f"example {n + 1}: messages must be a list of turns")
            try:
                [Message.model_validate(turn) for turn in messages]
            except ValueError as exc:
                raise BadInputError(f"example {n + 1}: a message is not valid: {exc}") from None
            prompt: Any = messages
        elif isinstance(text, str) and text.strip():
            prompt = text
        else:
            raise BadInputError(f"example {n + 1}: give text or messages")
        tools = _json(fields["tools"], "tools", n)
        expected = _json(fields["expected"], "expected", n)
        try:
            offered = [Tool.of(tool) for tool in tools]
        except (TypeError, ValueError) as exc:
            raise BadInputError(f"example {n + 1}: tools: {exc}") from None
        names = {tool.name for tool in offered}
        if not isinstance(expected, list) or not all(
            isinstance(call, dict) and call.get("name") in names for call in expected
        ):
            raise BadInputError(
                f"example {n + 1}: expected is a list of {{name, arguments}} calls to the "
                "row's tools ([] when no call is right)"
            )
        reference = {
            "calls": [{"name": c["name"], "arguments": c.get("arguments") or {}} for c in expected],
            "tools": {tool.name: tool.parameters for tool in offered},
        }
        tool_dicts = [tool.openai() for tool in offered]
        return type(example)(
            n, example.id, {"input": prompt, "tools": tool_dicts, "expected": reference}
        )

    def predictor(self, candidate: CandidateSpec, context: Context) -> Predictor:
        if candidate.template or candidate.shots:
            raise BadInputError(
                "function_calling sends each row as it is: drop template: and shots:"
            )
        return ToolsPredictor(candidate, context)

    def example_score(self, reference: Any, output: Any) -> float:
        return float(matched(reference, output))

    def details(self, references: Sequence[Any], outputs: Sequence[Any]) -> dict[str, Any]:
        return {
            "per_function": {
                name: {
                    "accuracy": _share([matched(ref, out) for ref, out in pairs]),
                    "support": len(pairs),
                }
                for name, pairs in _by_function(references, outputs).items()
            }
        }

    def shown(self, value: Any) -> str:
        calls = _calls(value)
        if not calls:
            text = value.get("text") if isinstance(value, Mapping) else None
            return f"(no call) {text}".strip() if text else "(no call)"
        return "; ".join(
            f"{call.get('name')}({json.dumps(call.get('arguments'), ensure_ascii=False)})"
            for call in calls
        )


def _by_function(references: Sequence[Any], outputs: Sequence[Any]) -> dict[str, list[Any]]:
    """Examples by the first function they expect ("(none)" for no call)."""
    grouped: dict[str, list[Any]] = {}
    for ref, out in zip(references, outputs, strict=True):
        calls = _calls(ref)
        key = str(calls[0].get("name")) if calls else "(none)"
        grouped.setdefault(key, []).append((ref, out))
    return dict(sorted(grouped.items()))
