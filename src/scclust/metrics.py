"""Per-column metrics of a run (metrics.json / metrics.tsv), with scikit-learn's and igraph's metric functions.

The format (``scclust-metrics/1``, README section "Metrics and stability") has: one entry per cluster column,
in config order, no null values. Every column gets its cluster count and sizes, the weighted modularity of its
partition on the clustered graph (at resolution 1 and at the column's own), the silhouette on ``--use_rep``
for a seeded subsample of cells, ARI/NMI to the next lower resolution and to each ``--label_columns`` column;
levels >= 2 also how many parents split; level-1 columns their stability when bootstraps ran.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scclust import io
from scclust.clustering import igraph_from_adjacency
from scclust.config import Config
from scclust.results import ColumnResult, atomic_path
from scclust.stability import RULE, gather_stability, recommend, recommendation_basis

# Silhouette needs all pairwise distances of the cells it scores; 5000 cells (a 100 MB distance matrix, computed
# once and shared by every column) keep its standard error near 0.005 and its cost at ~0.3 s per column.
SILHOUETTE_MAX_CELLS = 5000
FORMAT = "scclust-metrics/1"


def silhouette_cells(n_obs: int, seed: int, max_cells: int = SILHOUETTE_MAX_CELLS) -> np.ndarray:
    """Sorted indices of the cells the silhouette is computed on (all when there are few)."""
    if n_obs <= max_cells:
        return np.arange(n_obs)
    return np.sort(np.random.default_rng(seed).choice(n_obs, size=max_cells, replace=False))


def size_metrics(labels: pd.Categorical, min_cluster_size: int) -> dict[str, Any]:
    """Cluster count and sizes (clusters smaller than ``min_cluster_size`` count as small)."""
    sizes = np.bincount(labels.codes, minlength=len(labels.categories))
    return {
        "n_clusters": len(sizes),
        "size_min": int(sizes.min()),
        "size_median": float(np.median(sizes)),
        "size_max": int(sizes.max()),
        "n_small_clusters": int((sizes < min_cluster_size).sum()),
        "cluster_sizes": {str(c): int(s) for c, s in zip(labels.categories, sizes, strict=True)},
    }


def agreement(name: str, a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """``ari_<name>`` and ``nmi_<name>`` of two labelings of the same cells."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {f"ari_{name}": float(adjusted_rand_score(a, b)), f"nmi_{name}": float(normalized_mutual_info_score(a, b))}


def previous_columns(columns: list[ColumnResult]) -> dict[str, str]:
    """For each column, the column of the next lower resolution of the same algorithm and level, if any."""
    groups: dict[tuple[str, int], list[ColumnResult]] = {}
    for col in columns:
        groups.setdefault((col.params["algorithm"], int(col.params["level"])), []).append(col)
    out = {}
    for group in groups.values():
        ordered = sorted(group, key=lambda c: float(c.params["run_resolution"]))
        out.update({hi.name: lo.name for lo, hi in itertools.pairwise(ordered)})
    return out


def parent_splits(child: pd.Categorical, parent: pd.Categorical) -> dict[str, int]:
    """How many parent clusters there are and how many of them the child column split into two or more."""
    pairs = pd.DataFrame({"parent": parent.codes, "child": child.codes}).drop_duplicates()
    children = pairs.groupby("parent").size()
    return {"n_parents": len(parent.categories), "n_parents_split": int((children > 1).sum())}


def compute_metrics(
    cfg: Config,
    columns: list[ColumnResult],
    adjacency: sp.spmatrix,
    *,
    rep: tuple[str, np.ndarray, np.ndarray] | None,
    labels: dict[str, np.ndarray],
    bootstrap_files: list[str | Path],
    fingerprint: str,
) -> dict[str, Any]:
    """The metrics document of one dataset.

    Parameters
    ----------
    cfg
        The run's config.
    columns
        Every cluster column, in config order.
    adjacency
        The clustered graph (connectivities).
    rep
        ``(obsm key, cell indices, embedding rows of those cells)`` for the silhouette, or ``None`` when the
        run has no embedding (the graph came with the input and ``--use_rep`` is not in obsm).
    labels
        ``--label_columns``: obs column name -> integer codes of its values, -1 where missing (left out).
    bootstrap_files
        The STABILITY tasks' files (empty without bootstraps).
    fingerprint
        The dataset's obs fingerprint, to check the bootstrap files against.
    """
    graph, weights = undirected_graph(adjacency)
    by_name = {c.name: c for c in columns}
    previous = previous_columns(columns)
    silhouette = _Silhouette(rep) if rep is not None else None
    out: dict[str, dict[str, Any]] = {}
    for col in columns:
        p = col.params
        level = int(p["level"])
        codes = col.labels.codes
        entry: dict[str, Any] = {
            "column": col.name,
            "algorithm": p["algorithm"],
            "level": level,
            "resolution": float(p["resolution"]),
            "run_resolution": float(p["run_resolution"]),
        }
        if level > 1:
            entry["parent_column"] = p["parent_column"]
        sizes = size_metrics(col.labels, cfg.level_min_cluster_size(level))
        cluster_sizes = sizes.pop("cluster_sizes")
        entry.update(sizes)
        membership = codes.tolist()
        entry["modularity"] = graph.modularity(membership, weights=weights, resolution=1.0)
        entry["modularity_at_resolution"] = graph.modularity(membership, weights=weights, resolution=entry["resolution"])
        if silhouette is not None:
            entry.update(silhouette.score(codes))
        if col.name in previous:
            entry["previous_column"] = previous[col.name]
            entry.update(agreement("previous", by_name[previous[col.name]].labels.codes, codes))
        for name, values in labels.items():
            known = values >= 0
            entry.update(agreement(name, values[known], codes[known]))
        if level > 1:
            entry.update(parent_splits(col.labels, by_name[p["parent_column"]].labels))
        entry["cluster_sizes"] = cluster_sizes
        out[col.name] = entry
    doc: dict[str, Any] = {"format": FORMAT, "columns": out, "label_columns": list(labels)}
    if cfg.stability_bootstraps > 0:
        level1 = {c.name: c.labels for c in columns if int(c.params["level"]) == 1}
        stability, aris = gather_stability(
            bootstrap_files, level1, n_bootstraps=cfg.stability_bootstraps, fingerprint=fingerprint
        )
        for name, values in stability.items():
            cluster_sizes = out[name].pop("cluster_sizes")
            out[name].update(values)
            out[name]["cluster_sizes"] = cluster_sizes
        doc["stability"] = {
            "bootstraps": cfg.stability_bootstraps,
            "subsample_fraction": cfg.subsample_fraction,
            "seed": cfg.seed,
            "ari": aris,
        }
        doc["recommended"] = recommend(out)
        doc["recommendation_rule"] = RULE
        doc["recommendation_basis"] = recommendation_basis(out, doc["recommended"])
    return doc


def undirected_graph(adjacency: sp.spmatrix) -> tuple[Any, np.ndarray]:
    """The undirected igraph graph scanpy builds from ``adjacency``, with each pair once (weights summed), and its weights.

    scanpy's graph holds every stored ``(i, j)`` as its own edge, so a symmetric matrix gives each pair twice; one
    edge of the summed weight has the same strengths and total weight, hence the same modularity at any resolution,
    and half the edges to build and scan.
    """
    csr = sp.csr_matrix(adjacency)
    once = sp.triu(csr + csr.T, k=1) + sp.diags(csr.diagonal())
    return igraph_from_adjacency(once, directed=False)


class _Silhouette:
    """sklearn's silhouette of many labelings of the same cells, their distance matrix computed once."""

    def __init__(self, rep: tuple[str, np.ndarray, np.ndarray]) -> None:
        from sklearn.metrics import pairwise_distances

        self.key, self.cells, embedding = rep
        self.distances = pairwise_distances(embedding)
        np.fill_diagonal(self.distances, 0.0)  # float rounding leaves ~1e-4 there, which sklearn refuses

    def score(self, codes: np.ndarray) -> dict[str, Any]:
        """Silhouette entries of one column; none where it is undefined (one cluster, or one per cell)."""
        from sklearn.metrics import silhouette_score

        sample = codes[self.cells]
        n_labels = len(np.unique(sample))
        if not 2 <= n_labels <= len(sample) - 1:
            return {}
        value = silhouette_score(self.distances, sample, metric="precomputed")
        return {"silhouette": float(value), "silhouette_n_cells": len(self.cells), "silhouette_rep": self.key}


def read_inputs(
    input_path: str | Path, rep_store: str | Path, cfg: Config, n_obs: int
) -> tuple[tuple[str, np.ndarray, np.ndarray] | None, dict[str, np.ndarray]]:
    """Read what the metrics need besides the graph: the silhouette's embedding rows and the label columns."""
    cells = silhouette_cells(n_obs, cfg.seed)
    rep = None
    with io.open_store(rep_store) as root:
        if cfg.use_rep in io.obsm_keys(root):
            rep = (cfg.use_rep, cells, io.read_rep(root, cfg.use_rep, rep_store, rows=cells))
    labels = {}
    with io.open_store(input_path) as root:
        for name in cfg.label_columns:
            # integer codes: sklearn's metrics sort the labels, and sorting 100k strings costs seconds
            labels[name] = pd.factorize(pd.Series(io.read_obs_column(root, name, input_path)))[0]
    return rep, labels


def metrics_table(doc: dict[str, Any]) -> pd.DataFrame:
    """metrics.tsv: one row per column, ``column`` first, then every scalar (dicts left out), in first-seen order."""
    rows = [{k: v for k, v in entry.items() if not isinstance(v, dict)} for entry in doc["columns"].values()]
    order: list[str] = []
    for row in rows:
        order += [k for k in row if k not in order]
    return pd.DataFrame(rows, columns=order)


def write_metrics(doc: dict[str, Any], json_path: str | Path, tsv_path: str | Path) -> None:
    """Write metrics.json and metrics.tsv atomically (keys sorted in the JSON, so reruns give identical bytes)."""
    import json

    _check_finite(doc)
    tmp = atomic_path(json_path)
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    tmp.replace(json_path)
    tmp = atomic_path(tsv_path)
    metrics_table(doc).to_csv(tmp, sep="\t", index=False)
    tmp.replace(tsv_path)


def _check_finite(value: Any) -> None:
    """No null and no NaN may reach metrics.json (zarr attributes and strict JSON readers reject both)."""
    if isinstance(value, dict):
        for v in value.values():
            _check_finite(v)
    elif isinstance(value, list):
        for v in value:
            _check_finite(v)
    elif value is None or (isinstance(value, float) and not math.isfinite(value)):
        raise ValueError(f"metrics value {value!r} is not a finite number")


def uns_metrics(entry: dict[str, Any]) -> dict[str, Any]:
    """What MERGE stores in ``uns[column]['metrics']``: the scalars and the per-cluster stability."""
    out = {k: v for k, v in entry.items() if not isinstance(v, dict)}
    if "cluster_stability" in entry:
        out["cluster_stability"] = entry["cluster_stability"]
    return out
