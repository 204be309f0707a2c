#!/usr/bin/env python
"""Synthetic AnnData for scclust benchmarks: Gaussian blobs in a 50-D embedding plus scanpy's kNN graph.

obsm['X_pca'] holds the embedding; obsp['connectivities'/'distances'] and uns['neighbors'] come from
``sc.pp.neighbors(adata, use_rep='X_pca', n_neighbors=k, random_state=0)``. X is a sparse all-zero n x 1
matrix unless ``--dense-x-genes`` > 0, which adds a dense float32 X
(to show that clustering tasks never read X).

Generated files are cached: if --out exists it is reused (pass --force to rebuild).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import click
import numpy as np
import pandas as pd


def make_embedding(n_cells: int, n_dims: int, n_blobs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Blob centres ~ N(0, 4^2) per dimension, cells ~ N(centre, 1), unequal blob sizes."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 4.0, size=(n_blobs, n_dims))
    weights = rng.uniform(0.5, 1.5, size=n_blobs)
    blob = rng.choice(n_blobs, size=n_cells, p=weights / weights.sum())
    emb = centres[blob] + rng.normal(0.0, 1.0, size=(n_cells, n_dims))
    return emb.astype(np.float32), blob


def upsample_pbmc68k(n_cells: int, noise: float, seed: int) -> tuple[np.ndarray, pd.Series]:
    """pbmc68k_reduced's 700-cell PCA upsampled: each new cell lies between a random cell and one of its 15 nearest
    neighbours (SMOTE), plus Gaussian noise of ``noise`` x each dimension's standard deviation; it keeps the
    source cell's ``bulk_labels``. The cell types overlap as in the real data, so clusterings are not trivial."""
    import scanpy as sc
    from sklearn.neighbors import NearestNeighbors

    ref = sc.datasets.pbmc68k_reduced()
    pca = np.asarray(ref.obsm["X_pca"], dtype=np.float64)
    rng = np.random.default_rng(seed)
    _, knn = NearestNeighbors(n_neighbors=16).fit(pca).kneighbors(pca)
    source = rng.integers(0, len(pca), n_cells)
    partner = knn[source, rng.integers(1, 16, n_cells)]
    step = rng.random((n_cells, 1))
    emb = pca[source] + step * (pca[partner] - pca[source])
    emb += rng.normal(0.0, 1.0, emb.shape) * (noise * pca.std(axis=0))
    return emb.astype(np.float32), ref.obs["bulk_labels"].astype(str).iloc[source].reset_index(drop=True)


@click.command()
@click.option("--n-cells", type=int, required=True, help="Number of cells.")
@click.option("--n-dims", type=int, default=50, show_default=True, help="Embedding dimensions (obsm['X_pca']).")
@click.option("--n-blobs", type=int, default=30, show_default=True, help="Number of Gaussian blobs.")
@click.option("--n-neighbors", type=int, default=15, show_default=True, help="k of the kNN graph.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the embedding.")
@click.option(
    "--dense-x-genes",
    type=int,
    default=0,
    show_default=True,
    help="If > 0, add a dense float32 X with this many genes.",
)
@click.option(
    "--graph-from",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Reuse embedding and graph of an existing store (same n-cells) instead of recomputing them.",
)
@click.option("--from-pbmc68k", is_flag=True, help="Upsample pbmc68k_reduced's PCA instead of blobs (obs bulk_labels).")
@click.option("--noise", type=float, default=0.1, show_default=True, help="With --from-pbmc68k: noise, x per-dim std.")
@click.option("--format", "fmt", type=click.Choice(["zarr", "h5ad"]), default="zarr", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output .zarr or .h5ad.")
@click.option("--force", is_flag=True, help="Rebuild even if --out exists.")
def main(n_cells, n_dims, n_blobs, n_neighbors, seed, dense_x_genes, graph_from, from_pbmc68k, noise, fmt, out, force):
    """Write a synthetic dataset to OUT (cached: an existing OUT is reused)."""
    if out.exists() and not force:
        click.echo(f"{out} exists; reusing it (--force to rebuild)")
        return
    import anndata as ad
    import scanpy as sc
    import scipy.sparse as sp

    t0 = time.perf_counter()
    if graph_from is not None:
        src = ad.read_zarr(graph_from) if str(graph_from).endswith(".zarr") else ad.read_h5ad(graph_from)
        if src.n_obs != n_cells:
            raise click.UsageError(f"--graph-from has {src.n_obs} cells, not {n_cells}")
        emb = np.asarray(src.obsm["X_pca"])
        obs = src.obs.copy()
        obsp = {k: src.obsp[k] for k in src.obsp}
        uns_neighbors = dict(src.uns["neighbors"])
        del src
    else:
        names = [f"cell{i}" for i in range(n_cells)]
        if from_pbmc68k:
            emb, bulk = upsample_pbmc68k(n_cells, noise, seed)
            obs = pd.DataFrame({"bulk_labels": pd.Categorical(bulk)}, index=names)
        else:
            emb, blob = make_embedding(n_cells, n_dims, n_blobs, seed)
            obs = pd.DataFrame({"blob": pd.Categorical(blob.astype(str))}, index=names)
        tmp = ad.AnnData(X=sp.csr_matrix((n_cells, 1), dtype=np.float32), obs=obs)
        tmp.obsm["X_pca"] = emb
        sc.pp.neighbors(tmp, use_rep="X_pca", n_neighbors=n_neighbors, random_state=0)
        obsp = {k: tmp.obsp[k] for k in tmp.obsp}
        uns_neighbors = dict(tmp.uns["neighbors"])
        del tmp
    click.echo(f"embedding + kNN graph: {time.perf_counter() - t0:.1f} s")

    if dense_x_genes > 0:
        rng = np.random.default_rng(seed + 1)
        X = rng.standard_normal((n_cells, dense_x_genes), dtype=np.float32)
    else:
        X = sp.csr_matrix((n_cells, 1), dtype=np.float32)
    var = pd.DataFrame(index=[f"gene{i}" for i in range(X.shape[1])])
    adata = ad.AnnData(X=X, obs=obs, var=var)
    adata.obsm["X_pca"] = emb
    for k, v in obsp.items():
        adata.obsp[k] = v
    adata.uns["neighbors"] = uns_neighbors

    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "zarr":
        adata.write_zarr(out)
    else:
        adata.write_h5ad(out)
    click.echo(f"wrote {out} ({n_cells} cells, X {X.shape}, {time.perf_counter() - t0:.1f} s total)")


if __name__ == "__main__":
    main()
