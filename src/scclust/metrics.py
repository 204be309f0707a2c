"""Per-column metrics of a run (metrics.json / metrics.tsv), with scikit-learn's and igraph's metric functions.

The format (``scclust-metrics/1``, README section "Metrics and stability") has: one entry per cluster column,
in config order, no null values. Every column gets its cluster count and sizes, the weighted modularity of its
partition on the clustered graph (at resolution 1 and at the column's own), the silhouette on ``--use_rep``
for a seeded subsample of cells, ARI/NMI to the next lower resolution and to each ``--label_columns`` column;
levels >= 2 also how many parents split; level-1 columns their stability when bootstraps ran.

Two stages: :func:`score_columns` where the graph is already built (CLUSTER, and METRICS for deeper levels) and
:func:`compute_metrics` for what needs several columns (MERGE and REPORT, from the same files).
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scclust import io
from scclust.clustering import igraph_from_adjacency, import_igraph
from scclust.config import Config
from scclust.errors import UserError
from scclust.results import ColumnResult, atomic_path
from scclust.stability import RULE, recommend, recommendation_basis
from scclust.stability_rounds import certainty
from scclust.stability_summary import read_summary

# Silhouette needs all pairwise distances of the cells it scores; 5000 cells (a 200 MB distance matrix, computed
# once per task and shared by its columns) keep its standard error near 0.005 and its cost at ~0.3 s per column.
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


def agreement(name: str, a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """``ari_<name>`` and ``nmi_<name>`` of two labelings (non-negative integer codes) of the same cells.

    igraph's ``compare_communities`` (the same values as scikit-learn's, ~2x faster, and no scikit-learn import
    for MERGE and REPORT). Where the agreement means nothing, fewer than two cells or a labeling with a single
    value (every labeling agrees with it, and scikit-learn scores two such labelings as 1.0), both are left out
    and ``undefined`` maps each to the reason.
    """
    reason = None
    if len(a) < 2:
        reason = f"fewer than two cells to compare ({len(a)})"
    elif a.min() == a.max() or b.min() == b.max():
        reason = f"a single value in one of the two labelings of the {len(a)} cells compared"
    if reason is not None:
        return {"undefined": {f"ari_{name}": reason, f"nmi_{name}": reason}}
    igraph = import_igraph()
    out: dict[str, Any] = {f"nmi_{name}": float(igraph.compare_communities(a, b, method="nmi"))}
    ari = float(igraph.compare_communities(a, b, method="ari"))
    if math.isnan(ari):  # no two cells share a cluster in either labeling: the adjustment divides 0 by 0
        out["undefined"] = {f"ari_{name}": "every cell is a cluster of its own in both labelings"}
    else:
        out[f"ari_{name}"] = ari
    return out


def add_scores(out: dict[str, Any], scores: dict[str, Any]) -> None:
    """Add ``scores`` to ``out``, joining their ``undefined`` entries (metric -> why it was left out)."""
    undefined = {**out.get("undefined", {}), **scores.get("undefined", {})}
    out.update(scores)
    if undefined:
        out["undefined"] = undefined


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


class ColumnScorer:
    """The metrics of one column that need the clustered graph or the cells' data, for many columns of one dataset.

    Used by the task that already holds the graph (CLUSTER for level 1, METRICS for deeper levels).
    """

    def __init__(
        self,
        cfg: Config,
        adjacency: sp.spmatrix,
        *,
        rep: tuple[str, np.ndarray, np.ndarray] | None,
        labels: dict[str, np.ndarray],
    ) -> None:
        self.cfg = cfg
        self.edges = sp.coo_matrix(adjacency, dtype=np.float64)
        self.silhouette = _Silhouette(rep) if rep is not None else None
        self.labels = labels

    def score(self, col: ColumnResult) -> dict[str, Any]:
        """Sizes, modularity (at resolution 1 and at the column's own), silhouette and agreement with the labels."""
        codes = col.labels.codes
        out = size_metrics(col.labels, self.cfg.level_min_cluster_size(int(col.params["level"])))
        at_one, at_own = modularity(self.edges, codes, [1.0, float(col.params["resolution"])])
        out["modularity"], out["modularity_at_resolution"] = at_one, at_own
        if self.silhouette is not None:
            out.update(self.silhouette.score(codes))
        for name, values in self.labels.items():
            known = values >= 0
            add_scores(out, agreement(name, values[known], codes[known]))
        return out


def modularity(adjacency: sp.spmatrix, codes: np.ndarray, resolutions: list[float]) -> list[float]:
    """The weighted modularity (igraph's) of a partition of scanpy's graph of ``adjacency``, at each resolution.

    Computed on the graph of the clusters (every edge i-j becomes an edge between their clusters, a self-loop
    within one). igraph counts an edge within a cluster and a self-loop alike (twice its weight inside, once per
    end in the strengths), so the value is the same as on the cells' graph, without igraph converting millions
    of weights per call.
    """
    # no copy when it is a float64 COO already (ColumnScorer converts once); scanpy's float32 weights would be
    # summed in float32 below, off by ~4e-7 at 100k cells
    coo = sp.coo_matrix(adjacency, dtype=np.float64)
    k = int(codes.max()) + 1
    clusters = sp.coo_matrix((coo.data, (codes[coo.row], codes[coo.col])), shape=(k, k)).tocsr()  # sums duplicates
    graph, weights = igraph_from_adjacency(clusters, directed=False)
    return [graph.modularity(range(k), weights=weights, resolution=r) for r in resolutions]


def score_columns(
    cfg: Config, columns: list[ColumnResult], adjacency: sp.spmatrix, input_path: str | Path, rep_path: str | Path
) -> None:
    """Set ``metrics`` of every column that has none, reading the embedding rows and label columns they need."""
    todo = [c for c in columns if not c.metrics]
    if not todo:
        return
    started = time.perf_counter()
    rep, labels = read_inputs(input_path, rep_path, cfg, len(todo[0].labels))
    scorer = ColumnScorer(cfg, adjacency, rep=rep, labels=labels)
    for col in todo:
        col.metrics = scorer.score(col)
    log_seconds(f"scoring {len(todo)} columns", started)


def log_seconds(what: str, started: float) -> None:
    """One stderr line with the seconds a metrics step took (``benchmarks/run_evaluation.py`` adds them up)."""
    print(f"scclust timing: {what}: {time.perf_counter() - started:.3f} s", file=sys.stderr)


def compute_metrics(cfg: Config, columns: list[ColumnResult], *, stability: dict[str, Any] | None) -> dict[str, Any]:
    """The metrics document of one dataset, from its scored columns (:class:`ColumnScorer`) and its stability.

    What needs several columns is added here: ARI/NMI to the next lower resolution, how many parents a level
    split, and level 1's stability and recommendation when bootstraps ran. MERGE and REPORT both call this on
    the same small files, so neither waits for the other.

    Parameters
    ----------
    cfg
        The run's config.
    columns
        Every cluster column, in config order, each with its ``metrics``.
    stability
        STABILITY_SUMMARY's document (:mod:`scclust.stability_summary`); None without bootstraps.
    """
    by_name = {c.name: c for c in columns}
    previous = previous_columns(columns)
    out: dict[str, dict[str, Any]] = {}
    for col in columns:
        if not col.metrics:
            raise UserError(f"column {col.name!r} has no metrics; rerun the pipeline without -resume")
        p = col.params
        level = int(p["level"])
        entry: dict[str, Any] = {
            "column": col.name,
            "algorithm": p["algorithm"],
            "level": level,
            "resolution": float(p["resolution"]),
            "run_resolution": float(p["run_resolution"]),
        }
        if level > 1:
            entry["parent_column"] = p["parent_column"]
        entry.update({k: col.metrics[k] for k in _scored_keys(col.metrics, cfg.label_columns)})
        if col.name in previous:
            entry["previous_column"] = previous[col.name]
            add_scores(entry, agreement("previous", by_name[previous[col.name]].labels.codes, col.labels.codes))
        if level > 1:
            entry.update(parent_splits(col.labels, by_name[p["parent_column"]].labels))
        entry["cluster_sizes"] = col.metrics["cluster_sizes"]
        out[col.name] = entry
    doc: dict[str, Any] = {"format": FORMAT, "columns": out, "label_columns": list(cfg.label_columns)}
    if cfg.stability_bootstraps > 0:
        if stability is None:
            raise UserError("the run has --stability_bootstraps but no stability file; rerun the pipeline with -resume")
        level1 = [c.name for c in columns if int(c.params["level"]) == 1]
        if missing := [name for name in level1 if name not in stability["columns"]]:
            raise UserError(f"the stability file has no column {missing[0]!r}; rerun the pipeline with -resume")
        for name in level1:
            cluster_sizes = out[name].pop("cluster_sizes")
            add_scores(out[name], stability["columns"][name])
            out[name]["cluster_sizes"] = cluster_sizes
        doc["stability"] = {
            "bootstraps": cfg.stability_bootstraps,
            "adaptive": cfg.stability_adaptive,
            "rounds": stability["targets"],
            "subsample_fraction": cfg.subsample_fraction,
            "seed": cfg.seed,
            "ari": {name: stability["ari"][name] for name in level1},
        }
        doc["recommended"] = recommend(out)
        doc["recommendation_rule"] = RULE
        doc["recommendation_basis"] = recommendation_basis(out, doc["recommended"])
        placement = {name: (out[name]["algorithm"], out[name]["run_resolution"]) for name in level1}
        doc["recommendation_certainty"] = certainty({name: out[name] for name in level1}, placement)
    return doc


def dataset_metrics(
    cfg: Config,
    columns: list[ColumnResult],
    *,
    column_metrics: str | Path | None,
    stability_path: str | Path | None,
    fingerprint: str,
) -> dict[str, Any]:
    """:func:`compute_metrics` after adding the deeper levels' metrics from METRICS' ``column_metrics.json``."""
    started = time.perf_counter()
    if column_metrics is not None:
        scored = json.loads(Path(column_metrics).read_text())
        for col in columns:
            col.metrics = col.metrics or scored.get(col.name, {})
    stability = read_summary(stability_path, fingerprint) if stability_path else None
    doc = compute_metrics(cfg, columns, stability=stability)
    log_seconds("metrics of the dataset", started)
    return doc


# metrics.tsv's column order (result files store the scores with their keys sorted)
SCORED = ("n_clusters", "size_min", "size_median", "size_max", "n_small_clusters", "modularity", "modularity_at_resolution")
SCORED += ("silhouette", "silhouette_n_cells", "silhouette_rep")


def _scored_keys(scores: dict[str, Any], label_columns: list[str]) -> list[str]:
    keys = [k for k in SCORED if k in scores]
    keys += [f"{kind}_{name}" for name in label_columns for kind in ("ari", "nmi") if f"{kind}_{name}" in scores]
    return keys + sorted(set(scores) - set(keys) - {"cluster_sizes"})


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
    """What MERGE stores in ``uns[column]['metrics']``: the scalars, the per-cluster stability and what is undefined."""
    out = {k: v for k, v in entry.items() if not isinstance(v, dict)}
    for key in ("cluster_stability", "undefined"):
        if key in entry:
            out[key] = entry[key]
    return out
