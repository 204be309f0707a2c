"""Package versions and run information recorded with every column."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

PACKAGES = (
    "scclust",
    "scanpy",
    "anndata",
    "igraph",
    "leidenalg",
    "numpy",
    "scipy",
    "pandas",
    "zarr",
    "h5py",
    "pynndescent",
    "umap-learn",
    "scikit-learn",
    "natsort",
)


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed versions of the packages that can change a result."""
    out: dict[str, str] = {}
    for name in (*PACKAGES, *extra):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out
