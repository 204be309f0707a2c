"""Test data without downloads: derived from ``scanpy.datasets.pbmc68k_reduced()``, which ships inside scanpy.

Run ``python -m scclust.testdata DIR`` to write ``pbmc.h5ad``, ``pbmc.zarr`` and ``samplesheet.csv`` into DIR.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd


def pbmc(seed: int = 0) -> ad.AnnData:
    """700 PBMCs with X_pca, X_umap, a kNN graph under ``neighbors`` and a ``batch`` column."""
    import scanpy as sc

    adata = sc.datasets.pbmc68k_reduced()
    rng = np.random.default_rng(seed)
    adata.obs["batch"] = np.where(rng.random(adata.n_obs) < 0.5, "a", "b")
    adata.obs["batch"] = adata.obs["batch"].astype("category")
    return adata


def pbmc_counts(seed: int = 0, batch_effect: float = 1.0) -> ad.AnnData:
    """The 700 PBMCs as raw counts in two batches, batch ``b`` shifted, for the integration tests.

    ``pbmc68k_reduced``'s ``raw.X`` is ``log1p`` of counts scaled to 10,000 per cell, and ``n_counts`` is each cell's
    total, so ``round(expm1(raw.X) * n_counts / 1e4)`` gives back the cells' integer counts of these 765 genes (no
    value is more than 0.09 from an integer). Batch ``b`` (the ``batch`` column of :func:`pbmc`) is then shifted:
    each gene's counts are scaled by ``exp(N(0, batch_effect))`` (one seeded factor per gene) and drawn again as
    Poisson counts. ``layers['counts']`` holds the counts, X their ``log1p`` of counts per 10,000, and obsm/obsp
    are empty (the bundled PCA and graph describe the unshifted cells).
    """
    import scanpy as sc
    import scipy.sparse as sp

    base = pbmc(seed)
    counts = np.rint(np.expm1(base.raw.X.toarray()) * base.obs["n_counts"].to_numpy()[:, None] / 1e4)
    rng = np.random.default_rng(seed)
    factor = np.exp(rng.normal(0.0, batch_effect, size=counts.shape[1]))
    shifted = (base.obs["batch"] == "b").to_numpy()
    counts[shifted] = rng.poisson(counts[shifted] * factor)
    adata = ad.AnnData(
        X=sp.csr_matrix(counts, dtype=np.float32),
        obs=base.obs[["bulk_labels", "batch", "n_counts"]].copy(),
        var=pd.DataFrame(index=base.raw.var_names.copy()),
    )
    adata.layers["counts"] = adata.X.copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    return adata


def pbmc_without_counts(seed: int = 0, batch_effect: float = 1.0) -> ad.AnnData:
    """:func:`pbmc_counts` laid out as ``pbmc68k_reduced`` is: no counts, ``.raw`` log-normalised, X that scaled.

    X (``sc.pp.scale``, negative values) is neither counts nor log-normalised, so ``raw/X`` is the only matrix
    Harmony can start from; the batch effect is :func:`pbmc_counts`'s.
    """
    import scanpy as sc

    adata = pbmc_counts(seed, batch_effect)
    del adata.layers["counts"]
    adata.raw = adata
    sc.pp.scale(adata)
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
