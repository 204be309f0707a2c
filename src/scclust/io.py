"""Read single elements of an AnnData store (.h5ad or .zarr) without loading X."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp
import zarr
from anndata.io import read_elem

from scclust.errors import UserError

Group = h5py.Group | zarr.Group


def store_format(path: str | Path) -> str:
    """Return ``"zarr"`` or ``"h5ad"`` for an AnnData path, judged by what is on disk."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"input {p}: no such file or directory; check --input or the samplesheet path")
    if p.is_dir():
        return "zarr"
    return "h5ad"


@contextmanager
def open_store(path: str | Path) -> Iterator[Group]:
    """Open an AnnData store read-only and check that it looks like AnnData.

    Parameters
    ----------
    path
        A ``.h5ad`` file or a ``.zarr`` directory.

    Yields
    ------
    The root group (:class:`h5py.File` or :class:`zarr.Group`).
    """
    p = Path(path)
    fmt = store_format(p)
    if fmt == "zarr":
        try:
            # never the consolidated listing (.zmetadata): a node added after it was written would be invisible
            root: Any = zarr.open_group(str(p), mode="r", use_consolidated=False)
        except Exception as err:  # zarr raises several types for a damaged store
            raise UserError(
                f"input {p}: not a readable zarr store ({type(err).__name__}); re-export it with anndata.write_zarr"
            ) from None
        _check_anndata(root, p)
        yield root
        return
    try:
        handle = h5py.File(p, "r")
    except OSError as err:
        if "unable to lock file" in str(err).lower():  # HDF5's words for a lock held by another process
            raise UserError(
                f"input {p}: locked by another process (HDF5 file lock): it is open for writing elsewhere, e.g. a "
                "notebook with read_h5ad(..., backed='r+') or h5py.File(..., 'a'); close it there (adata.file.close() "
                "or restart that kernel) and rerun"
            ) from None
        raise UserError(
            f"input {p}: not a readable .h5ad (HDF5) file; check the path or re-export it with anndata.write_h5ad"
        ) from None
    with handle:
        _check_anndata(handle, p)
        yield handle


def unconsolidated_nodes(path: str | Path) -> list[str]:
    """Nodes of a .zarr that its consolidated metadata (if any) does not list, or lists as they no longer are.

    scclust reads without that listing; anndata's ``read_zarr`` and other tools read with it, and would not see
    these nodes (e.g. an obs column added with zarr after anndata wrote the store).
    """
    try:
        listed = zarr.open_group(str(path), mode="r", use_consolidated=True)
    except Exception:  # no consolidated metadata: every reader sees the nodes on disk
        return []
    on_disk = zarr.open_group(str(path), mode="r", use_consolidated=False)
    listed_nodes = {name: dict(node.attrs) for name, node in listed.members(max_depth=None)}
    return sorted(name for name, node in on_disk.members(max_depth=None) if listed_nodes.get(name) != dict(node.attrs))


def _check_anndata(root: Group, path: Path) -> None:
    if "obs" not in root:
        raise UserError(f"input {path}: not an AnnData store (no 'obs' group); pass an .h5ad or .zarr written by anndata")


def read_obs(root: Group, path: str | Path) -> pd.DataFrame:
    """Read the whole obs table."""
    try:
        obs = read_elem(root["obs"])
    except Exception as err:
        raise UserError(f"input {path}: cannot read obs ({type(err).__name__}: {err}); the store may be damaged") from None
    return obs


def read_obs_names(root: Group, path: str | Path) -> pd.Index:
    """Read only the obs index (cell ids)."""
    obs = root["obs"]
    index_key = obs.attrs.get("_index", "_index")
    try:
        names = read_elem(obs[index_key])
    except Exception as err:
        raise UserError(f"input {path}: cannot read the obs index ({type(err).__name__}); the store may be damaged") from None
    # zarr v3 returns numpy's variable-width StringDType, which does not cast to '<U'
    return pd.Index([str(x) for x in np.asarray(names, dtype=object)], dtype=object)


def read_obs_column(root: Group, key: str, path: str | Path) -> np.ndarray | pd.Categorical:
    """Read one obs column (no other obs data)."""
    if key not in root["obs"]:
        raise UserError(f"input {path}: obs has no column {key!r}; pick an existing column")
    try:
        return read_elem(root["obs"][key])
    except Exception as err:
        raise UserError(f"input {path}: cannot read obs/{key} ({type(err).__name__}); the store may be damaged") from None


def read_var_names(root: Group, path: str | Path) -> pd.Index:
    """Read only the var index (gene ids)."""
    var = root["var"]
    try:
        names = read_elem(var[var.attrs.get("_index", "_index")])
    except Exception as err:
        raise UserError(f"input {path}: cannot read the var index ({type(err).__name__}); the store may be damaged") from None
    return pd.Index([str(x) for x in np.asarray(names, dtype=object)], dtype=object)


def n_obs(root: Group) -> int:
    """Number of cells, from the obs index alone."""
    obs = root["obs"]
    return int(obs[obs.attrs.get("_index", "_index")].shape[0])


def graph_keys(root: Group, neighbors_key: str) -> tuple[str, str | None]:
    """Resolve the obsp keys of a neighbors entry the way scanpy's ``NeighborsView`` does.

    ``neighbors`` means ``obsp/connectivities`` and ``obsp/distances``; another key reads
    ``uns[key]['connectivities_key']``. A key with no ``uns`` entry may name an ``obsp`` matrix directly.

    Returns
    -------
    The connectivities key and the distances key (``None`` when absent).
    """
    obsp = root["obsp"] if "obsp" in root else {}
    uns = root["uns"] if "uns" in root else {}
    if neighbors_key == "neighbors":
        conn, dist = "connectivities", "distances"
    elif neighbors_key in uns and "connectivities_key" in uns[neighbors_key]:
        entry = uns[neighbors_key]
        conn = str(read_elem(entry["connectivities_key"]))
        dist = str(read_elem(entry["distances_key"])) if "distances_key" in entry else None
    elif neighbors_key in obsp:
        conn, dist = neighbors_key, None
    else:
        conn, dist = "", None
    if conn not in obsp:
        raise UserError(
            f"no kNN graph under --neighbors_key {neighbors_key!r} (looked for obsp/{conn or neighbors_key}); "
            "pass the key of an existing graph or add --recompute_neighbors"
        )
    return conn, dist if dist is not None and dist in obsp else None


def read_matrix(root: Group, key: str, path: str | Path) -> sp.csr_matrix:
    """Read ``obsp[key]`` as a float CSR matrix, whatever layout it was stored in (never an ``np.matrix``)."""
    node = root["obsp"][key]
    check_chunks(node, f"obsp/{key}", path)
    try:
        mat = read_elem(node)
    except Exception as err:
        raise UserError(f"input {path}: cannot read obsp/{key} ({type(err).__name__}); the store may be damaged") from None
    return as_csr(mat)


def check_chunks(node: Any, where: str, path: str | Path) -> None:
    """Fail on a sparse zarr graph whose ``data`` or ``indices`` lack chunk files: zarr would read them as zeros.

    zarr does not write a chunk that holds only the fill value, so a missing chunk is damage only where zeros cannot
    be the content: stored weights and neighbour indices of a kNN graph. A dense graph's zero blocks and a leading
    ``indptr`` chunk of isolated cells are legitimately absent, so ``indptr`` is checked for consistency instead.
    """
    if not isinstance(node, zarr.Group):
        return
    pointers = node.get("indptr")
    if isinstance(pointers, zarr.Array) and "data" in node:
        ptr = np.asarray(pointers[:], dtype=np.int64)
        if ptr.size == 0 or ptr[0] != 0 or (np.diff(ptr) < 0).any() or ptr[-1] != node["data"].shape[0]:
            raise UserError(
                f"input {path}: {where} is incomplete (its indptr is inconsistent); the store was truncated or "
                "damaged, re-export it"
            )
    for key in ("data", "indices"):
        arr = node.get(key)
        if isinstance(arr, zarr.Array) and arr.nchunks_initialized < arr.nchunks:
            raise UserError(
                f"input {path}: {where} is incomplete ({arr.nchunks - arr.nchunks_initialized} of {arr.nchunks} "
                "chunks missing); the store was truncated or damaged, re-export it"
            )


def as_csr(mat: Any) -> sp.csr_matrix:
    """Convert a dense array, ``np.matrix``, dask array or any scipy sparse layout to CSR with float values."""
    if hasattr(mat, "compute"):  # dask
        mat = mat.compute()
    if sp.issparse(mat):
        csr = sp.csr_matrix(mat)
    else:
        csr = sp.csr_matrix(np.asarray(mat))
    if not np.issubdtype(csr.dtype, np.floating):
        csr = csr.astype(np.float64)
    return csr


def obsm_keys(root: Group) -> list[str]:
    """Keys of obsm, empty when the store has none."""
    return sorted(root["obsm"].keys()) if "obsm" in root else []


def read_rep(root: Group, use_rep: str, path: str | Path, rows: np.ndarray | None = None, param: str = "--use_rep") -> np.ndarray:
    """Read ``obsm[use_rep]`` (optionally only some rows) as a dense float array.

    Parameters
    ----------
    root
        Open store.
    use_rep
        The obsm key.
    path
        File name for messages.
    rows
        Sorted row indices to read; all rows when ``None``. Dense arrays are read by rows from disk.
    param
        The parameter that named the key, for messages.
    """
    keys = obsm_keys(root)
    if use_rep not in keys:
        raise UserError(
            f"input {path}: {param} {use_rep!r} is not in obsm (has: {', '.join(keys) or 'nothing'}); "
            "pass an existing obsm key or add --recompute_neighbors to compute PCA"
        )
    node = root["obsm"][use_rep]
    try:
        if _is_dense_array(node):
            if rows is None:
                arr = node[...]
            elif isinstance(node, h5py.Dataset):
                arr = node[rows, :] if len(rows) else np.empty((0, node.shape[1]), node.dtype)
            else:
                arr = node.oindex[rows, :]
        else:
            arr = read_elem(node)
            if isinstance(arr, pd.DataFrame):
                arr = arr.to_numpy()
            if rows is not None:
                arr = arr[rows]
            if sp.issparse(arr):
                arr = arr.toarray()
    except UserError:
        raise
    except Exception as err:
        raise UserError(f"input {path}: cannot read obsm/{use_rep} ({type(err).__name__}); the store may be damaged") from None
    arr = np.asarray(arr, dtype=np.float64 if np.asarray(arr).dtype == np.float64 else np.float32)
    if arr.ndim != 2:
        raise UserError(f"input {path}: obsm/{use_rep} is not a 2-D matrix; pass a cells x dimensions embedding")
    if not np.isfinite(arr).all():
        raise UserError(
            f"input {path}: obsm/{use_rep} contains NaN or infinite values; fix the embedding or pass another {param}"
        )
    return arr


def _is_dense_array(node: Any) -> bool:
    encoding = node.attrs.get("encoding-type", "array")
    return encoding == "array" and (isinstance(node, h5py.Dataset) or isinstance(node, zarr.Array))


def read_uns_entry(root: Group, key: str) -> Any:
    """Read ``uns[key]`` or return ``None`` when absent."""
    if "uns" not in root or key not in root["uns"]:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_elem(root["uns"][key])


def scan_graph(root: Group, key: str, path: str | Path, block: int = 1 << 22) -> dict[str, int]:
    """Read every stored value of ``obsp[key]`` in blocks: refuse damage, NaN, infinite or negative weights.

    scanpy clusters such a graph without complaint (NaN weights give one cell per cluster); the run would only
    fail, or silently mislead, after all its clustering. Reads ``block`` entries at a time, never the whole graph.

    Returns
    -------
    ``n_edges`` (stored non-zero weights) and ``n_isolated`` (cells with no edge).
    """
    node = root["obsp"][key]
    where = f"obsp/{key}"
    check_chunks(node, where, path)
    try:
        if _is_dense_array(node):
            n = int(node.shape[0])
            degree = np.zeros(n, dtype=np.int64)
            rows = max(1, block // max(n, 1))
            for start in range(0, n, rows):
                values = np.asarray(node[start : start + rows])
                _check_weights(values, where, path)
                degree[start : start + rows] = (values != 0).sum(axis=1)
        else:
            n = int(node.attrs["shape"][0])
            data, indices = node["data"], node["indices"]
            pointers = np.asarray(node["indptr"][:], dtype=np.int64)
            csr = node.attrs["encoding-type"] == "csr_matrix"
            # CSR: a row's degree is its stored count less its stored zeros; CSC: count rows in the indices
            degree = np.diff(pointers) if csr else np.zeros(n, dtype=np.int64)
            for start in range(0, int(data.shape[0]), block):
                values = np.asarray(data[start : start + block])
                _check_weights(values, where, path)
                rows = np.asarray(indices[start : start + block])  # read in any case: a damaged chunk fails here
                if csr:
                    zeros = start + np.flatnonzero(values == 0)
                    degree -= np.bincount(np.searchsorted(pointers, zeros, side="right") - 1, minlength=n)[:n]
                else:
                    degree += np.bincount(rows[values != 0], minlength=n)[:n]
    except UserError:
        raise
    except Exception as err:
        raise UserError(
            f"input {path}: cannot read {where} ({type(err).__name__}); the store may be damaged, re-export it"
        ) from None
    return {"n_edges": int(degree.sum()), "n_isolated": int((degree == 0).sum())}


def _check_weights(values: np.ndarray, where: str, path: str | Path) -> None:
    if not np.isfinite(values).all():
        raise UserError(f"input {path}: {where} has NaN or infinite weights; recompute the graph (--recompute_neighbors)")
    if (values < 0).any():
        raise UserError(f"input {path}: {where} has negative weights; pass a kNN connectivity graph or --recompute_neighbors")


def check_obs(root: Group, path: str | Path) -> pd.DataFrame:
    """Read all of obs, as MERGE will, so that a damaged column fails before any clustering.

    Missing chunk files are not an error here: zarr omits a chunk that holds only the fill value (a column whose
    codes are all 0), so only what fails to decode is.
    """
    return read_obs(root, path)


def read_obs_columns(root: Group, path: str | Path, names: list[str]) -> pd.DataFrame:
    """Read only the named obs columns (indexed by cell id), not the whole table."""
    return pd.DataFrame({name: read_obs_column(root, name, path) for name in names}, index=read_obs_names(root, path))
