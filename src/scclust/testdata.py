"""Test data without downloads: derived from ``scanpy.datasets.pbmc68k_reduced()``, which ships inside scanpy.

Run ``python -m scclust.testdata DIR`` to write ``pbmc.h5ad``, ``pbmc.zarr`` and ``samplesheet.csv`` into DIR.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anndata as ad
import numpy as np


def pbmc(seed: int = 0) -> ad.AnnData:
    """700 PBMCs with X_pca, X_umap, a kNN graph under ``neighbors`` and a ``batch`` column."""
    import scanpy as sc

    adata = sc.datasets.pbmc68k_reduced()
    rng = np.random.default_rng(seed)
    adata.obs["batch"] = np.where(rng.random(adata.n_obs) < 0.5, "a", "b")
    adata.obs["batch"] = adata.obs["batch"].astype("category")
    return adata


def write_testdata(outdir: str | Path) -> dict[str, Path]:
    """Write the h5ad, zarr and samplesheet variants (idempotent) and return their paths."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"h5ad": out / "pbmc.h5ad", "zarr": out / "pbmc.zarr", "samplesheet": out / "samplesheet.csv"}
    if all(p.exists() for p in paths.values()):
        return paths
    adata = pbmc()
    adata.write_h5ad(paths["h5ad"])
    adata.write_zarr(paths["zarr"])
    paths["samplesheet"].write_text(f"id,path\npbmc_h5ad,{paths['h5ad'].resolve()}\npbmc_zarr,{paths['zarr'].resolve()}\n")
    return paths


if __name__ == "__main__":
    for kind, path in write_testdata(sys.argv[1] if len(sys.argv) > 1 else "tests/data/generated").items():
        print(f"{kind}\t{path}")
