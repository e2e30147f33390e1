"""Load model cards from YAML and query them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from fondasi.catalog.schema import Kind, ModelCard, Task
from fondasi.errors import CatalogError, UnknownModelError
from fondasi.registry import close_matches

try:  # the C loader is several times faster; fall back where libyaml is absent
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


def builtin_card_files() -> list[Path]:
    """The YAML files shipped with fondasi, one per model family."""
    folder = resources.files("fondasi.catalog") / "cards"
    return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def read_cards(path: Path) -> list[ModelCard]:
    """Parse and validate every card in one YAML file."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: cannot read cards: {exc}") from exc
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise CatalogError(f"{path}: expected a list of cards, got {type(raw).__name__}")
    cards = []
    for index, entry in enumerate(raw):
        try:
            cards.append(ModelCard.model_validate(entry))
        except ValidationError as exc:
            name = entry.get("id", f"#{index}") if isinstance(entry, dict) else f"#{index}"
            raise CatalogError(f"{path}: card {name}: {_first_error(exc)}") from exc
    return cards


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "card"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


class Catalog:
    """An immutable set of model cards with lookup, filters and search."""

    def __init__(self, cards: Iterable[ModelCard]) -> None:
        self._cards: dict[str, ModelCard] = {}
        self._aliases: dict[str, str] = {}
        for card in cards:
            # A user's card replaces a built-in one with the same id: that is how to correct one.
            self._cards[card.id] = card
        for card in self._cards.values():
            for alias in card.aliases:
                if alias in self._cards and alias != card.id:
                    raise CatalogError(f"alias {alias!r} of {card.id!r} is another card's id")
                self._aliases[alias] = card.id

    @classmethod
    def load(cls, extra_dirs: Iterable[Path] = ()) -> Catalog:
        """The built-in cards plus ``*.yaml`` cards in each of ``extra_dirs``."""
        files = builtin_card_files()
        for folder in extra_dirs:
            if folder.is_dir():
                files.extend(sorted(folder.glob("*.yaml")))
        seen: dict[str, Path] = {}
        cards: list[ModelCard] = []
        builtin = set(builtin_card_files())
        for path in files:
            for card in read_cards(path):
                if card.id in seen and path in builtin:
                    raise CatalogError(f"duplicate id {card.id!r} in {seen[card.id]} and {path}")
                seen[card.id] = path
                cards.append(card)
        return cls(cards)

    def __iter__(self) -> Iterator[ModelCard]:
        return iter(self._cards.values())

    def __len__(self) -> int:
        return len(self._cards)

    def __contains__(self, model_id: object) -> bool:
        return isinstance(model_id, str) and self._resolve(model_id) is not None

    def ids(self) -> list[str]:
        """All card ids, in catalog order."""
        return list(self._cards)

    def _resolve(self, model_id: str) -> str | None:
        key = model_id.strip().lower()
        if key in self._cards:
            return key
        return self._aliases.get(key)

    def get(self, model_id: str) -> ModelCard:
        """The card for an id or alias; an unknown id names the closest ones."""
        resolved = self._resolve(model_id)
        if resolved is None:
            raise UnknownModelError(model_id, self.closest(model_id))
        return self._cards[resolved]

    def closest(self, text: str, n: int = 3) -> list[str]:
        """Ids (or aliases) that look most like ``text``."""
        key = text.strip().lower()
        names = [*self._cards, *self._aliases]
        close = close_matches(key, names, n=n * 2)
        # Substring hits ("llama" -> "llama-3-8b") are what people expect first.
        contains = [name for name in names if key and key in name]
        ordered = [self._aliases.get(name, name) for name in [*contains, *close]]
        return list(dict.fromkeys(ordered))[:n]

    def filter(
        self,
        kind: Kind | None = None,
        open_weights: bool | None = None,
        task: Task | None = None,
        local: bool | None = None,
    ) -> list[ModelCard]:
        """Cards matching every given condition."""
        return [
            card
            for card in self
            if (kind is None or card.kind == kind)
            and (open_weights is None or card.open_weights == open_weights)
            and (task is None or task in card.tasks)
            and (local is None or card.runs_locally == local)
        ]

    def search(self, text: str) -> list[ModelCard]:
        """Cards whose facts mention every word of ``text``, best matches first."""
        words = [word for word in text.lower().split() if word]
        if not words:
            return []
        scored = []
        for card in self:
            haystack = _haystack(card)
            if all(word in haystack for word in words):
                # Hits in the id or name count more than hits deep in the descriptions.
                head = f"{card.id} {card.name} {card.developer}".lower()
                scored.append((sum(word in head for word in words), card))
        scored.sort(key=lambda pair: -pair[0])
        return [card for _, card in scored]


def _haystack(card: ModelCard) -> str:
    parts = [
        card.id,
        card.name,
        card.family,
        card.developer,
        card.kind.value,
        card.architecture.value,
        card.license.name,
        " ".join(card.aliases),
        " ".join(task.value for task in card.tasks),
        card.strengths.en,
        card.strengths.id,
        card.use_cases.en,
        card.use_cases.id,
        card.seed or "",
        card.notes or "",
        " ".join(card.availability.huggingface),
        " ".join(offer.model for offer in card.availability.api),
    ]
    return " ".join(parts).lower()
