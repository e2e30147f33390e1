"""What fondasi can do on this machine: hardware, extras, bundled models, API keys."""

from __future__ import annotations

from importlib import metadata

from pydantic import BaseModel, Field

from fondasi import system
from fondasi.catalog import Catalog
from fondasi.extras import EXTRAS, install_hint, is_installed
from fondasi.settings import PROVIDER_KEY_ENV, Settings
from fondasi.system import Hardware


class ExtraStatus(BaseModel):
    """One optional dependency family."""

    name: str
    installed: bool
    purpose: str
    install: str


class BundledModel(BaseModel):
    """A catalog model whose weights ship in a pip package."""

    model_id: str
    package: str
    wanted: str = Field(description="Version the card was checked with.")
    installed: str | None = Field(description="Installed version, or None.")


class KeyStatus(BaseModel):
    """Whether a provider's API key is set — where, never what."""

    provider: str
    variables: list[str]
    set_in: str | None
    endpoint: str | None = None
    key_required: bool = True


class Report(BaseModel):
    """Everything ``fondasi doctor`` reports."""

    version: str
    home: str
    config_file: str
    config_exists: bool
    torch: str | None
    hardware: Hardware
    extras: list[ExtraStatus]
    bundled_models: list[BundledModel]
    api_keys: list[KeyStatus]
    catalog_models: int


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _provider_status(settings: Settings, name: str) -> KeyStatus:
    provider = settings.provider(name)
    return KeyStatus(
        provider=name,
        variables=list(provider.key_env),
        set_in=settings.key_source(name),
        endpoint=provider.url(),
        key_required=provider.key_required,
    )


def examine(settings: Settings, catalog: Catalog) -> Report:
    """Inspect this machine without importing any ML library."""
    from fondasi.version import __version__

    bundled = [
        BundledModel(
            model_id=card.id,
            package=pkg.package,
            wanted=pkg.version,
            installed=_version(pkg.package),
        )
        for card in catalog
        for pkg in card.availability.pip
    ]
    return Report(
        version=__version__,
        home=str(settings.home),
        config_file=str(settings.config_file),
        config_exists=settings.config_file.is_file(),
        torch=_version("torch"),
        hardware=system.detect(),
        extras=[
            ExtraStatus(
                name=extra.name,
                installed=is_installed(extra.name),
                purpose=extra.purpose,
                install=install_hint(extra.name),
            )
            for extra in EXTRAS.values()
        ],
        bundled_models=bundled,
        api_keys=[
            *(_provider_status(settings, name) for name in settings.known_providers()),
            KeyStatus(
                provider="huggingface",
                variables=list(PROVIDER_KEY_ENV["huggingface"]),
                set_in=settings.key_source("huggingface"),
                key_required=False,
            ),
        ],
        catalog_models=len(catalog),
    )
