"""The fondasi version, in a module of its own.

Any layer may read it from here; ``from fondasi import __version__`` inside the package would
import the package root, the public API that sits above every layer.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:  # one source: [project] version in pyproject.toml, as the installed package says
    __version__ = version("fondasi")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
