"""Settings: one pydantic-settings object, built once and passed down.

Sources, first wins: explicit arguments, ``FONDASI_*`` environment variables,
``FONDASI_HOME/config.toml``, then the defaults below.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from fondasi.errors import BadInputError
from fondasi.providers import BUILTIN_PROVIDERS, ProviderConfig
from fondasi.registry import unknown

DEFAULT_HOME = Path("~/.fondasi")

# Where each provider's key is looked for, in order (the Hub token is not a model provider).
PROVIDER_KEY_ENV: dict[str, tuple[str, ...]] = {
    **{name: tuple(cfg.key_env) for name, cfg in BUILTIN_PROVIDERS.items() if cfg.key_env},
    "huggingface": ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"),
}


def resolve_home(home: Path | str | None = None) -> Path:
    """The fondasi home folder: an explicit path, else ``FONDASI_HOME``, else ``~/.fondasi``."""
    chosen = home or os.environ.get("FONDASI_HOME") or DEFAULT_HOME
    return Path(chosen).expanduser()


class RouterSettings(BaseModel):
    """The hybrid router's policy ([router] in config.toml), beside [fallbacks]."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    budgets: dict[str, float] = Field(
        default_factory=dict,
        description="USD a provider may spend per calendar month (UTC); over it, route local.",
    )
    over_budget_model: str | None = Field(
        default=None,
        description="Local model that answers once a budget is spent; default private_model.",
    )
    latency_slo_ms: float | None = Field(
        default=None,
        gt=0,
        description="p95 latency a model must keep over its recent calls, or be passed over.",
    )
    slo_window: int = Field(
        default=20, ge=5, le=1000, description="Recent calls the latency p95 is taken over."
    )
    record: bool = Field(
        default=True, description="Record every routed call and its reasons in the log store."
    )

    @field_validator("budgets")
    @classmethod
    def _non_negative(cls, budgets: dict[str, float]) -> dict[str, float]:
        bad = [name for name, usd in budgets.items() if usd < 0]
        if bad:
            raise ValueError(f"budgets must be 0 or more USD; not {', '.join(bad)}")
        return budgets


class Settings(BaseSettings):
    """Everything configurable about fondasi."""

    model_config = SettingsConfigDict(
        env_prefix="FONDASI_", extra="forbid", frozen=True, env_nested_delimiter="__"
    )

    home: Path = Field(
        default_factory=lambda: DEFAULT_HOME.expanduser(),
        description="Folder for config.toml, the model cache, user cards and the log database.",
    )
    catalog_dirs: list[Path] = Field(
        default_factory=list,
        description="Extra folders of model-card YAML files, besides FONDASI_HOME/catalog.",
    )
    api_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Provider API keys by provider name; environment variables take precedence.",
    )
    providers: dict[str, ProviderConfig] = Field(
        default_factory=dict,
        description="API endpoints by name ([providers.NAME] in config.toml), over the built-ins.",
    )
    cache: Path | None = Field(
        default=None, description="Folder for converted model weights; default FONDASI_HOME/cache."
    )
    fallbacks: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Models to try, in order, when a model fails ([fallbacks] in config.toml).",
    )
    private_model: str | None = Field(
        default=None,
        description="Local model that answers requests with personal data instead of an API.",
    )
    router: RouterSettings = Field(
        default_factory=RouterSettings,
        description="Budgets, latency SLO and recording of the hybrid router ([router]).",
    )
    hardware_usd_per_hour: float = Field(
        default=0.0,
        ge=0,
        description="What this machine costs an hour; local calls are charged their share.",
    )
    retries: int = Field(
        default=3, ge=0, le=10, description="Retries of a failed API call (429, 5xx, timeouts)."
    )
    threads: int | None = Field(
        default=None, ge=1, description="CPU threads for local inference; default: all cores."
    )
    gguf_engine: Literal["transformers", "llama.cpp"] = Field(
        default="transformers",
        description="What runs GGUF files: transformers (dequantised once into the cache) or "
        "llama.cpp (quantised as they are; needs fondasi[llamacpp]).",
    )
    chat_model: str = Field(
        default="qwen2-5-coder-0-5b-instruct",
        description="Local instruct model used where one that writes is needed and none is "
        "named: `fondasi chat` with no model, the eval judge, the distill teacher.",
    )
    embedding_model: str = Field(
        default="multilingual-e5-small",
        description="Embedding model for k-NN few-shot selection and similarity work.",
    )
    guard: dict[str, Any] = Field(
        default_factory=dict,
        description="Guard policies ([guard] in config.toml); validated by fondasi.guard.",
    )

    @field_validator("providers", mode="before")
    @classmethod
    def _refine_builtins(cls, raw: Any) -> Any:
        """A [providers.openai] table need not repeat the built-in provider's adapter."""
        if not isinstance(raw, dict):
            return raw
        return {
            name: (
                {"adapter": BUILTIN_PROVIDERS[name].adapter, **table}
                if name in BUILTIN_PROVIDERS and isinstance(table, dict) and "adapter" not in table
                else table
            )
            for name, table in raw.items()
        }

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        explicit = getattr(init_settings, "init_kwargs", {}).get("home")
        toml = TomlConfigSettingsSource(
            settings_cls, toml_file=resolve_home(explicit) / "config.toml"
        )
        return init_settings, env_settings, toml

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Build settings, turning a malformed config.toml or variable into one clear error."""
        home = resolve_home(overrides.pop("home", None))
        try:
            return cls(home=home, **overrides)
        except tomllib.TOMLDecodeError as exc:
            raise BadInputError(f"{home / 'config.toml'} is not valid TOML: {exc}") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise BadInputError(
                f"bad setting {where!r} (in {home / 'config.toml'} or FONDASI_* environment): "
                f"{first['msg']}"
            ) from exc

    @property
    def config_file(self) -> Path:
        """The TOML file read at start-up."""
        return self.home / "config.toml"

    @property
    def catalog_dir(self) -> Path:
        """Where users drop their own model cards."""
        return self.home / "catalog"

    @property
    def cache_dir(self) -> Path:
        """Converted model files (dequantised GGUF, ONNX exports, joined chunks)."""
        return (self.cache or self.home / "cache").expanduser()

    @property
    def database_url(self) -> str:
        """The default log store: a SQLite file in the home folder."""
        return f"sqlite:///{self.home / 'fondasi.db'}"

    @property
    def prompt_dir(self) -> Path:
        """Where users keep their own prompt templates."""
        return self.home / "prompts"

    def card_dirs(self) -> list[Path]:
        """Every folder user cards are read from."""
        return [self.catalog_dir, *self.catalog_dirs]

    def known_providers(self) -> list[str]:
        """Built-in and configured provider names."""
        return sorted({*BUILTIN_PROVIDERS, *self.providers})

    def provider(self, name: str) -> ProviderConfig:
        """A provider's endpoint and key sources; an unknown name lists the known ones."""
        known = {**BUILTIN_PROVIDERS, **self.providers}
        if name not in known:
            raise unknown("provider", name, known)
        config = known[name]
        if name in BUILTIN_PROVIDERS and name in self.providers:
            # A [providers.openai] table refines the built-in entry; unset fields keep it.
            user = self.providers[name]
            config = BUILTIN_PROVIDERS[name].model_copy(update=user.model_dump(exclude_unset=True))
        if config.api_key is None and name in self.api_keys:
            config = config.model_copy(update={"api_key": self.api_keys[name]})
        return config

    def key_source(self, provider: str) -> str | None:
        """Where the provider's key is set (a variable name or the config file), never the key."""
        configured = self.providers.get(provider)
        names = [*PROVIDER_KEY_ENV.get(provider, ()), *(configured.key_env if configured else [])]
        for name in names:
            if os.environ.get(name):
                return name
        if provider in self.api_keys and self.api_keys[provider].get_secret_value():
            return f"{self.config_file.name} [api_keys]"
        if configured and configured.api_key and configured.api_key.get_secret_value():
            return f"{self.config_file.name} [providers.{provider}]"
        return None
