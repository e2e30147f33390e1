"""What an evaluation run is: a dataset, a task, metrics and candidates (model × approach).

A run is described by a YAML file (``fondasi eval CONFIG.yaml``) or by flags; both become
one ``EvalConfig``. A mistake in the YAML is reported with its line number, taken from the
YAML node that holds the bad value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fondasi.errors import BadInputError

MAX_CONFIG_BYTES = 1_000_000


class DataSpec(BaseModel):
    """Where examples come from and which file column holds each field the task needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="JSONL, CSV, Parquet file, a `datasets` folder, or bundled:NAME.")
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Task field -> column in the file (e.g. text: ulasan, label: kategori).",
    )
    limit: int | None = Field(default=None, ge=1, description="Use only the first N rows.")
    corpus: DataSpec | None = Field(
        default=None, description="Retrieval: the documents (fields id and text)."
    )
    qrels: DataSpec | None = Field(
        default=None,
        description="Retrieval: judgements (fields query_id, doc_id, optional relevance) "
        "for queries without a relevant column; queries then need an id.",
    )


class CandidateSpec(BaseModel):
    """One model with one way of using it: zero-shot, few-shot, a template, a tuned folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="Catalog id, provider:model, hf:/gguf:/onnx: path or tuned:DIR.")
    name: str | None = Field(default=None, description="Label in the report; default derived.")
    template: str | None = Field(
        default=None, description="Prompt template name or .yaml path (language models)."
    )
    shots: int = Field(
        default=0, ge=0, le=64, description="Few-shot examples from the train split."
    )
    select: str | None = Field(
        default=None, description="How shots are chosen: fixed, random, balanced or knn."
    )
    head: str | None = Field(
        default=None,
        description="Embedding models: fit this head on the train split's embeddings: linear "
        "(logistic regression), knn (k from shots, else leave-one-out) or hybrid (TF-IDF + "
        "embeddings).",
    )
    tune: str | None = Field(
        default=None,
        description="Fine-tune the model on the train split with this tune method first "
        "(setfit, linear-head, lora, full ...) and evaluate what it learned.",
    )
    tune_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Settings of that tuning, as `fondasi tune` names them (pairs, epochs, "
        "max_steps, learning_rate ...).",
    )
    calibrate: bool = Field(
        default=True, description="Contextual calibration of label log-probabilities."
    )
    by: Literal["auto", "logprob", "generation"] = Field(
        default="auto",
        description="How a local language model classifies: by each label's log-probability "
        "(auto's choice) or by generating an answer that is read as a label.",
    )
    max_tokens: int = Field(default=128, ge=1, le=4096, description="Most new tokens per answer.")
    stop: list[str] = Field(default_factory=list, description="Strings that end an answer.")

    @property
    def approach(self) -> str:
        """The way the model is used, in words."""
        if self.tune:
            kind = f"tuned {self.tune}"
        elif self.model.startswith("tuned:"):
            # A tuned language model can still take shots; the name must say so.
            kind = "tuned" + (f" few-shot k={self.shots}" if self.shots else "")
        elif self.head:
            kind = f"{self.head} head" + (f" k={self.shots}" if self.shots else "")
        elif self.shots:
            kind = f"few-shot k={self.shots}" + (f" {self.select}" if self.select else "")
        else:
            kind = "zero-shot"
        if self.by != "auto":
            kind += f" by {self.by}"
        return kind + (f" · {Path(self.template).stem}" if self.template else "")

    @property
    def label(self) -> str:
        """The name shown in tables and charts."""
        if self.name:
            return self.name
        model = self.model
        if model.startswith("tuned:"):
            model = "tuned:" + Path(model[6:]).name
        return f"{model} · {self.approach}"

    @property
    def learns(self) -> bool:
        """Whether the train split changes its answers (few-shot, a head, tuning)."""
        return bool(self.shots or self.head or self.tune or self.select == "knn")


class CurveSpec(BaseModel):
    """A learning curve: the candidates that learn from the train split, given samples of it
    of growing size, scored on the same test examples."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sizes: list[int] = Field(
        default=[8, 16, 32, 64, 128, 256],
        min_length=1,
        description="Labelled examples per point; the whole train split is always the last.",
    )
    draws: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Random samples per size; the interval covers both the sample and the "
        "test examples.",
    )
    candidates: list[str] | None = Field(
        default=None,
        description="Names of the candidates to draw; default: every candidate that learns "
        "from the train split, and those that do not as flat lines.",
    )

    @field_validator("sizes")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(size < 2 for size in value):
            raise ValueError("every size needs at least 2 examples")
        return sorted(set(value))


class JudgeSpec(BaseModel):
    """A model that grades answers 1–5 against the reference, with the prompt shown."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="The judge model id.")
    template: str | None = Field(
        default=None,
        description="Template with variables input, reference, output and labels 1-5; "
        "default: fondasi's judge prompt.",
    )


class EvalConfig(BaseModel):
    """Everything one evaluation run needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, description="Title of the report.")
    task: str = Field(description="classification, generation, structured, function_calling ...")
    data: DataSpec = Field(description="The test examples.")
    train: DataSpec | None = Field(
        default=None, description="Examples to fit baselines and draw few-shot examples from."
    )
    split: float = Field(
        default=0.3,
        gt=0,
        lt=1,
        description="Without train: this fraction of the data becomes the train split.",
    )
    labels: list[str] | dict[str, str] | None = Field(
        default=None, description="Classification labels (or label -> description)."
    )
    metrics: list[str] = Field(
        default_factory=list, description="Metrics to compute; the first is the headline."
    )
    candidates: list[CandidateSpec] = Field(min_length=1, description="Models and approaches.")
    baselines: bool | list[str] = Field(
        default=True, description="Honest baselines: true (all for the task), false, or names."
    )
    judge: JudgeSpec | None = Field(default=None, description="Judge model for the judge metric.")
    curve: CurveSpec | None = Field(
        default=None,
        description="Learning curve: how quality grows with the number of labelled examples.",
    )
    json_schema: dict[str, Any] | str | None = Field(
        default=None,
        description="Structured extraction: the answers' JSON schema, inline or a .json file; "
        "default: NAME.schema.json(l) next to the data.",
    )
    seed: int = Field(default=0, description="Seed for splits, sampling and resampling.")
    bootstrap: int = Field(
        default=1000, ge=0, le=100_000, description="Bootstrap resamples for confidence intervals."
    )
    batch_size: int = Field(default=16, ge=1, le=4096, description="Examples per local call.")
    concurrency: int = Field(default=4, ge=1, le=64, description="Parallel calls to hosted APIs.")
    requests_per_minute: float | None = Field(
        default=None, gt=0, description="Most calls a minute to each hosted model."
    )
    executor: str = Field(
        default="local",
        description="local: this process; ray: a Ray cluster (extra [ray]); or a plug-in's.",
    )
    ray_address: str | None = Field(
        default=None, description="Ray cluster address; default: start a local Ray instance."
    )
    cache: str | None = Field(
        default=None, description="Prediction cache file; default FONDASI_HOME/evals/cache.sqlite."
    )

    @field_validator("candidates")
    @classmethod
    def _unique_names(cls, value: list[CandidateSpec]) -> list[CandidateSpec]:
        seen: set[str] = set()
        for candidate in value:
            if candidate.label in seen:
                raise ValueError(f"two candidates are both called {candidate.label!r}; add name:")
            seen.add(candidate.label)
        return value


def _node_at(root: yaml.Node | None, loc: tuple[int | str, ...]) -> yaml.Node | None:
    """The deepest YAML node on the path ``loc`` (mapping keys and list indices)."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((value for key, value in node.value if key.value == part), None)
            if found is None:
                # The key is missing or unknown: point at the key itself, or the mapping.
                key = next((key for key, _ in node.value if key.value == part), None)
                return key or node
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def _where(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "config"


def parse_config(text: str, source: str = "config") -> EvalConfig:
    """A config from YAML text; an error names ``source:LINE`` and the field."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BadInputError(f"{source}{line}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise BadInputError(f"{source}: an eval config is a mapping (task, data, candidates ...)")
    try:
        config = EvalConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(part for part in first["loc"] if not str(part).startswith("function-"))
        # pydantic tags union branches in the location ("list[str]"); they are not YAML keys.
        keys = tuple(p for p in loc if isinstance(p, int) or not any(c in p for c in "[]"))
        node = _node_at(root, keys)
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = f"unknown field {keys[-1]!r}"
        raise BadInputError(f"{source}{line}: {_where(keys)}: {message}") from None
    check_names(config, root, source)
    return config


def check_names(config: EvalConfig, root: yaml.Node | None, source: str) -> None:
    """Task, metric, baseline, executor and selector names exist; a wrong one names its line."""
    from fondasi.backends.heads import head
    from fondasi.evaluate.baselines import for_task
    from fondasi.evaluate.executors import EXECUTORS
    from fondasi.evaluate.metrics import choose
    from fondasi.evaluate.tasks import get_task
    from fondasi.prompts.select import selector

    checks: list[tuple[tuple[int | str, ...], Any]] = [(("task",), lambda: get_task(config.task))]
    checks += [
        (("metrics", n), lambda name=name: choose(config.task, name))
        for n, name in enumerate(config.metrics)
    ]
    checks.append((("baselines",), lambda: for_task(config.task, config.baselines)))
    checks.append((("executor",), lambda: EXECUTORS.get(config.executor)))
    checks += [
        (("candidates", n, "select"), lambda name=c.select: selector(name))
        for n, c in enumerate(config.candidates)
        if c.select
    ]
    checks += [
        (("candidates", n, "head"), lambda name=c.head: head(name))
        for n, c in enumerate(config.candidates)
        if c.head
    ]
    for loc, check in checks:
        try:
            check()
        except BadInputError as exc:
            node = _node_at(root, loc)
            line = f":{node.start_mark.line + 1}" if node is not None else ""
            raise BadInputError(f"{source}{line}: {_where(loc)}: {exc}") from None


def load_config(path: Path | str) -> EvalConfig:
    """Read an eval config file; relative data paths are taken from the file's folder."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BadInputError(f"no such config file: {path}")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise BadInputError(f"{path}: a config is at most {MAX_CONFIG_BYTES // 1000} kB")
    config = parse_config(path.read_text(encoding="utf-8"), str(path))
    return config.model_copy(update=_anchored(config, path.parent))


def _anchor(spec: DataSpec | None, folder: Path) -> DataSpec | None:
    if spec is None:
        return None
    path = spec.path
    if not path.startswith("bundled:") and not Path(path).expanduser().is_absolute():
        path = str(folder / path)
    return spec.model_copy(
        update={
            "path": path,
            "corpus": _anchor(spec.corpus, folder),
            "qrels": _anchor(spec.qrels, folder),
        }
    )


def _anchored(config: EvalConfig, folder: Path) -> dict[str, Any]:
    """Data and template paths relative to the config file, as a user writes them."""
    candidates = []
    for candidate in config.candidates:
        template = candidate.template
        if template and template.endswith((".yaml", ".yml")) and not Path(template).is_absolute():
            template = str(folder / template)
        model = candidate.model
        if model.startswith("tuned:") and not Path(model[6:]).expanduser().is_absolute():
            model = "tuned:" + str(folder / model[6:])
        candidates.append(candidate.model_copy(update={"template": template, "model": model}))
    schema = config.json_schema
    if isinstance(schema, str) and not Path(schema).expanduser().is_absolute():
        schema = str(folder / schema)
    return {
        "json_schema": schema,
        "data": _anchor(config.data, folder),
        "train": _anchor(config.train, folder),
        "candidates": candidates,
    }
