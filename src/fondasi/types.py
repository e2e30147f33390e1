"""The few value types every layer shares: messages, options, chunks, completions, labels.

They follow the OpenAI chat dialect, because that is what clients speak: a message has text,
images and tool calls; options carry tools, a tool choice, a JSON schema, a grammar and
log-probabilities; a chunk or completion carries tool calls and token log-probabilities.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator


class Role(StrEnum):
    """Who said a message."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class ToolCall(BaseModel):
    """A function the model asked to call, with its arguments as JSON text (as OpenAI sends)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Names the call; the tool message answering it repeats it.")
    name: str = Field(description="The function's name.")
    arguments: str = Field(default="{}", description="The arguments, a JSON object as text.")

    @property
    def args(self) -> dict[str, Any]:
        """The arguments parsed (an empty dict for empty text)."""
        value = json.loads(self.arguments or "{}")
        return value if isinstance(value, dict) else {}


def _content_parts(parts: list[Any]) -> tuple[str, list[str]]:
    """OpenAI content parts split into the text and the image addresses."""
    texts, images = [], []
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "input_text"):
            texts.append(str(part.get("text") or ""))
        elif kind in ("image_url", "input_image"):
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise ValueError("an image_url part needs image_url.url")
            images.append(url)
        else:
            raise ValueError(f"content part of type {kind!r}: only text and image_url are read")
    return "".join(texts), images


class Message(BaseModel):
    """One turn of a conversation: text, images (user turns) and tool calls (assistant turns).

    ``content`` may also be given as OpenAI content parts (``[{"type": "text", ...},
    {"type": "image_url", "image_url": {"url": ...}}]``); the text parts are joined into
    ``content`` and the images kept, in order, in ``images``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role = Field(description="system, user, assistant or tool.")
    content: str = Field(default="", description="The text of the turn.")
    images: tuple[str, ...] = Field(
        default=(), description="Images of the turn: data URLs, links or file paths."
    )
    tool_calls: tuple[ToolCall, ...] = Field(
        default=(), description="Functions an assistant turn asked to call."
    )
    tool_call_id: str | None = Field(
        default=None, description="On a tool turn: the call it answers."
    )
    name: str | None = Field(default=None, description="On a tool turn: the function's name.")

    @model_validator(mode="before")
    @classmethod
    def _parts(cls, data: Any) -> Any:
        if isinstance(data, dict):
            content = data.get("content")
            if isinstance(content, list):
                text, images = _content_parts(content)
                data = {**data, "content": text, "images": (*data.get("images", ()), *images)}
            elif content is None and "content" in data:
                data = {**data, "content": ""}
        return data

    def wire(self) -> dict[str, Any]:
        """The message as JSON with only the fields it uses (role and content at least)."""
        out = self.model_dump(mode="json", exclude_defaults=True)
        return {"role": self.role.value, "content": self.content, **out}

    @model_validator(mode="after")
    def _roles(self) -> Message:
        if self.tool_calls and self.role is not Role.ASSISTANT:
            raise ValueError("only an assistant turn carries tool_calls")
        if self.role is Role.TOOL and not self.tool_call_id:
            raise ValueError("a tool turn needs the tool_call_id it answers")
        return self


class Tool(BaseModel):
    """A function the model may call: its name, what it does and a JSON schema of arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="The function's name.")
    description: str = Field(default="", max_length=8000, description="What it does.")
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON schema of the arguments object.",
    )
    strict: bool = Field(default=False, description="Arguments must match the schema exactly.")

    @classmethod
    def of(cls, spec: Any) -> Tool:
        """A tool from an OpenAI tool dict, a bare function dict, a pydantic model or a Tool."""
        if isinstance(spec, Tool):
            return spec
        if isinstance(spec, type) and issubclass(spec, BaseModel):
            return cls(
                name=spec.__name__,
                description=(spec.__doc__ or "").strip(),
                parameters=spec.model_json_schema(),
            )
        if isinstance(spec, dict):
            function = (
                spec.get("function", spec) if spec.get("type", "function") == "function" else None
            )
            if not isinstance(function, dict):
                raise ValueError(f"tool of type {spec.get('type')!r}: only functions are served")
            fields = {k: function.get(k) for k in ("name", "description", "parameters", "strict")}
            return cls(**{k: v for k, v in fields.items() if v is not None})
        raise ValueError(f"a tool is an OpenAI tool dict or a pydantic model, not {type(spec)}")

    def openai(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry."""
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description:
            function["description"] = self.description
        if self.strict:
            function["strict"] = True
        return {"type": "function", "function": function}


class JsonSchema(BaseModel):
    """A JSON schema the answer must match (OpenAI's ``response_format.json_schema``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(default="answer", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    schema_: dict[str, Any] = Field(alias="schema", description="The JSON schema.")
    description: str | None = None
    strict: bool = Field(default=True, description="Hold the answer to the schema exactly.")
    _model: type[BaseModel] | None = PrivateAttr(default=None)

    @classmethod
    def of(cls, spec: Any) -> JsonSchema:
        """From a pydantic model class, a bare JSON schema or OpenAI's json_schema object."""
        if isinstance(spec, JsonSchema):
            return spec
        if isinstance(spec, type) and issubclass(spec, BaseModel):
            made = cls.model_validate(
                {"name": spec.__name__[:64], "schema": spec.model_json_schema()}
            )
            made._model = spec
            return made
        if isinstance(spec, dict) and isinstance(spec.get("schema"), dict):
            return cls.model_validate(spec)
        if isinstance(spec, dict):
            return cls.model_validate({"schema": spec})
        raise ValueError(f"a schema is a pydantic model or a JSON schema dict, not {type(spec)}")

    def parse(self, text: str) -> Any:
        """The answer read against the schema: the pydantic object, or the JSON value."""
        if self._model is not None:
            return self._model.model_validate_json(text)
        return json.loads(text)


ToolChoice = Literal["auto", "none", "required"] | str  # or the name of one function


class GenerateOptions(BaseModel):
    """How to generate text; the same options for every backend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int = Field(default=256, ge=1, le=32768, description="Most new tokens to produce.")
    temperature: float = Field(
        default=0.0, ge=0.0, le=2.0, description="0 decodes greedily; higher samples more freely."
    )
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    stop: list[str] = Field(
        default_factory=list, max_length=8, description="Strings that end the output (not kept)."
    )
    seed: int | None = Field(default=None, description="Seed for sampling, for repeatable output.")
    json_mode: bool = Field(
        default=False,
        description="Answer with one JSON object: the provider's JSON mode where it has one, "
        "otherwise fondasi asks for it and checks the answer.",
    )
    tools: tuple[Tool, ...] = Field(
        default=(), max_length=128, description="Functions the model may call."
    )
    tool_choice: ToolChoice = Field(
        default="auto",
        description="auto (text or calls), none, required (at least one call) or a "
        "function's name (exactly that call).",
    )
    parallel_tool_calls: bool = Field(
        default=True, description="Whether one answer may hold several tool calls."
    )
    json_schema: JsonSchema | None = Field(
        default=None,
        description="A JSON schema the answer must match: the provider's structured output "
        "where it has one, grammar-constrained decoding on local models.",
    )
    grammar: str | None = Field(
        default=None,
        max_length=200_000,
        description="A Lark grammar (llguidance syntax) the answer must match; local models.",
    )
    logprobs: bool = Field(default=False, description="Return each token's log-probability.")
    top_logprobs: int = Field(
        default=0, ge=0, le=20, description="Also the most likely alternatives at each token."
    )
    confidential: bool = Field(
        default=False,
        description="Never send this request off the machine: a privacy route answers it "
        "locally, a fallback chain skips hosted models, a hosted model refuses it.",
    )

    @field_validator("tools", mode="before")
    @classmethod
    def _tools(cls, value: Any) -> Any:
        return tuple(Tool.of(tool) for tool in value) if isinstance(value, list | tuple) else value

    @field_validator("json_schema", mode="before")
    @classmethod
    def _schema(cls, value: Any) -> Any:
        return None if value is None else JsonSchema.of(value)

    @model_validator(mode="after")
    def _choice(self) -> GenerateOptions:
        named = self.tool_choice not in ("auto", "none", "required")
        if named and self.tool_choice not in {tool.name for tool in self.tools}:
            known = ", ".join(tool.name for tool in self.tools) or "none"
            raise ValueError(f"tool_choice {self.tool_choice!r} is not a given tool ({known})")
        if self.tool_choice == "required" and not self.tools:
            raise ValueError("tool_choice 'required' needs tools")
        return self


class Usage(BaseModel):
    """Tokens a call consumed."""

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = Field(ge=0, description="Tokens in the prompt, template included.")
    completion_tokens: int = Field(ge=0, description="Tokens generated.")

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion."""
        return self.prompt_tokens + self.completion_tokens


FinishReason = Literal["stop", "length", "tool_calls"]


class TopLogprob(BaseModel):
    """One candidate token at a position and its natural-log probability."""

    model_config = ConfigDict(frozen=True)

    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(TopLogprob):
    """A generated (or echoed prompt) token, its log-probability and the likeliest others."""

    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class Answered(BaseModel):
    """Who answered a call and what it took: set on a ``Completion`` and a stream's last chunk."""

    model_config = ConfigDict(frozen=True)

    model: str | None = Field(default=None, description="The id of the model that answered.")
    version: str | None = Field(
        default=None,
        description="What identifies its weights: the package pin, the provider's model id, "
        "the tuned run or the file.",
    )
    seconds: float | None = Field(default=None, ge=0, description="Wall time of the call.")
    first_token_seconds: float | None = Field(default=None, description="Time to first text.")
    cost_usd: float | None = Field(
        default=None,
        description="API price of the tokens, or hardware time for local models; None if unknown.",
    )
    route: str | None = Field(
        default=None,
        description="Why this model answered: the fallbacks, privacy check or alias split "
        "the call went through; None for a plain model.",
    )


class Chunk(Answered):
    """A piece of streamed output; the last one carries usage, why it ended and who answered."""

    text: str = Field(default="", description="New text.")
    tool_calls: list[ToolCall] = Field(
        default_factory=list, description="Tool calls completed in this chunk."
    )
    logprobs: list[TokenLogprob] | None = Field(
        default=None, description="Log-probabilities of this chunk's tokens, when asked."
    )
    usage: Usage | None = Field(default=None, description="Set on the final chunk.")
    finish_reason: FinishReason | None = Field(default=None, description="Set on the final chunk.")

    @property
    def final(self) -> bool:
        """Whether this is the stream's last chunk."""
        return self.usage is not None or self.finish_reason is not None


class Completion(Answered):
    """A whole generated answer with its accounting."""

    model: str = Field(description="The id of the model that answered.")
    text: str = Field(description="Generated text, stop sequence removed.")
    usage: Usage = Field(description="Token counts.")
    finish_reason: FinishReason = Field(
        description="stop (natural end or stop string), length, or tool_calls."
    )
    seconds: float = Field(ge=0, description="Wall time of the call.")
    tool_calls: list[ToolCall] = Field(default_factory=list, description="Functions to call.")
    logprobs: list[TokenLogprob] | None = Field(
        default=None, description="Each token's log-probability, when asked."
    )
    parsed: Any = Field(
        default=None,
        description="The answer parsed against the asked schema (a pydantic object when a "
        "model class was given); None without a schema or when the answer was cut short.",
    )


class Label(BaseModel):
    """A class and its probability or similarity."""

    model_config = ConfigDict(frozen=True)

    label: str
    score: float


class ImageOptions(BaseModel):
    """How to draw an image from a prompt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(default=25, ge=1, le=200, description="Denoising steps.")
    width: int | None = Field(default=None, ge=64, le=2048, multiple_of=8, description="Pixels.")
    height: int | None = Field(default=None, ge=64, le=2048, multiple_of=8, description="Pixels.")
    guidance_scale: float = Field(default=7.5, ge=0, le=30, description="Prompt adherence.")
    negative_prompt: str | None = Field(default=None, description="What the image must not show.")
    seed: int | None = Field(default=None, description="Seed for repeatable images.")
    count: int = Field(default=1, ge=1, le=4, description="Images per prompt.")


class TranscribeOptions(BaseModel):
    """How to turn speech into text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    language: str | None = Field(
        default=None, description="ISO 639-1 code of the speech (id, en ...); None: detect it."
    )
    prompt: str | None = Field(
        default=None, description="Text the speech follows or words it uses (names, spelling)."
    )
    temperature: float = Field(default=0.0, ge=0, le=1, description="0: greedy, repeatable.")
    words: bool = Field(default=False, description="Also time each word.")


class Segment(BaseModel):
    """A stretch of speech with its text and when it was said, in seconds."""

    model_config = ConfigDict(frozen=True)

    start: float = Field(description="Seconds from the start of the audio.")
    end: float = Field(description="Seconds from the start of the audio.")
    text: str = Field(description="What was said, with its leading space trimmed.")
    avg_logprob: float | None = Field(default=None, description="Mean token log-probability.")
    no_speech_prob: float | None = Field(default=None, description="Chance it is not speech.")


class Transcription(BaseModel):
    """What was said in an audio file, in which language, and when."""

    model_config = ConfigDict(frozen=True)

    text: str = Field(description="The whole transcript.")
    language: str | None = Field(description="ISO 639-1 code, detected or as given.")
    language_probability: float | None = Field(
        default=None, description="How sure detection was (1.0 when the language was given)."
    )
    duration: float | None = Field(default=None, description="Length of the audio in seconds.")
    segments: list[Segment] = Field(default_factory=list, description="Timed stretches.")
    words: list[Segment] = Field(default_factory=list, description="Timed words, if asked.")
    model: str | None = Field(default=None, description="The model that answered.")
