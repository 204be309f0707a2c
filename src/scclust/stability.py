"""Stability of level-1 clusterings under subsampling (clusterboot, Hennig 2007), fanned out as tasks.

Bootstrap ``b`` draws ``round(f * n)`` cells without replacement, seeded by ``(seed, b)``, and clusters the
subgraph of the clustered graph induced by them at every (algorithm, resolution) of level 1 with the run's
arguments. A full-data cluster's stability is the mean over bootstraps of its best Jaccard overlap with a
bootstrap cluster, both restricted to the sampled cells; every overlap comes from one sparse contingency table
per (column, bootstrap), so the cost is O(n), never an n x n co-clustering matrix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scclust.clustering import GraphClusterer, column_name
from scclust.errors import UserError
from scclust.results import atomic_path

if TYPE_CHECKING:  # config imports the round schedule (stability_rounds), which imports this module
    from scclust.config import Config

STABLE = 0.75  # clusterboot: "highly stable" above 0.85, "stable" from 0.75; below 0.5 a cluster "dissolved"
DISSOLVED = 0.5
RULE = (
    "per algorithm, the highest level-1 resolution whose median cluster stability is at least 0.75 (most clusters "
    "stable, clusterboot) and none of whose clusters falls below 0.5 (dissolved); if no resolution qualifies, the one "
    "with the highest cell-weighted stability"
)


def subsample(n_obs: int, fraction: float, seed: int, bootstrap: int) -> np.ndarray:
    """Sorted indices of the cells of one bootstrap: the same for the same ``(seed, bootstrap)`` anywhere."""
    size = min(n_obs, max(2, round(fraction * n_obs)))
    rng = np.random.default_rng([seed, bootstrap])
    return np.sort(rng.choice(n_obs, size=size, replace=False))


def cluster_bootstrap(adjacency: Any, cfg: Config, algorithm: str, resolutions: list[float], bootstrap: int) -> dict[str, Any]:
    """Cluster one bootstrap's induced subgraph at each resolution, building the igraph graph once.

    Returns
    -------
    ``{"bootstrap": b, "cells": sorted indices, "columns": {column: membership per sampled cell}}``.
    """
    cells = subsample(adjacency.shape[0], cfg.subsample_fraction, cfg.seed, bootstrap)
    clusterer = GraphClusterer(adjacency[cells][:, cells])
    columns = {column_name(algorithm, r, 1): clusterer.membership(cfg.spec(algorithm, r, level=1)) for r in resolutions}
    return {"bootstrap": bootstrap, "cells": cells, "columns": columns}


def write_bootstrap(path: str | Path, result: dict[str, Any], *, fingerprint: str) -> None:
    """Save a bootstrap task's memberships (atomically)."""
    names = list(result["columns"])
    meta = {"format": "scclust-bootstrap/1", "bootstrap": result["bootstrap"], "obs_fingerprint": fingerprint, "columns": names}
    arrays = {f"codes_{i}": np.asarray(result["columns"][n], dtype=np.int32) for i, n in enumerate(names)}
    tmp = atomic_path(path)
    with tmp.open("wb") as fh:
        np.savez_compressed(fh, meta=np.array(json.dumps(meta)), cells=result["cells"].astype(np.int64), **arrays)
    tmp.replace(path)


def read_bootstrap(path: str | Path) -> tuple[dict[str, Any], np.ndarray, dict[str, np.ndarray]]:
    """Load what :func:`write_bootstrap` saved: header, sampled cells, membership per column."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return meta, data["cells"], {n: data[f"codes_{i}"] for i, n in enumerate(meta["columns"])}
    except (OSError, KeyError, ValueError) as err:
        raise UserError(f"bootstrap file {path} is unreadable ({type(err).__name__}); rerun the pipeline with -resume") from None


def best_jaccard(full: np.ndarray, boot: np.ndarray, n_full: int) -> np.ndarray:
    """Per full-data cluster, the best Jaccard overlap with any bootstrap cluster, on the same cells.

    Parameters
    ----------
    full
        Full-data cluster codes (``0..n_full-1``) of the sampled cells.
    boot
        Bootstrap cluster ids of the same cells.
    n_full
        Number of full-data clusters.

    Returns
    -------
    Length ``n_full``; NaN for a cluster with no sampled cell (clusterboot skips it in that bootstrap).
    """
    from sklearn.metrics.cluster import contingency_matrix

    rows, full_codes = np.unique(full, return_inverse=True)
    table = contingency_matrix(full_codes, boot, sparse=True).tocoo()
    row_sizes = np.asarray(table.sum(axis=1)).ravel()
    col_sizes = np.asarray(table.sum(axis=0)).ravel()
    jaccard = table.data / (row_sizes[table.row] + col_sizes[table.col] - table.data)
    best = np.zeros(len(rows))
    np.maximum.at(best, table.row, jaccard)
    out = np.full(n_full, np.nan)
    out[rows] = best
    return out


@dataclass
class ColumnStability:
    """One level-1 column's comparisons with its bootstraps, kept by bootstrap number.

    Whatever order bootstraps arrive in (files, rounds), :meth:`table` and :meth:`aris` list them in bootstrap
    order, so every sum over them, and so every bit of the statistics, is the same.
    """

    codes: np.ndarray
    n_clusters: int
    rows: dict[int, tuple[np.ndarray, float]] = field(default_factory=dict)

    def add(self, bootstrap: int, cells: np.ndarray, boot: np.ndarray) -> None:
        """Compare one bootstrap clustering of ``cells`` with the full clustering restricted to them."""
        from sklearn.metrics import adjusted_rand_score

        if bootstrap in self.rows:  # a file given twice, or a round's file for a bootstrap an earlier round kept
            raise UserError(f"bootstrap {bootstrap} was given twice; rerun the pipeline without -resume")
        full = self.codes[cells]
        self.rows[bootstrap] = (best_jaccard(full, boot, self.n_clusters), float(adjusted_rand_score(full, boot)))

    @property
    def bootstraps(self) -> list[int]:
        """The bootstrap numbers compared so far, in order."""
        return sorted(self.rows)

    def table(self) -> np.ndarray:
        """Best Jaccard per (bootstrap, cluster), bootstraps in order; NaN where one sampled none of a cluster."""
        return np.vstack([self.rows[b][0] for b in self.bootstraps])

    def aris(self) -> list[float]:
        """Each bootstrap's ARI to the full clustering on its cells, in bootstrap order."""
        return [self.rows[b][1] for b in self.bootstraps]


MET_RULE = "met the rule"  # recommendation_basis of a column that met RULE; anything else is its fallback


def meets_rule(entry: dict[str, Any]) -> bool:
    """Whether a column's clusters are mostly stable and none dissolved (:data:`RULE` without its fallback)."""
    return entry["stability"] >= STABLE and entry["n_unstable_clusters"] == 0


def recommendation_basis(columns: dict[str, dict[str, Any]], recommended: dict[str, str]) -> dict[str, str]:
    """Per algorithm, whether its recommended column met the rule or is the fallback, in words for the user."""
    return {
        algorithm: MET_RULE
        if meets_rule(columns[column])
        else "fallback: no column met the rule, so the one with the highest cell-weighted stability"
        for algorithm, column in recommended.items()
    }


def recommend(columns: dict[str, dict[str, Any]]) -> dict[str, str]:
    """One column per algorithm by :data:`RULE`, from the metrics of level-1 columns with stability."""
    by_algorithm: dict[str, list[dict[str, Any]]] = {}
    for entry in columns.values():
        if entry["level"] == 1 and "stability" in entry:
            by_algorithm.setdefault(entry["algorithm"], []).append(entry)
    out = {}
    for algorithm, entries in by_algorithm.items():
        ok = [e for e in entries if meets_rule(e)]
        if ok:
            best = max(ok, key=lambda e: e["run_resolution"])
        else:  # ties go to the lower resolution
            best = max(entries, key=lambda e: (e["stability_weighted"], -e["run_resolution"]))
        out[algorithm] = best["column"]
    return out
