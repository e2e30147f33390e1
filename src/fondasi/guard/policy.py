"""A policy: filters with actions, applied to a text. Findings become events; spans to mask
or pseudonymise are replaced (the longest wins where findings overlap); a block raises
``GuardBlockedError`` before anything else happens.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from fondasi.errors import BadInputError
from fondasi.guard.base import (
    OVERLAP_CHARS,
    Filter,
    Finding,
    ScanContext,
    drop_overlaps,
    filter_class,
)
from fondasi.guard.config import BUILTIN_POLICIES, GuardConfig, PolicyConfig
from fondasi.guard.events import Action, GuardBlockedError, GuardEvent, Stage
from fondasi.guard.text import is_binary
from fondasi.registry import unknown

if TYPE_CHECKING:
    from fondasi.guard.wrap import GuardedModel
    from fondasi.settings import Settings

EventSink = Callable[[GuardEvent], None]
MAX_TEXT_CHARS = 50_000_000  # bigger inputs are refused rather than scanned for minutes


@dataclass
class Vault:
    """Pseudonyms for one request: each value gets a stable [TYPE_N] and comes back after."""

    values: dict[str, str] = field(default_factory=dict)  # placeholder -> original
    names: dict[tuple[str, str], str] = field(default_factory=dict)  # (type, value) -> placeholder

    def placeholder(self, kind: str, value: str) -> str:
        """The same value always gets the same placeholder within one request."""
        key = (kind, value)
        if key not in self.names:
            count = sum(1 for k, _ in self.names if k == kind) + 1
            name = f"[{kind}_{count}]"
            self.names[key] = name
            self.values[name] = value
        return self.names[key]

    def restore(self, text: str) -> str:
        """Put the originals back; placeholders the model changed case or brackets of count too."""
        if not self.values:
            return text
        lookup = {name.strip("[]").upper(): value for name, value in self.values.items()}
        pattern = re.compile(
            r"\[?\b(" + "|".join(re.escape(k) for k in lookup) + r")\b\]?", re.IGNORECASE
        )
        return pattern.sub(lambda m: lookup[m.group(1).upper()], text)

    def pending(self, text: str) -> int:
        """Where a placeholder may still be arriving in a stream (an unclosed '[')."""
        start = text.rfind("[")
        return (
            start
            if start != -1 and "]" not in text[start:] and len(text) - start < 40
            else len(text)
        )


@dataclass
class Checked:
    """A text after a policy stage: what it became and what was found."""

    text: str
    events: list[GuardEvent]


class Policy:
    """Named filters with actions for input and output; build one with ``load_policy``."""

    def __init__(self, name: str, config: PolicyConfig, settings: Settings | None = None) -> None:
        self.name = name
        self.config = config
        self.settings = settings
        built: dict[str, Filter] = {}

        def instance(filter_name: str) -> Filter:
            if filter_name not in built:
                built[filter_name] = _filter_class(filter_name, config)(config, settings)
            return built[filter_name]

        self.rules: dict[Stage, list[tuple[Filter, Action]]] = {
            "input": [(instance(n), a) for n, a in config.input.items()],
            "output": [(instance(n), a) for n, a in config.output.items()],
        }
        self._instance = instance

    def __repr__(self) -> str:
        return f"Policy({self.name!r})"

    @property
    def whole_output(self) -> bool:
        """Whether an output filter needs the whole answer before anything is shown."""
        return any(f.whole_text for f, _ in self.rules["output"])

    def scan(
        self, text: str, stage: Stage | None = None, context: ScanContext | None = None
    ) -> list[Finding]:
        """What the policy's filters find in ``text`` (both stages' filters when none is named)."""
        _check_text(text)
        stages: list[Stage] = [stage] if stage else ["input", "output"]
        seen: set[str] = set()
        found: list[Finding] = []
        for one in stages:
            for filt, _ in self.rules[one]:
                if filt.name in seen:
                    continue
                seen.add(filt.name)
                found.extend(filt.scan_long(text, context or ScanContext(stage=one)))
        return sorted(found, key=lambda f: (f.start, f.end, f.filter))

    def scan_pieces(
        self, pieces: Iterable[str], stage: Stage | None = None
    ) -> Iterator[tuple[Finding, str]]:
        """Findings over text that arrives in pieces (a big file), with offsets into the whole.

        Memory is bounded by the piece size: each piece is scanned together with the tail of
        the one before, so a value cut in two by a piece boundary is still found once.
        """
        carried = ""  # the previous piece's tail
        offset = 0  # where ``carried`` starts in the whole text
        for piece in pieces:
            window = carried + piece
            for item in self.scan(window, stage):
                # Findings wholly inside the carried tail were reported with the piece before.
                if item.end > len(carried):
                    start, end = item.start + offset, item.end + offset
                    moved = Finding(item.type, start, end, item.score, item.filter, item.detail)
                    yield moved, window[item.start : item.end]
            keep = window[-OVERLAP_CHARS:]
            offset += len(window) - len(keep)
            carried = keep

    def redact(self, text: str) -> str:
        """Every piece of personal data masked (``[EMAIL]``), whatever the actions: for logs."""
        _check_text(text)
        names = ["pii"] + [
            n for n in ("names",) if n in self.config.input or n in self.config.output
        ]
        spans = [f for n in names for f in self._instance(n).scan_long(text, ScanContext())]
        return _replace(text, [(f, f"[{f.type}]") for f in drop_overlaps(spans)])

    def findings(
        self,
        text: str,
        stage: Stage,
        context: ScanContext | None = None,
        skip: frozenset[str] = frozenset(),
    ) -> list[tuple[Finding, Action, Filter]]:
        """Every finding of one stage with the action the policy gives it."""
        _check_text(text)
        context = context or ScanContext(stage=stage)
        return [
            (item, action, filt)
            for filt, action in self.rules[stage]
            if filt.name not in skip
            for item in filt.scan_long(text, context)
        ]

    def check(
        self,
        text: str,
        stage: Stage,
        context: ScanContext | None = None,
        vault: Vault | None = None,
        on_event: EventSink | None = None,
        part: int = 0,
        skip: frozenset[str] = frozenset(),
    ) -> Checked:
        """Apply one stage to ``text``: report every finding, then block, or mask/pseudonymise."""
        hits = self.findings(text, stage, context, skip)
        events = [event(item, stage, action, part) for item, action, _ in hits]
        for one in events:
            if on_event is not None:
                on_event(one)
        if any(one.action == "block" for one in events):
            raise GuardBlockedError(events, self.name)
        return Checked(edit(text, hits, vault if vault is not None else Vault()), events)

    def wrap(self, model: Any, on_event: EventSink | None = None) -> GuardedModel:
        """``model`` with this policy on every call: same generate/stream API."""
        from fondasi.guard.wrap import GuardedModel

        return GuardedModel(model, self, on_event)


def event(item: Finding, stage: Stage, action: Action, part: int = 0, shift: int = 0) -> GuardEvent:
    """The event for a finding (offsets moved by ``shift``)."""
    return GuardEvent(
        stage=stage,
        filter=item.filter,
        type=item.type,
        action=action,
        start=item.start + shift,
        end=item.end + shift,
        score=min(max(item.score, 0.0), 1.0),
        detail=item.detail,
        part=part,
    )


def edit(text: str, hits: list[tuple[Finding, Action, Filter]], vault: Vault) -> str:
    """Mask and pseudonymise the findings that ask for it; the longest wins where they overlap."""
    edits = {
        (f.start, f.end, f.type): (action, filt)
        for f, action, filt in hits
        if action in ("mask", "pseudonymise")
    }
    replacements: list[tuple[Finding, str]] = []
    for item in drop_overlaps(f for f, action, _ in hits if action in ("mask", "pseudonymise")):
        action, filt = edits[(item.start, item.end, item.type)]
        value = text[item.start : item.end]
        new = (
            vault.placeholder(item.type, value)
            if action == "pseudonymise"
            else filt.placeholder(item)
        )
        replacements.append((item, new))
    return _replace(text, replacements)


def _replace(text: str, replacements: list[tuple[Finding, str]]) -> str:
    """Replace spans right to left, so earlier offsets stay valid."""
    unique = {(f.start, f.end): new for f, new in replacements}
    for (start, end), new in sorted(unique.items(), reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _filter_class(name: str, config: PolicyConfig) -> type[Filter]:
    """A registered filter, or a model-backed one the policy configures under ``name``."""
    spec = config.model_filter(name)
    if spec is None:
        return filter_class(name)
    from fondasi.guard.model_filters import model_filter_class

    return model_filter_class(name, spec)


def _check_text(text: Any) -> None:
    if not isinstance(text, str):
        raise BadInputError(f"guard filters read text, not {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise BadInputError(
            f"text of {len(text):,} characters; scan files in pieces (guard scan --file)"
        )
    if is_binary(text):
        raise BadInputError("this looks like binary data, not text")


def policy_names(settings: Settings | None) -> list[str]:
    """Built-in and configured policy names."""
    configured = GuardConfig.model_validate(settings.guard).policies if settings else {}
    return sorted({*BUILTIN_POLICIES, *configured})


def load_policy(settings: Settings | None, name: str | None = None) -> Policy | None:
    """The named policy, or the configured default, or None when no policy is configured."""
    raw: dict[str, Any] = dict(getattr(settings, "guard", {}) or {})
    try:
        config = GuardConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise BadInputError(
            f"bad [guard] setting {where!r}: {first['msg'].removeprefix('Value error, ')}"
        ) from None
    chosen = name or config.default
    if chosen is None:
        return None
    if chosen in config.policies:
        return Policy(chosen, config.policies[chosen], settings)
    if chosen in BUILTIN_POLICIES:
        return Policy(chosen, PolicyConfig.model_validate(BUILTIN_POLICIES[chosen]), settings)
    raise unknown("guard policy", chosen, {*BUILTIN_POLICIES, *config.policies})
