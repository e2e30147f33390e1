"""The import contracts of docs/architecture.md, run by lint-imports as `make check` does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(*python_path: Path) -> subprocess.CompletedProcess[str]:
    """Check the contracts against whichever `fondasi` comes first on PYTHONPATH."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    if python_path:
        env["PYTHONPATH"] = os.pathsep.join(str(path) for path in python_path)
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(CONFIG)],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=120,  # a guard against hangs, not a speed check
    )


def contract_name(contract_id: str) -> str:
    contracts = tomllib.loads(CONFIG.read_text())["tool"]["importlinter"]["contracts"]
    return next(str(c["name"]) for c in contracts if c["id"] == contract_id)


def test_an_upward_import_breaks_the_layers_contract(tmp_path: Path) -> None:
    copy = tmp_path / "fondasi"
    shutil.copytree(ROOT / "src" / "fondasi", copy, ignore=shutil.ignore_patterns("__pycache__"))
    types = copy / "types.py"
    types.write_text(types.read_text() + "\nimport fondasi.server  # the bottom reaching the top\n")

    result = lint_imports(tmp_path)

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"{contract_name('layers')} BROKEN" in output, output
    assert "fondasi.types -> fondasi.server" in output, output


def test_the_real_tree_keeps_every_contract() -> None:
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
