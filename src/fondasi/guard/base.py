"""The one contract every guard filter meets, and the registry filters join with a decorator.

A filter scans text and returns findings (type, span, score). What happens to a finding
(flag, mask, pseudonymise, block) is the policy's business, done once in ``policy.py``; a
filter only says which actions make sense for it and how a masked span should read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, TypeVar

from fondasi.guard.events import ACTIONS, Action, Stage
from fondasi.registry import Registry

if TYPE_CHECKING:
    from fondasi.guard.config import PolicyConfig
    from fondasi.settings import Settings

# Modules whose filters register on import; a third-party filter comes through the
# ``fondasi.guard_filters`` entry-point group.
BUILTIN_MODULES = (
    "fondasi.guard.pii",
    "fondasi.guard.names",
    "fondasi.guard.toxicity",
    "fondasi.guard.injection",
    "fondasi.guard.output",
)
CHUNK_CHARS = 64_000  # a filter never sees more than this at once
OVERLAP_CHARS = 512  # findings that straddle a chunk edge are found in the overlap


@dataclass(frozen=True)
class Finding:
    """Something a filter found: its type and where it is, never the text itself."""

    type: str  # NIK, NPWP, PHONE, EMAIL, NAME, CARD, IBAN, IP, SECRET, toxicity, injection ...
    start: int
    end: int
    score: float = 1.0
    filter: str = "pii"
    detail: str = ""  # a rule name, safe to log


@dataclass(frozen=True)
class ScanContext:
    """What a filter may need besides the text: the stage, the system prompt, the input."""

    stage: Stage = "input"
    system: str | None = None  # the system prompt, for leak checks on output
    source: str = ""  # the input the model saw, for "PII in output that was not in input"


class Filter:
    """Base of every filter: ``scan`` finds; the class attributes say how it may be used."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    stages: ClassVar[frozenset[Stage]] = frozenset({"input", "output"})
    actions: ClassVar[frozenset[Action]] = frozenset(ACTIONS)
    threshold: ClassVar[float] = 0.5  # default; a policy may set its own
    whole_text: ClassVar[bool] = False  # needs the whole output: a stream is held back

    def __init__(self, config: PolicyConfig, settings: Settings | None) -> None:
        self.config = config
        self.settings = settings
        self.min_score = config.thresholds.get(self.name, self.threshold)

    def scan(self, text: str, context: ScanContext) -> list[Finding]:
        """Every finding in ``text`` at or above the threshold."""
        raise NotImplementedError

    def placeholder(self, finding: Finding) -> str:
        """What a masked span reads as."""
        return f"[{finding.type}]"

    def scan_long(self, text: str, context: ScanContext) -> list[Finding]:
        """``scan`` over bounded chunks, so huge texts cost bounded memory per call."""
        if len(text) <= CHUNK_CHARS:
            return self.scan(text, context)
        found: dict[tuple[str, int, int], Finding] = {}
        for offset, piece in chunks(text):
            for item in self.scan(piece, context):
                moved = Finding(
                    item.type,
                    item.start + offset,
                    item.end + offset,
                    item.score,
                    item.filter,
                    item.detail,
                )
                found.setdefault((moved.type, moved.start, moved.end), moved)
        return sorted(found.values(), key=lambda f: (f.start, f.end))


def _adopt(name: str, member: object) -> type[Filter]:
    if not (isinstance(member, type) and issubclass(member, Filter)):
        raise TypeError(f"{member!r} is not a subclass of fondasi.guard.Filter")
    member.name = name  # a policy names the filter by what it was registered as
    return member


FILTERS: Registry[type[Filter]] = Registry(
    "guard filter", group="fondasi.guard_filters", builtins=BUILTIN_MODULES, adopt=_adopt
)
F = TypeVar("F", bound=type[Filter])


def register(name: str) -> Callable[[F], F]:
    """Class decorator: make a filter available to policies under ``name``."""

    def add(cls: F) -> F:
        FILTERS.register(name, cls)
        return cls

    return add


def available() -> dict[str, type[Filter]]:
    """Every registered filter by name: built-ins and those plug-ins add."""
    return dict(FILTERS.items())


def filter_class(name: str) -> type[Filter]:
    """The filter registered as ``name``; an unknown name suggests close ones."""
    return FILTERS.get(name)


def chunks(
    text: str, size: int = CHUNK_CHARS, overlap: int = OVERLAP_CHARS
) -> Iterator[tuple[int, str]]:
    """(offset, piece) windows over ``text`` that overlap by ``overlap`` characters."""
    step = size - overlap
    for offset in range(0, max(len(text) - overlap, 1), step):
        yield offset, text[offset : offset + size]


def drop_overlaps(findings: Iterable[Finding]) -> list[Finding]:
    """Keep the longest (then highest-scoring) of overlapping findings of one filter."""
    ordered = sorted(findings, key=lambda f: (-(f.end - f.start), -f.score, f.start))
    kept: list[Finding] = []
    for item in ordered:
        if all(item.end <= k.start or item.start >= k.end for k in kept):
            kept.append(item)
    return sorted(kept, key=lambda f: (f.start, f.end))
