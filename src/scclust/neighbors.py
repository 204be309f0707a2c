"""Recomputed kNN graph, PCA and UMAP, each from only the elements they need."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from scclust import io
from scclust.config import Config
from scclust.errors import UserError
from scclust.results import atomic_path, to_jsonable


def cache_numba_kernels() -> None:
    """Have numba keep pynndescent's and umap's compiled kernels on disk (``NUMBA_CACHE_DIR``), for the next task.

    Neither package asks numba to cache, so every new process compiled them again: ~20-30 s in each NEIGHBORS,
    SUBCLUSTER (``recompute``) and UMAP task, more than the kNN search of most clusters takes. A cached kernel is the
    same machine code, so graphs are bit-identical (tests/test_numba_cache.py). Call before umap or pynndescent is
    imported: their decorators run at import. Does nothing unless ``NUMBA_CACHE_DIR`` (set by nextflow.config) is
    writable: with no writable place, numba refuses to build a kernel that asks for a cache.
    """
    import numba
    from numba.core import config as numba_config

    if getattr(numba.njit, "scclust_cache", False) or not _writable_dir(numba_config.CACHE_DIR):
        return
    plain = numba.njit

    @functools.wraps(plain)
    def njit(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cache", True)
        return plain(*args, **kwargs)

    njit.scclust_cache = True  # type: ignore[attr-defined]
    numba.njit = njit


def _writable_dir(path: str) -> bool:
    if not path:
        return False
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def as_array(x: Any) -> np.ndarray | sp.csr_matrix:
    """Materialise any X layout (dense, CSR, CSC, dask with dense or sparse chunks, ``np.matrix``) safely.

    Sparse input comes back as CSR, everything else as a plain ``ndarray``: never an ``np.matrix``, whose
    ``sum()`` lacks ``keepdims`` and breaks scanpy's PCA.
    """
    if hasattr(x, "compute"):
        x = x.compute()
    if sp.issparse(x):
        return sp.csr_matrix(x)
    if isinstance(x, np.matrix):
        return np.asarray(x)
    return np.asarray(x)


def compute_pca(x: Any, n_pcs: int, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """PCA of X, reproducible for a given seed.

    Returns
    -------
    The embedding and the params recorded with it.
    """
    import scanpy as sc

    data = as_array(x)
    n_comps = int(min(n_pcs, data.shape[0] - 1, data.shape[1] - 1))
    if n_comps < 1:
        raise UserError(f"cannot compute PCA from a {data.shape[0]} x {data.shape[1]} matrix; pass an existing --use_rep")
    data = data.astype(np.float64) if data.dtype != np.float64 else data
    # arpack's result depends on BLAS summation order: one BLAS thread makes PCA identical on any core count.
    with threadpool_limits(limits=1, user_api="blas"):
        emb = sc.pp.pca(data, n_comps=n_comps, random_state=seed, svd_solver="arpack", return_info=False)
    return np.asarray(emb, dtype=np.float32), {
        "n_comps": n_comps,
        "svd_solver": "arpack",
        "random_state": seed,
    }


def read_x(root: io.Group, layer: str | None, path: str | Path) -> Any:
    """Read X (or a layer) for PCA."""
    from anndata.io import read_elem

    node = root["layers"][layer] if layer else root["X"]
    try:
        return read_elem(node)
    except Exception as err:
        where = f"layers/{layer}" if layer else "X"
        raise UserError(f"input {path}: cannot read {where} ({type(err).__name__}); the store may be damaged") from None


def knn_anndata(rep: np.ndarray, use_rep: str, obs_names: pd.Index | None = None) -> ad.AnnData:
    """A minimal AnnData that holds only an embedding (no X), for scanpy's neighbors/UMAP."""
    obs = pd.DataFrame(index=obs_names if obs_names is not None else pd.RangeIndex(rep.shape[0]).astype(str))
    return ad.AnnData(obs=obs, obsm={use_rep: rep})


def neighbors_on(
    rep: np.ndarray,
    cfg: Config,
    *,
    n_neighbors: int,
    key: str,
    obs_names: pd.Index | None = None,
    transformer: str | None = None,
) -> ad.AnnData:
    """Scanpy's ``pp.neighbors`` on an embedding, with the run's seed (``transformer`` as scanpy takes it)."""
    cache_numba_kernels()
    import scanpy as sc

    adata = knn_anndata(rep, cfg.use_rep, obs_names)
    sc.pp.neighbors(
        adata,
        n_neighbors=n_neighbors,
        use_rep=cfg.use_rep,
        random_state=cfg.seed,
        key_added=None if key == "neighbors" else key,
        transformer=transformer,
    )
    return adata


def recompute_graph(
    path: str | Path, cfg: Config, dataset: dict[str, Any], out: str | Path, integration_store: str | Path | None = None
) -> None:
    """Write a small zarr store with the recomputed graph to ``out``.

    The store also holds every embedding that is new: a PCA computed here, and the integrated embedding of
    ``integration_store`` (with its params as ``uns['integration']``), so that later tasks and MERGE find them.
    """
    p = Path(path)
    new: dict[str, np.ndarray] = {}
    integration = None
    if integration_store is not None:
        with io.open_store(integration_store) as iroot:
            key = dataset["integration"]["obsm_key"]
            new[key] = io.read_rep(iroot, key, integration_store)
            integration = io.read_uns_entry(iroot, "integration")
    with io.open_store(p) as root:
        names = io.read_obs_names(root, p)
        pca_params = None
        if cfg.use_rep in new:
            rep = new[cfg.use_rep]
        elif dataset["compute_pca"]:
            rep, pca_params = compute_pca(read_x(root, cfg.pca_layer, p), cfg.n_pcs, cfg.seed)
            new[cfg.use_rep] = rep
        else:
            rep = io.read_rep(root, cfg.use_rep, p)
    adata = neighbors_on(rep, cfg, n_neighbors=cfg.n_neighbors, key=cfg.neighbors_key, obs_names=names)
    adata.obsm = new  # the input's own embedding is not duplicated
    if pca_params is not None:
        adata.uns["pca"] = {"params": {**pca_params, "source": dataset["graph"].get("pca_source", "X")}}
    if integration is not None:
        adata.uns["integration"] = integration
    write_zarr_atomic(adata, out)


def compute_umap(
    graph_store: str | Path, rep_store: str | Path, cfg: Config, dataset: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    """UMAP of the clustered graph (scanpy's ``tl.umap`` with the run's seed)."""
    cache_numba_kernels()
    import scanpy as sc

    with io.open_store(graph_store) as root:
        conn, dist = io.graph_keys(root, cfg.neighbors_key)
        connectivities = io.read_matrix(root, conn, graph_store)
        distances = io.read_matrix(root, dist, graph_store) if dist else None
        stored = io.read_uns_entry(root, cfg.neighbors_key) or {}
    with io.open_store(rep_store) as root:
        rep = io.read_rep(root, cfg.use_rep, rep_store) if cfg.use_rep in io.obsm_keys(root) else None
    adata = ad.AnnData(obs=pd.DataFrame(index=pd.RangeIndex(connectivities.shape[0]).astype(str)))
    if rep is not None:
        adata.obsm[cfg.use_rep] = rep
    params = dict(stored.get("params", {})) if isinstance(stored, dict) else {}
    if rep is None:
        params.pop("use_rep", None)
    else:
        params["use_rep"] = cfg.use_rep
    params.setdefault("n_neighbors", cfg.n_neighbors)
    params.setdefault("method", "umap")
    adata.obsp["connectivities"] = connectivities
    adata.obsp["distances"] = distances if distances is not None else connectivities
    adata.uns["neighbors"] = {
        "connectivities_key": "connectivities",
        "distances_key": "distances",
        "params": params,
    }
    sc.tl.umap(adata, random_state=cfg.seed)
    return np.asarray(adata.obsm["X_umap"], dtype=np.float32), to_jsonable(
        {
            "random_state": cfg.seed,
            "neighbors_key": cfg.neighbors_key,
            "graph_recomputed": dataset["graph"]["recomputed"],
        }
    )


def write_zarr_atomic(adata: ad.AnnData, out: str | Path) -> None:
    """Write a zarr store under a temporary name and rename it into place."""
    tmp = atomic_path(out)
    adata.write_zarr(tmp)
    tmp.replace(out)


def rep_store(input_path: str | Path, graph_store: str | Path, use_rep: str) -> str | Path:
    """The store holding ``obsm[use_rep]``: the recomputed graph store when PCA was computed there, else the input."""
    if Path(graph_store) != Path(input_path):
        with io.open_store(graph_store) as root:
            if use_rep in io.obsm_keys(root):
                return graph_store
    return input_path


def write_umap(path: str | Path, coords: np.ndarray, params: dict[str, Any]) -> None:
    """Save a UMAP embedding with its params (atomically)."""
    tmp = atomic_path(path)
    with tmp.open("wb") as fh:
        np.savez_compressed(fh, coords=coords, params=np.array(json.dumps(params, sort_keys=True)))
    tmp.replace(path)


def read_umap(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Load what :func:`write_umap` saved."""
    with np.load(path, allow_pickle=False) as data:
        return data["coords"], json.loads(str(data["params"]))
