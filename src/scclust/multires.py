"""Level 1: several resolutions (and algorithms) of one graph in one task, the graph built once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import scipy.sparse as sp

from scclust import io
from scclust.clustering import ClusterSpec, GraphClusterer, column_name
from scclust.config import Config
from scclust.errors import UserError
from scclust.gpu import cluster_with_backend, gpu_versions
from scclust.metrics import score_columns
from scclust.neighbors import rep_store
from scclust.provenance import package_versions
from scclust.results import ColumnResult


def load_graph(graph_store: str | Path, cfg: Config, dataset: dict[str, Any]) -> sp.csr_matrix:
    """Read the connectivities the run clusters (the input's, or the recomputed store's), nothing else."""
    with io.open_store(graph_store) as root:
        conn, _ = io.graph_keys(root, cfg.neighbors_key)
        adjacency = io.read_matrix(root, conn, graph_store)
    if adjacency.shape[0] != dataset["n_obs"]:
        raise UserError(
            f"graph in {graph_store} has {adjacency.shape[0]} cells, the input {dataset['n_obs']}; add --recompute_neighbors"
        )
    return adjacency


def base_params(spec: ClusterSpec, cfg: Config, dataset: dict[str, Any], *, level: int, run_resolution: float) -> dict[str, Any]:
    """Params every column records, whatever its level."""
    return {
        **spec.params(),
        "level": level,
        "run_resolution": run_resolution,
        "neighbors_key": cfg.neighbors_key,
        "use_rep": cfg.use_rep,
        "n_neighbors": cfg.n_neighbors,
        "graph": dataset["graph"],
        "input": dataset["input"],
        "use_gpu": cfg.use_gpu,
        "n_cell_cpu": cfg.n_cell_cpu,
        "max_cluster_factor": cfg.max_cluster_factor,
        "max_singleton_fraction": cfg.max_singleton_fraction,
        **({"warnings": dataset["warnings"]} if dataset.get("warnings") else {}),
    }


def cluster_resolutions(
    graph_store: str | Path,
    cfg: Config,
    dataset: dict[str, Any],
    algorithm: str,
    resolutions: list[float],
    input_path: str | Path,
) -> list[ColumnResult]:
    """Cluster the dataset's graph at each resolution with one algorithm; return level-1 columns with params.

    Each column's metrics (:func:`scclust.metrics.score_columns`) are computed here too, on the graph this task
    has already read, so that no later task reads it again; ``input_path`` is read for the silhouette's
    embedding rows and the ``--label_columns`` only.
    """
    clusterer = GraphClusterer(load_graph(graph_store, cfg, dataset))
    versions = {**package_versions(), **gpu_versions()}
    specs = [cfg.spec(algorithm, r, level=1) for r in resolutions]
    keys = [json.dumps(spec.params(), sort_keys=True) for spec in specs]
    # a level-1 --hierarchy resolution gives every tree the same level-1 clustering: compute it once per task; all
    # resolutions go to the backend together, so the GPU builds its graph once
    unique = dict(zip(keys, specs, strict=True))
    backend_args: dict[str, Any] = {
        "use_gpu": cfg.use_gpu,
        "n_cell_cpu": cfg.n_cell_cpu,
        "max_cluster_factor": cfg.max_cluster_factor,
        "max_singleton_fraction": cfg.max_singleton_fraction,
    }
    results = dict(zip(unique, cluster_with_backend(clusterer, list(unique.values()), **backend_args), strict=True))
    out = []
    for resolution, spec, key in zip(resolutions, specs, keys, strict=True):
        labels, backend = results[key]
        params = {
            **base_params(spec, cfg, dataset, level=1, run_resolution=resolution),
            "n_clusters": len(labels.categories),
            **backend,
            "versions": versions,
        }
        out.append(ColumnResult(column_name(algorithm, resolution, 1), labels, params))
    score_columns(cfg, out, clusterer.adjacency, input_path, rep_store(input_path, graph_store, cfg.use_rep))
    return out
