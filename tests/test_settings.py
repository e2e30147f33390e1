"""Settings, extras, hardware detection and the public surface."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import fondasi
from fondasi.errors import BadInputError, MissingExtraError
from fondasi.extras import EXTRAS, install_hint, is_installed, require
from fondasi.settings import Settings
from fondasi.system import detect, detect_gpus

from .hiding import hidden


def test_home_comes_from_the_environment(home: Path) -> None:
    settings = Settings.load()
    assert settings.home == home
    assert settings.config_file == home / "config.toml"
    assert settings.catalog_dir == home / "catalog"
    assert settings.database_url == f"sqlite:///{home / 'fondasi.db'}"


def test_config_file_then_environment_then_arguments(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text('threads = 3\n[api_keys]\ncohere = "co-secret-123"\n')
    assert Settings.load().threads == 3
    monkeypatch.setenv("FONDASI_THREADS", "5")
    assert Settings.load().threads == 5
    assert Settings.load(threads=7).threads == 7


def test_explicit_home_reads_its_own_config(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.toml").write_text("threads = 2\n")
    assert Settings.load(home=other).threads == 2


def test_keys_from_config_are_reported_by_source_not_value(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text('[api_keys]\ncohere = "co-secret-123"\n')
    settings = Settings.load()
    assert settings.key_source("cohere") == "config.toml [api_keys]"
    assert "co-secret-123" not in repr(settings) + str(settings.model_dump())
    assert settings.key_source("anthropic") is None


def test_a_builtin_provider_table_needs_no_adapter(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text(
        '[providers.openai]\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[providers.mine]\nbase_url = "http://127.0.0.1:9/v1"\nadapter = "openai"\n'
    )
    settings = Settings.load()
    openai = settings.provider("openai")
    assert openai.adapter == "openai" and openai.base_url == "http://127.0.0.1:9/v1"
    assert openai.key_env == ["OPENAI_API_KEY"]  # the rest of the built-in entry stays
    (home / "config.toml").write_text('[providers.mine]\nbase_url = "http://127.0.0.1:9/v1"\n')
    with pytest.raises(BadInputError, match=r"providers\.mine\.adapter"):
        Settings.load()


def test_environment_key_wins_over_config(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CO_API_KEY", "x")
    assert Settings.load().key_source("cohere") == "CO_API_KEY"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("threads = [1,\n", "not valid TOML"),
        ("threads = 0\n", "threads"),
        ("colour = 1\n", "colour"),
    ],
)
def test_bad_config_is_one_clear_error(home: Path, content: str, message: str) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text(content)
    with pytest.raises(BadInputError, match=message):
        Settings.load()


def test_missing_extra_names_the_install_command() -> None:
    with pytest.raises(MissingExtraError, match=r"pip install 'fondasi\[llamacpp\]'"):
        require("fondasi_no_such_module", "llamacpp", "GGUF models through llama.cpp")
    assert isinstance(MissingExtraError("x"), ImportError)
    assert install_hint("openai") == "pip install 'fondasi[openai]'"


def test_extras_are_detected_without_importing() -> None:
    assert set(EXTRAS) >= {"openai", "anthropic", "gemini", "cohere", "llamacpp", "serve", "ray"}
    assert is_installed("openai") and is_installed("llamacpp")
    with hidden("llama_cpp"):
        assert not is_installed("llamacpp")
    assert require("json", "local").dumps([1]) == "[1]"


def test_hardware_detection() -> None:
    hw = detect()
    assert hw.cpu_cores >= 1
    assert 0 < hw.ram_available_gb <= hw.ram_gb
    assert hw.vram_gb == max((g.vram_gb for g in hw.gpus), default=0.0)


def _fake_nvidia_smi(folder: Path, output: str, code: int = 0) -> None:
    exe = folder / "nvidia-smi"
    exe.write_text(f"#!/bin/sh\nprintf '{output}'\nexit {code}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)


def test_gpus_are_read_from_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_nvidia_smi(tmp_path, "NVIDIA H100 80GB HBM3, 81559\\nNVIDIA L4, [N/A]\\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    gpus = detect_gpus()
    assert [(g.name, g.vram_gb) for g in gpus] == [("NVIDIA H100 80GB HBM3", 79.6)]


def test_a_failing_nvidia_smi_means_no_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_nvidia_smi(tmp_path, "driver not loaded", code=9)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert detect_gpus() == []


def test_public_surface_is_pinned() -> None:
    assert sorted(fondasi.__all__) == sorted(
        [
            "Answer",
            "BadInputError",
            "Capability",
            "CapabilityError",
            "Catalog",
            "CatalogError",
            "Completion",
            "Fallback",
            "FondasiError",
            "GenerateOptions",
            "Hardware",
            "Kind",
            "Message",
            "MissingExtraError",
            "Model",
            "ModelCard",
            "ModelHandle",
            "OutputParseError",
            "PrivateRoute",
            "Prompt",
            "PromptError",
            "Ranking",
            "Recommendation",
            "Rendered",
            "Requirements",
            "Settings",
            "Split",
            "Task",
            "UnknownModelError",
            "__version__",
            "ask",
            "card",
            "load_catalog",
            "model",
            "recommend",
        ]
    )
    for name in fondasi.__all__:
        assert hasattr(fondasi, name), name


def test_user_cards_reach_the_python_api(home: Path) -> None:
    (home / "catalog").mkdir(parents=True)
    source = fondasi.card("smollm2").model_dump(mode="json", exclude_none=True)
    source.update(id="house-bot", aliases=[], name="House bot")
    import yaml

    (home / "catalog" / "house.yaml").write_text(yaml.safe_dump([source]))
    assert fondasi.card("house-bot").name == "House bot"
    assert "house-bot" in fondasi.load_catalog()


def test_scoring_without_scikit_learn_names_the_eval_extra() -> None:
    from fondasi.evaluate.metrics import accuracy

    assert accuracy(["a", "b"], ["a", "a"], 1) == 0.5
    with hidden("sklearn"), pytest.raises(MissingExtraError, match=r"fondasi\[eval\]'"):
        accuracy(["a", "b"], ["a", "a"], 1)
