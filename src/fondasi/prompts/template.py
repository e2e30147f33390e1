"""A prompt template as data: instruction, input, output format and few-shot examples.

One YAML file per template. Text fields are Jinja2 (sandboxed); besides the variables they
see ``labels``, ``label_descriptions``, ``schema`` (JSON text) and ``fields`` (its keys),
and ``n`` in an example header. A template renders to
chat messages for chat models and to plain text for base models::

    single layout, or a base model         turns layout (chat models)
    ------------------------------         ------------------------------------
    [system]                               system: [system]
    instruction                            user: instruction + example 1 input
    header(1) input(ex 1) sep answer(ex 1) assistant: answer(ex 1)
    ...                                    user: input(ex 2) ...
    input(query)                           user: input(query)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fondasi.prompts.sandbox import PromptError, check

if TYPE_CHECKING:
    from fondasi.prompts.render import Rendered

TEXT_FIELDS = ("system", "instruction", "input", "answer", "example_header")


class LabelSpec(BaseModel):
    """One class of a classification template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str | None = Field(
        default=None, description="What the label means; embedding classifiers compare to it."
    )
    synonyms: list[str] = Field(
        default_factory=list, description="Other words a model may answer with for this label."
    )


class OutputSpec(BaseModel):
    """What the answer should be and how to read it."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    format: Literal["text", "label", "json"] = Field(
        default="text", description="Free text, one label of a closed set, or JSON."
    )
    labels: dict[str, LabelSpec] = Field(
        default_factory=dict, description="The closed set of labels (format: label)."
    )
    json_schema: dict[str, Any] | None = Field(
        default=None, alias="schema", description="JSON Schema the answer must match (json)."
    )

    @field_validator("labels", mode="before")
    @classmethod
    def _names_to_specs(cls, value: Any) -> Any:
        """Accept a plain list of names as well as a mapping of name -> spec."""
        if isinstance(value, list):
            return {str(name): {} for name in value}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> OutputSpec:
        if self.format == "label" and len(self.labels) == 1:
            # No labels at all is fine: the caller gives them (generic classifiers).
            raise ValueError("format: label needs at least two labels, or none (the caller's)")
        if self.format != "label" and self.labels:
            raise ValueError("labels are only for format: label")
        if self.format != "json" and self.json_schema is not None:
            raise ValueError("schema is only for format: json")
        return self


class FewShot(BaseModel):
    """How examples are chosen and laid out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int | None = Field(default=None, ge=0, description="Examples to show; None shows all.")
    select: str = Field(
        default="fixed", description="fixed, random, balanced or knn (see `fondasi prompt`)."
    )
    seed: int = Field(default=0, description="Seed for random and balanced selection.")
    layout: Literal["turns", "single"] = Field(
        default="turns",
        description="turns: each example a user/assistant pair; single: all in one user turn.",
    )
    label_field: str = Field(
        default="output", description="The example field holding the label (balanced selection)."
    )


class PromptTemplate(BaseModel):
    """A zero-shot or few-shot prompt, loaded from YAML and rendered with variables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="Id, also the file name.")
    description: str = Field(description="One line: what the template does.")
    task: str = Field(
        default="generation", description="translation, classification, extraction ..."
    )
    language: str = Field(default="en", description="Language of the template's own words.")
    variables: list[str] = Field(
        default_factory=lambda: ["input"], description="Variables the caller must give."
    )
    system: str | None = Field(default=None, description="System prompt (Jinja).")
    instruction: str = Field(default="", description="What to do, before the examples (Jinja).")
    input: str = Field(
        default="{{ input }}", description="How the input is written, for query and examples."
    )
    answer: str = Field(default="{{ output }}", description="How an example's answer is written.")
    example_header: str = Field(
        default="", description="Before each example in the single layout; knows n (1, 2 ...)."
    )
    answer_separator: str = Field(
        default=" ", description="Between an example's input and answer (single layout)."
    )
    separator: str = Field(default="\n\n", description="Between blocks of the single layout.")
    examples: list[dict[str, str]] = Field(
        default_factory=list, description="Few-shot examples: values for input and answer."
    )
    fewshot: FewShot = Field(default_factory=FewShot, description="How examples are used.")
    output: OutputSpec = Field(default_factory=OutputSpec, description="What the answer is.")

    @model_validator(mode="after")
    def _compiles(self) -> PromptTemplate:
        for field in TEXT_FIELDS:
            source = getattr(self, field)
            if source:
                check(source, f"{self.name}.{field}")
        return self

    @property
    def label_names(self) -> list[str]:
        """The closed set of labels, in the template's order."""
        return list(self.output.labels)

    def shots(self, examples: Sequence[Mapping[str, str]] | None = None) -> list[dict[str, str]]:
        """The example pool: given examples, else the template's own."""
        pool = [dict(example) for example in (examples if examples is not None else self.examples)]
        for number, example in enumerate(pool, 1):
            if not isinstance(example, dict) or any(
                not isinstance(v, str) for v in example.values()
            ):
                raise PromptError(f"{self.name}: example {number} must map names to strings")
        return pool

    @classmethod
    def load(cls, ref: str, home: Path | None = None) -> PromptTemplate:
        """A bundled or user template by name (``FONDASI_HOME/prompts``), or a YAML path."""
        from fondasi.prompts.library import PromptLibrary
        from fondasi.settings import Settings

        return PromptLibrary.load(home or Settings.load().home).get(ref)

    def render(
        self,
        variables: Mapping[str, Any] | None = None,
        /,
        *,
        shots: int | None = None,
        select: str | None = None,
        seed: int | None = None,
        examples: Sequence[Mapping[str, str]] | None = None,
        embedder: Any = None,
        layout: Literal["turns", "single"] | None = None,
        labels: Sequence[str] | None = None,
        **values: Any,
    ) -> Rendered:
        """Render with variables (a mapping or keywords) into messages and text.

        ``shots``/``select``/``seed`` override the template's few-shot settings; ``embedder``
        (a ``fondasi.model`` with ``embed``, or a callable) powers ``select="knn"``;
        ``labels`` replaces the label set.
        """
        from fondasi.prompts.render import render

        embed = getattr(embedder, "embed", embedder)
        return render(
            self,
            {**(variables or {}), **values},
            shots=shots,
            select=select,
            seed=seed,
            examples=examples,
            embed=embed,
            layout=layout,
            labels=labels,
        )
