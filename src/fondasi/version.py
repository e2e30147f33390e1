"""The fondasi version, in a module of its own.

Any layer may read it from here; ``from fondasi import __version__`` inside the package would
import the package root, the public API that sits above every layer.
"""

from __future__ import annotations

__all__ = ["__version__"]

# Keep in step with [project] version in pyproject.toml.
__version__ = "0.1.0"
