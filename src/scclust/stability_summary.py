"""One dataset's stability, computed once from its bootstrap files (STABILITY_SUMMARY) for MERGE and REPORT.

Each level-1 column gets the statistics the recommendation rule uses (the median cluster stability, the lowest
cluster's and the cell-weighted one), each with a jackknife standard error over the bootstraps: the statistic
recomputed with one bootstrap left out at a time, ``se = sqrt((k - 1) / k * sum((t_i - mean(t))^2))``. With a
single bootstrap there is no error to estimate, and the errors are left out with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scclust.errors import UserError
from scclust.results import atomic_path, read_results
from scclust.stability import DISSOLVED, STABLE, ColumnStability, read_bootstrap

FORMAT = "scclust-stability/1"
RULE_STATISTICS = ("stability", "stability_min", "stability_weighted")


def loo_per_cluster(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster mean stability, with all bootstraps and with each one left out.

    Parameters
    ----------
    table
        Best Jaccard per (bootstrap, cluster); NaN where a bootstrap sampled none of the cluster's cells.

    Returns
    -------
    The means (0 for a cluster no bootstrap sampled) and a
    ``(bootstraps, clusters)`` array of leave-one-out means; leaving out a bootstrap that did not sample a
    cluster, or the only one that did, keeps that cluster's mean.
    """
    seen = ~np.isnan(table)
    values = np.where(seen, table, 0.0)
    sums, counts = values.sum(axis=0), seen.sum(axis=0)
    full = np.divide(sums, counts, out=np.zeros(table.shape[1]), where=counts > 0)
    drop = seen & (counts > 1)
    loo = np.divide(sums - values, counts - 1, out=np.broadcast_to(full, table.shape).copy(), where=drop)
    return full, loo


def jackknife_se(values: np.ndarray) -> float:
    """Jackknife standard error from the leave-one-out values of a statistic (at least two)."""
    k = len(values)
    return float(np.sqrt((k - 1) / k * np.sum((values - values.mean()) ** 2)))


def column_summary(labels: pd.Categorical, acc: ColumnStability) -> dict[str, Any]:
    """The stability entries of one column's metrics: the rule's statistics, their errors and the counts."""
    table = np.vstack(acc.jaccard)
    full, loo = loo_per_cluster(table)
    sizes = np.bincount(labels.codes, minlength=len(labels.categories))
    statistics = {
        "stability": lambda p: np.median(p, axis=-1),
        "stability_min": lambda p: p.min(axis=-1),
        "stability_weighted": lambda p: np.average(p, axis=-1, weights=sizes),
    }
    out: dict[str, Any] = {}
    for name, statistic in statistics.items():
        out[name] = float(statistic(full))
        if len(table) > 1:
            out[f"{name}_se"] = jackknife_se(statistic(loo))
    if len(table) < 2:
        why = "a standard error needs two or more bootstraps; this column got one"
        out["undefined"] = {f"{name}_se": why for name in statistics}
    out.update(
        {
            "n_bootstraps": len(table),
            "ari_bootstrap_median": float(np.median(acc.ari)),
            "n_unstable_clusters": int((full < DISSOLVED).sum()),
            "n_stable_clusters": int((full >= STABLE).sum()),
            "cluster_stability": {str(c): float(s) for c, s in zip(labels.categories, full, strict=True)},
        }
    )
    return out


def level1_labels(result_files: list[str | Path], fingerprint: str) -> dict[str, pd.Categorical]:
    """The level-1 columns of CLUSTER's result files, checked against the dataset's cells."""
    labels = {}
    for path in result_files:
        meta, columns = read_results(path)
        if meta["obs_fingerprint"] != fingerprint:
            raise UserError(f"result {path} was computed on other cells; rerun without -resume")
        labels.update({c.name: c.labels for c in columns if int(c.params["level"]) == 1})
    return labels


def summarise(
    bootstrap_files: list[str | Path], labels: dict[str, pd.Categorical], *, n_bootstraps: int, fingerprint: str
) -> dict[str, Any]:
    """Read every bootstrap file of a dataset once; the stability of each level-1 column and its bootstraps' ARI.

    Every column must have bootstraps ``0 .. n_bootstraps - 1`` exactly, whatever files they came in.
    """
    acc = {name: ColumnStability(lab.codes.astype(np.int64), len(lab.categories)) for name, lab in labels.items()}
    seen: dict[str, list[int]] = {name: [] for name in labels}
    for path in bootstrap_files:
        meta, cells, columns = read_bootstrap(path)
        if meta["obs_fingerprint"] != fingerprint:
            raise UserError(f"bootstrap file {path} was computed on other cells; rerun without -resume")
        for name, boot in columns.items():
            if name in acc:
                acc[name].add(cells, boot)
                seen[name].append(meta["bootstrap"])
    for name, got in seen.items():
        if sorted(got) != list(range(n_bootstraps)):
            raise UserError(f"column {name!r} has {len(got)} of {n_bootstraps} bootstraps; rerun the pipeline with -resume")
        # in bootstrap order, whatever order the files came in: the sums, and so every bit, are the same
        order = np.argsort(got)
        acc[name].jaccard = [acc[name].jaccard[i] for i in order]
        acc[name].ari = [acc[name].ari[i] for i in order]
    return {
        "format": FORMAT,
        "obs_fingerprint": fingerprint,
        "columns": {name: column_summary(labels[name], a) for name, a in acc.items()},
        "ari": {name: a.ari for name, a in acc.items()},
    }


def write_summary(doc: dict[str, Any], path: str | Path) -> None:
    """Write stability.json atomically (keys sorted, so a rerun gives the same bytes)."""
    tmp = atomic_path(path)
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def read_summary(path: str | Path, fingerprint: str) -> dict[str, Any]:
    """Read stability.json, checked to be of this format and these cells."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"stability file {path} is unreadable ({type(err).__name__}); rerun the pipeline with -resume") from None
    if doc.get("format") != FORMAT or doc.get("obs_fingerprint") != fingerprint:
        raise UserError(f"stability file {path} is not this dataset's ({FORMAT}); rerun without -resume")
    return doc
