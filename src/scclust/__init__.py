"""scclust: multi-resolution and hierarchical clustering of single-cell data."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("scclust")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
