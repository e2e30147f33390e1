"""Turn what a user typed — a catalog id or an ad-hoc id — into a ``ModelSpec``.

Ad-hoc ids name weights directly: ``hf:/path/to/folder``, ``gguf:/path/to/file.gguf``,
``llamacpp:/path/to/file.gguf`` (the same file run by llama.cpp),
``onnx:/path/to/model.onnx``, ``tuned:/path/to/out`` (made by ``fondasi tune``).
Catalog ids use the first way the card offers that works here: a pip package that
carries the weights, then a Hugging Face repo already in the local Hugging Face cache.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

from fondasi.backends import split_packages  # noqa: F401 (registers the split packages)
from fondasi.backends.base import ModelSpec
from fondasi.backends.hub import hub_cache
from fondasi.backends.packages import LOCATORS, install_command, installed
from fondasi.catalog.loader import Catalog
from fondasi.catalog.schema import ModelCard
from fondasi.errors import BadInputError
from fondasi.settings import Settings

PREFIXES = ("hf:", "gguf:", "llamacpp:", "onnx:", "tuned:")
LLAMA_CPP = {"engine": "llama.cpp"}  # the ModelSpec.extra that sends a GGUF to llama.cpp


class NotRunnableHereError(BadInputError):
    """The model exists but its weights are not on this machine."""


def read_architecture(folder: Path) -> str | None:
    """The class named in a folder's config.json (or a diffusers model_index.json)."""
    index = folder / "model_index.json"
    if index.is_file():
        try:
            return str(json.loads(index.read_text(encoding="utf-8")).get("_class_name") or "")
        except (OSError, json.JSONDecodeError) as exc:
            raise BadInputError(f"{index} is not valid JSON: {exc}") from exc
    config = folder / "config.json"
    if not config.is_file():
        return None
    try:
        names = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInputError(f"{config} is not valid JSON: {exc}") from exc
    return str(names[0]) if names else None


def _folder_format(folder: Path) -> tuple[str, Path]:
    """What kind of weights a folder holds, and the file or folder to load."""
    if (folder / "model_index.json").is_file():
        return "diffusers", folder
    ggufs = sorted(folder.glob("*.gguf"))
    if any(folder.glob("*.safetensors")):
        return "safetensors", folder
    if ggufs:
        return "gguf", ggufs[0]
    if (folder / "model.onnx").is_file():
        return "onnx", folder / "model.onnx"
    if (folder / "model.bin").is_file() and any(folder.glob("vocabulary.*")):
        return "ctranslate2", folder  # CTranslate2's own format (faster-whisper), not a pickle
    if any(folder.glob("*.bin")) or any(folder.glob("*.pt")):
        raise BadInputError(
            f"{folder} holds only pickle weights (.bin/.pt), which can run code when loaded; "
            "fondasi loads safetensors, GGUF or ONNX — convert them with safetensors first"
        )
    raise BadInputError(f"{folder} holds no model weights (safetensors, GGUF or ONNX)")


def _ad_hoc(ref: str) -> ModelSpec:
    scheme, _, rest = ref.partition(":")
    path = Path(rest).expanduser()
    if scheme == "hf" and not path.exists() and not rest.startswith(("/", ".", "~")):
        cached = _hf_cached(rest)
        if cached is not None:
            fmt, target = _folder_format(cached)
            return ModelSpec(
                id=ref,
                card=None,
                path=target,
                format=fmt,
                hf_architecture=read_architecture(cached),
            )
        raise NotRunnableHereError(
            f"{rest!r} is a Hugging Face repo id that is not in the local cache; fondasi does "
            f"not download weights at run time. Fetch it first (fondasi models pull {ref}), "
            "use a local folder (hf:/path/to/folder), or a catalog model whose weights ship "
            "in a pip package (fondasi models --runs-here)"
        )
    if not path.exists():
        raise BadInputError(f"{ref!r}: no such file or folder: {path}")
    if scheme in ("gguf", "llamacpp"):
        if path.is_dir() or path.suffix != ".gguf":
            raise BadInputError(f"{ref!r}: expected a .gguf file")
        extra = LLAMA_CPP if scheme == "llamacpp" else {}
        return ModelSpec(id=ref, card=None, path=path, format="gguf", extra=dict(extra))
    if scheme == "tuned":
        if not (path / "fondasi-tune.json").is_file():
            raise BadInputError(f"{ref!r}: {path} is not a folder made by `fondasi tune`")
        return ModelSpec(id=ref, card=None, path=path, format="tuned")
    if scheme == "onnx":
        onnx = path / "model.onnx" if path.is_dir() else path
        return ModelSpec(id=ref, card=None, path=onnx, format="onnx")
    if not path.is_dir():
        raise BadInputError(f"{ref!r}: expected a folder with config.json and weights")
    fmt, target = _folder_format(path)
    return ModelSpec(
        id=ref, card=None, path=target, format=fmt, hf_architecture=read_architecture(path)
    )


def _api_spec(
    ref: str, card: ModelCard | None, provider: str, model: str, settings: Settings
) -> ModelSpec:
    config = settings.provider(provider)
    return ModelSpec(
        id=ref,
        card=card,
        path=None,
        format="api",
        extra={"provider": provider, "model": model, "adapter": config.adapter},
    )


def _provider_ref(ref: str, catalog: Catalog, settings: Settings) -> ModelSpec:
    """``openai:gpt-4.1-mini``, ``anthropic:claude-...``, ``compat:myvllm/llama-3-8b``."""
    provider, _, model = ref.partition(":")
    if provider == "compat":
        provider, _, model = model.partition("/")
    if not provider or not model:
        raise BadInputError(f"{ref!r}: expected PROVIDER:MODEL or compat:SERVER/MODEL")
    config = settings.provider(provider)
    if config.models and model not in config.models:
        raise BadInputError(
            f"{provider} serves {', '.join(config.models)}; {model!r} is not among them"
        )
    card = next(
        (
            c
            for c in catalog
            if any(o.provider == provider and o.model == model for o in c.availability.api)
        ),
        None,
    )
    return _api_spec(ref, card, provider, model, settings)


def _from_card(card: ModelCard, settings: Settings) -> ModelSpec:
    for pkg in card.availability.pip:
        if installed(pkg):
            located = LOCATORS[pkg.package](pkg, settings)
            return ModelSpec(
                id=card.id,
                card=card,
                path=located.path,
                format=located.format,
                hf_architecture=card.hf_architecture,
                extra=located.extra,
            )
    for repo in card.availability.huggingface:
        folder = _hf_cached(repo)
        if folder is not None:
            fmt, target = _folder_format(folder)
            return ModelSpec(
                id=card.id,
                card=card,
                path=target,
                format=fmt,
                hf_architecture=card.hf_architecture or read_architecture(folder),
            )
    offer = card.availability.live_offer(date.today())
    if offer is not None:
        return _api_spec(card.id, card, offer.provider, offer.model, settings)
    raise NotRunnableHereError(_why_not_here(card))


def _why_not_here(card: ModelCard) -> str:
    ways = []
    if card.availability.pip:
        pkg = card.availability.pip[0]
        ways.append(f"install its weights: {install_command(pkg)}")
    if card.availability.huggingface:
        repo = card.availability.huggingface[0]
        ways.append(
            f"download {repo} into the Hugging Face cache where a network is available, "
            f"or point at a local copy: hf:/path/to/{repo.split('/')[-1]}"
        )
    if card.availability.api:
        offer = card.availability.api[0]
        ways.append(f"its provider's API ({offer.provider}: {offer.model}) has been retired")
    hint = "; or ".join(ways) or (card.availability.other or "it is not publicly available")
    return f"{card.id}: its weights are not on this machine — {hint}"


def _hf_cached(repo: str) -> Path | None:
    """The snapshot folder of a repo already in the local Hugging Face cache."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:
        return None
    try:
        return Path(snapshot_download(repo, local_files_only=True, cache_dir=hub_cache()))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None


def resolve(ref: str, catalog: Catalog, settings: Settings) -> ModelSpec:
    """The spec for a catalog id or an ad-hoc id; unknown ids name the closest ones."""
    ref = ref.strip()
    if not ref:
        raise BadInputError("empty model id")
    if ref.startswith(PREFIXES):
        spec = _ad_hoc(ref)
    elif ":" in ref:  # catalog ids never hold a colon: this names a provider
        return _provider_ref(ref, catalog, settings)
    else:
        spec = _from_card(catalog.get(ref), settings)
    if spec.format == "gguf" and settings.gguf_engine == "llama.cpp":
        return replace(spec, extra={**spec.extra, **LLAMA_CPP})
    return spec
