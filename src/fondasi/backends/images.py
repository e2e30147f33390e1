"""Read images from paths, bytes, arrays or PIL objects, with clear errors for bad input."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from fondasi.errors import BadInputError
from fondasi.extras import require

MAX_PIXELS = 50_000_000  # bigger images are refused, not decoded (decompression bombs)
MAX_BYTES = 50 * 1024 * 1024


def load_image(source: Any) -> Any:
    """An RGB ``PIL.Image`` from a path, raw bytes, a numpy array or a PIL image."""
    pil = require("PIL.Image", "local", "reading images")
    if isinstance(source, pil.Image):
        return source.convert("RGB")
    if hasattr(source, "__array_interface__"):
        import numpy as np

        array = np.asarray(source)
        if array.dtype != np.uint8:
            array = (np.clip(array, 0, 1) * 255).astype(np.uint8)
        return pil.fromarray(array).convert("RGB")
    if isinstance(source, str) and source.startswith("data:"):
        source = _data_url(source)
    elif is_link(source):
        raise BadInputError(
            "a local model reads images from files, bytes or data: URLs, not links "
            f"({str(source)[:80]}): download it first"
        )
    if isinstance(source, bytes):
        if len(source) > MAX_BYTES:
            raise BadInputError(f"image is {len(source)} bytes; the limit is {MAX_BYTES}")
        return _open(pil, io.BytesIO(source), "the given bytes")
    path = Path(str(source)).expanduser()
    if not path.is_file():
        raise BadInputError(f"no such image file: {path}")
    if path.stat().st_size > MAX_BYTES:
        raise BadInputError(f"{path} is over {MAX_BYTES // 2**20} MB")
    return _open(pil, path, str(path))


def _data_url(url: str) -> bytes:
    """The bytes of a ``data:image/...;base64,...`` URL."""
    import base64
    import binascii

    head, _, body = url.partition(",")
    if not head.startswith("data:image/") or not head.endswith(";base64"):
        raise BadInputError("an image data URL is data:image/<type>;base64,<data>")
    if len(body) > MAX_BYTES * 4 // 3 + 4:
        raise BadInputError(f"the image is over {MAX_BYTES // 2**20} MB")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise BadInputError("the image data URL is not valid base64") from None


def is_link(image: Any) -> bool:
    """Whether an image is given as a web address (sent as is to APIs that fetch it)."""
    return isinstance(image, str) and image.startswith(("https://", "http://"))


def png_for_api(image: Any, limit: int) -> bytes:
    """An image as PNG bytes for a hosted API, refused before sending when over ``limit``."""
    if isinstance(image, str | Path):
        path = Path(image).expanduser()
        if path.is_file() and path.stat().st_size > limit:
            raise BadInputError(f"{path} is over {limit // 2**20} MB, the API's limit")
    buffer = io.BytesIO()
    load_image(image).save(buffer, format="PNG")  # also refuses files that are not images
    if buffer.tell() > limit:
        raise BadInputError(f"the image is over {limit // 2**20} MB as PNG, the API's limit")
    return buffer.getvalue()


def _open(pil: Any, handle: Any, name: str) -> Any:
    try:
        image = pil.open(handle)
        if image.width * image.height > MAX_PIXELS:
            raise BadInputError(f"{name} has {image.width}x{image.height} pixels; too large")
        return image.convert("RGB")
    except (pil.UnidentifiedImageError, OSError) as exc:
        raise BadInputError(f"{name} is not an image fondasi can read: {exc}") from exc


def center_crop_array(image: Any, size: int, resize: int) -> Any:
    """Resize the short side to ``resize``, crop the centre ``size`` square, as float32 HWC."""
    import numpy as np

    pil = require("PIL.Image", "local", "reading images")
    width, height = image.size
    scale = resize / min(width, height)
    resized = image.resize(
        (max(size, round(width * scale)), max(size, round(height * scale))), pil.Resampling.BICUBIC
    )
    left = (resized.width - size) // 2
    top = (resized.height - size) // 2
    cropped = resized.crop((left, top, left + size, top + size))
    return np.asarray(cropped, dtype=np.float32) / 255.0
