"""Levels 2..N: re-cluster every cluster of the level above, fanned out over batches of parent clusters.

Label rule: a child label ``parent_k`` exists only where a cluster really split into two or more clusters. A
cluster that is too small to split (``min_cluster_size``) or whose re-clustering finds a single cluster keeps
its label unchanged, and is listed with the reason under ``params['unsplit']``. So ``5`` at level 2 reads
"not split", never a fake child such as ``5_5`` or ``5_0``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata.io import sparse_dataset

from scclust import io
from scclust.clustering import GraphClusterer, column_name
from scclust.config import Config
from scclust.errors import UserError
from scclust.gpu import cluster_with_backend, gpu_versions
from scclust.multires import base_params
from scclust.neighbors import neighbors_on
from scclust.provenance import package_versions
from scclust.results import ColumnResult, atomic_path, to_jsonable

TOO_SMALL = "below_min_cluster_size"
ONE_CLUSTER = "single_cluster"


def label_key(label: str) -> tuple[int | str, ...]:
    """Sort key of a hierarchical label: its numeric path (``2_0`` before ``10_0``)."""
    return tuple(int(x) if x.isdigit() else x for x in str(label).split("_"))


def sorted_categories(labels: Any) -> list[str]:
    """Unique labels in numeric-path order."""
    return sorted({str(x) for x in labels}, key=label_key)


def plan_batches(labels: pd.Categorical, *, min_cluster_size: int, batch_cells: int) -> tuple[list[list[str]], dict[str, str]]:
    """Group the clusters to split into tasks of about ``batch_cells`` cells.

    Returns
    -------
    The batches (lists of parent labels, at least one batch, possibly empty) and the clusters left unsplit.
    """
    sizes = pd.Series(np.asarray(labels)).value_counts()
    batches: list[list[str]] = []
    current: list[str] = []
    current_cells = 0
    unsplit: dict[str, str] = {}
    for label in sorted_categories(labels.categories):
        size = int(sizes.get(label, 0))
        if size == 0:
            continue
        if size < min_cluster_size:
            unsplit[label] = TOO_SMALL
            continue
        if current and current_cells + size > batch_cells:
            batches.append(current)
            current, current_cells = [], 0
        current.append(label)
        current_cells += size
    if current or not batches:
        batches.append(current)
    return batches, unsplit


def write_batches(result: ColumnResult, cfg: Config, level: int, outdir: str | Path) -> list[Path]:
    """Write one JSON file per batch of parent clusters for re-clustering ``result`` at ``level``."""
    batches, unsplit = plan_batches(
        result.labels, min_cluster_size=cfg.level_min_cluster_size(level), batch_cells=cfg.subcluster_batch_cells
    )
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, clusters in enumerate(batches):
        path = out / f"{result.name}.{i:05d}.json"
        payload = {
            "column": result.name,
            "level": level,
            "batch": i,
            "n_batches": len(batches),
            "clusters": clusters,
            "unsplit": unsplit,
        }
        path.write_text(json.dumps(payload, sort_keys=True))
        paths.append(path)
    return paths


def knn_transformer(n_cells: int, exact_max_cells: int) -> str | None:
    """``"sklearn"`` (exact kNN) up to ``exact_max_cells`` cells, else scanpy's default.

    scanpy itself is exact below 8192 cells; above, pynndescent's search compiles for ~30 s in every new process
    (closures that numba cannot cache, unlike the kernels of ``neighbors.cache_numba_kernels``).
    """
    return "sklearn" if n_cells <= exact_max_cells else None


def _induced_graph(root: io.Group, cfg: Config, cells: np.ndarray, path: str | Path) -> Any:
    conn, _ = io.graph_keys(root, cfg.neighbors_key)
    rows = sparse_dataset(root["obsp"][conn])[cells]  # reads only these rows from disk
    return io.as_csr(rows)[:, cells]


def subcluster_batch(
    parent: ColumnResult,
    clusters: list[str],
    *,
    level: int,
    cfg: Config,
    rep_store: str | Path,
    graph_store: str | Path,
) -> dict[str, Any]:
    """Re-cluster each listed parent cluster on its own cells.

    Returns
    -------
    ``{"cells": int array, "labels": str array, "clusters": {parent: info}}`` for the re-clustered cells.
    """
    parent_labels = np.asarray(parent.labels).astype(str)
    spec = cfg.spec(parent.params["algorithm"], parent.params["run_resolution"], level)
    n_neighbors = cfg.level_n_neighbors(level)
    all_cells: list[np.ndarray] = []
    all_labels: list[np.ndarray] = []
    info: dict[str, Any] = {}
    store = graph_store if cfg.subcluster_graph == "induced" else rep_store
    with io.open_store(store) as root:
        for label in clusters:
            cells = np.flatnonzero(parent_labels == label)
            knn = None
            if cfg.subcluster_graph == "induced":
                adjacency = _induced_graph(root, cfg, cells, store)
                k = None
            else:
                rep = io.read_rep(root, cfg.use_rep, store, rows=cells)
                k = min(n_neighbors, len(cells) - 1)
                knn = knn_transformer(len(cells), cfg.exact_knn_max_cells)
                adjacency = neighbors_on(rep, cfg, n_neighbors=k, key="neighbors", transformer=knn).obsp["connectivities"]
            [(child, backend)] = cluster_with_backend(
                GraphClusterer(adjacency),
                [spec],
                use_gpu=cfg.use_gpu,
                n_cell_cpu=cfg.n_cell_cpu,
                max_cluster_factor=cfg.max_cluster_factor,
                max_singleton_fraction=cfg.max_singleton_fraction,
            )
            n_children = len(child.categories)
            if n_children > 1:
                labels = np.char.add(f"{label}_", np.asarray(child).astype(str))
            else:
                labels = np.full(len(cells), label)
            all_cells.append(cells)
            all_labels.append(labels.astype(str))
            info[label] = {
                "n_cells": len(cells),
                "n_children": n_children,
                **({} if k is None else {"n_neighbors": k}),
                "knn_transformer": knn or "scanpy default",
                **backend,
            }
    return {
        "cells": np.concatenate(all_cells) if all_cells else np.zeros(0, dtype=np.int64),
        "labels": np.concatenate(all_labels) if all_labels else np.zeros(0, dtype=str),
        "clusters": info,
    }


def write_partial(path: str | Path, partial: dict[str, Any], batch: dict[str, Any]) -> None:
    """Save a batch's result (atomically)."""
    tmp = atomic_path(path)
    meta = json.dumps(to_jsonable({"clusters": partial["clusters"], "batch": batch}), sort_keys=True)
    with tmp.open("wb") as fh:
        np.savez_compressed(
            fh,
            cells=partial["cells"].astype(np.int64),
            labels=partial["labels"].astype("U"),
            meta=np.array(meta),
        )
    tmp.replace(path)


def read_partial(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Load a batch's result."""
    with np.load(path, allow_pickle=False) as data:
        return data["cells"], data["labels"], json.loads(str(data["meta"]))


def collect_level(
    parent: ColumnResult, partials: list[str | Path], *, level: int, cfg: Config, dataset: dict[str, Any]
) -> ColumnResult:
    """Join a level's batches into the level's column, with its params."""
    labels = np.asarray(parent.labels).astype(object)
    unsplit: dict[str, str] = {}
    clusters: dict[str, Any] = {}
    seen_batches: set[int] = set()
    expected = None
    for path in sorted(partials, key=str):
        cells, child, meta = read_partial(path)
        batch = meta["batch"]
        expected = batch["n_batches"]
        seen_batches.add(batch["batch"])
        unsplit.update(batch["unsplit"])
        labels[cells] = child
        clusters.update(meta["clusters"])
    if expected is None or seen_batches != set(range(expected)):
        raise UserError(f"level {level} of {parent.name}: missing batch results; rerun the pipeline with -resume")
    for label, entry in clusters.items():
        if entry["n_children"] < 2:
            unsplit[label] = ONE_CLUSTER
    categorical = pd.Categorical(labels.astype(str), categories=sorted_categories(labels))
    run_resolution = parent.params["run_resolution"]
    spec = cfg.spec(parent.params["algorithm"], run_resolution, level)
    name = column_name(spec.algorithm, run_resolution, level)
    backends = sorted({e["backend"] for e in clusters.values()}) or ["cpu"]
    fallbacks = {k: e["fallback"] for k, e in clusters.items() if e.get("fallback")}
    params = {
        **base_params(spec, cfg, dataset, level=level, run_resolution=run_resolution),
        "parent_column": parent.name,
        "n_clusters": len(categorical.categories),
        "subcluster_graph": cfg.subcluster_graph,
        "n_neighbors": cfg.level_n_neighbors(level),
        "min_cluster_size": cfg.level_min_cluster_size(level),
        "exact_knn_max_cells": cfg.exact_knn_max_cells,
        "level_args": to_jsonable({k: v for k, v in vars(cfg.level_args(level)).items() if v is not None}),
        "unsplit": dict(sorted(unsplit.items(), key=lambda kv: label_key(kv[0]))),
        "subclusters": {k: clusters[k] for k in sorted(clusters, key=label_key)},
        "backend": backends[0] if len(backends) == 1 else "mixed",
        **({"fallback": fallbacks} if fallbacks else {}),
        "requested_gpu": cfg.use_gpu,
        "versions": {**package_versions(), **gpu_versions()},
    }
    return ColumnResult(name, categorical, to_jsonable(params))
