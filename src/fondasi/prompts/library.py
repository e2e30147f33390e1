"""Where templates come from: the bundled ones, the user's folder, or a file path.

A user's template in ``FONDASI_HOME/prompts/NAME.yaml`` overrides a bundled one of the
same name, the way user catalog cards do.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import ValidationError

from fondasi.prompts.sandbox import PromptError
from fondasi.prompts.template import PromptTemplate
from fondasi.registry import unknown

BUNDLED = Path(__file__).parent / "templates"
SUFFIXES = (".yaml", ".yml")
MAX_TEMPLATE_BYTES = 1_000_000


def read_template(path: Path) -> PromptTemplate:
    """Load and validate one template file."""
    if not path.is_file():
        raise PromptError(f"no template file at {path}")
    if path.stat().st_size > MAX_TEMPLATE_BYTES:
        raise PromptError(f"{path}: a template is at most {MAX_TEMPLATE_BYTES // 1000} kB")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PromptError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise PromptError(f"{path}: a template is a mapping of fields (name, instruction ...)")
    data.setdefault("name", path.stem)
    try:
        return PromptTemplate.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "template"
        raise PromptError(f"{path}: {where}: {first['msg']}") from None


class PromptLibrary:
    """Named templates from several folders; later folders override earlier ones."""

    def __init__(self, folders: Iterable[Path]) -> None:
        self.paths: dict[str, Path] = {}
        for folder in folders:
            if folder.is_dir():
                for path in sorted(folder.iterdir()):
                    if path.suffix in SUFFIXES:
                        self.paths[path.stem] = path

    @classmethod
    def load(cls, home: Path | None = None) -> PromptLibrary:
        """The bundled templates plus ``home/prompts``."""
        return cls([BUNDLED, *([home / "prompts"] if home else [])])

    def names(self) -> list[str]:
        """Every template name, sorted."""
        return sorted(self.paths)

    def get(self, ref: str) -> PromptTemplate:
        """A template by name, or from a ``.yaml`` file path."""
        path = Path(ref).expanduser()
        if path.suffix in SUFFIXES and (path.exists() or "/" in ref or "\\" in ref):
            return read_template(path)
        if ref not in self.paths:
            raise unknown("prompt template", ref, self.names())
        template = read_template(self.paths[ref])
        if template.name != ref:
            raise PromptError(f"{self.paths[ref]}: name {template.name!r} must match the file name")
        return template

    def all(self) -> list[PromptTemplate]:
        """Every template, loaded."""
        return [self.get(name) for name in self.names()]
