"""One dataset's stability, from its bootstrap files, each read once (STABILITY_SUMMARY), for MERGE and REPORT.

With adaptive stability (:mod:`scclust.stability_rounds`) a summary runs after each round: it adds the round's
files to the comparisons kept from the rounds before (``stability.npz``), and its ``stability.json`` says which
columns get the next round and why.

Each level-1 column gets the statistics the recommendation rule uses (the median cluster stability, the lowest
cluster's and the cell-weighted one), each with a standard error over the bootstraps: the jackknife (the statistic
recomputed with one bootstrap left out at a time, ``sqrt((k - 1) / k * sum((t_i - mean(t))^2))``), widened for few
bootstraps by :func:`scclust.stability_rounds.error_scale` so that +- 1.96 errors is a 95% interval. With a
single bootstrap there is no error to estimate, and the errors are left out with the reason.

The lowest cluster's error has a floor (:func:`variance_ratio`): that statistic is one cluster's mean, and a cluster
that dissolves in some bootstraps can look steady in the first few (pbmc68k upsampled to 100k cells: a cluster whose
20-bootstrap mean is 0.25 read 0.63-0.66 +- 0.01 to 0.06 in 8 of 200 draws of 3, enough to settle its column as
passing the rule). Its variance is taken at least as large as the column's clusters vary on average, relative to the
largest variance a value in [0, 1] can have, at the rule's mark 0.5 (a score interval, as Wilson's for a proportion):
``se_min >= sqrt(ratio * 0.25 / k)``. Across pbmc68k upsampled to 20k and 100k cells with noise 0.7 and 1.0, at most
4% of lowest-cluster values with 3, 6 or 10 bootstraps then lie beyond two errors of 20 bootstraps' (up to 62%
without the floor; docs/benchmarks.md section 12).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scclust.clustering import column_name
from scclust.config import Config
from scclust.errors import UserError
from scclust.results import atomic_path, read_results
from scclust.stability import DISSOLVED, STABLE, ColumnStability, read_bootstrap
from scclust.stability_rounds import error_scale, pending, round_targets

FORMAT = "scclust-stability/1"


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


def variance_ratio(table: np.ndarray) -> float:
    """The column's pooled variance over bootstraps relative to its bound: ``sum(var_c) / sum(m_c (1 - m_c))``.

    ``var_c`` is cluster c's variance over the bootstraps that sampled it (two at least) and ``m_c`` its mean; 0
    when no cluster can vary (every mean 0 or 1).
    """
    seen = (~np.isnan(table)).sum(axis=0) >= 2
    if not seen.any():
        return 0.0
    values = table[:, seen]
    means = np.nanmean(values, axis=0)
    bound = float(np.sum(means * (1 - means)))
    return float(np.sum(np.nanvar(values, axis=0, ddof=1))) / bound if bound > 0 else 0.0


def column_summary(labels: pd.Categorical, acc: ColumnStability) -> dict[str, Any]:
    """The stability entries of one column's metrics: the rule's statistics, their errors and the counts."""
    table = acc.table()
    full, loo = loo_per_cluster(table)
    sizes = np.bincount(labels.codes, minlength=len(labels.categories))
    statistics = {
        "stability": lambda p: np.median(p, axis=-1),
        "stability_min": lambda p: p.min(axis=-1),
        "stability_weighted": lambda p: np.average(p, axis=-1, weights=sizes),
    }
    out: dict[str, Any] = {}
    k = len(table)
    for name, statistic in statistics.items():
        out[name] = float(statistic(full))
        if k > 1:
            out[f"{name}_se"] = jackknife_se(statistic(loo)) * error_scale(k)
    if k > 1:
        floor = float(np.sqrt(variance_ratio(table) * DISSOLVED * (1 - DISSOLVED) / k))
        out["stability_min_se"] = max(out["stability_min_se"], floor)
    if k < 2:
        why = "a standard error needs two or more bootstraps; this column got one"
        out["undefined"] = {f"{name}_se": why for name in statistics}
    out.update(
        {
            "n_bootstraps": k,
            "ari_bootstrap_median": float(np.median(acc.aris())),
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
    cfg: Config,
    labels: dict[str, pd.Categorical],
    bootstrap_files: list[str | Path],
    *,
    fingerprint: str,
    round_number: int = 1,
    previous: tuple[dict[str, Any], str | Path] | None = None,
) -> tuple[dict[str, Any], dict[str, ColumnStability]]:
    """Add a round's bootstrap files to the earlier rounds' comparisons; the stability of every level-1 column.

    Parameters
    ----------
    cfg
        The run's config (the cap, whether adaptive, the resolutions).
    labels
        The level-1 columns.
    bootstrap_files
        This round's STABILITY files, each read once.
    fingerprint
        The dataset's obs fingerprint, which every file must carry.
    round_number
        1-based; with adaptive stability, the round after which the summary runs.
    previous
        The previous round's ``stability.json`` document and ``stability.npz`` path (rounds >= 2).

    Returns
    -------
    The ``stability.json`` document and the comparisons to keep for the next round. Every column must have had
    exactly the bootstraps the rounds gave it: ``0 .. k - 1``, ``k`` this round's target if the previous round's
    decision gave it this round, else what it had.
    """
    acc = {name: ColumnStability(lab.codes.astype(np.int64), len(lab.categories)) for name, lab in labels.items()}
    if previous is not None:
        load_state(previous[1], acc)
    for path in bootstrap_files:
        meta, cells, columns = read_bootstrap(path)
        if meta["obs_fingerprint"] != fingerprint:
            raise UserError(f"bootstrap file {path} was computed on other cells; rerun without -resume")
        for name, boot in columns.items():
            if name in acc:
                acc[name].add(meta["bootstrap"], cells, boot)
    targets = round_targets(cfg.stability_bootstraps, cfg.stability_adaptive)
    target = targets[round_number - 1]
    given = set(acc) if previous is None else set(previous[0]["pending"])
    history = {} if previous is None else previous[0]["history"]
    for name, a in acc.items():
        expected = target if name in given else previous[0]["columns"][name]["n_bootstraps"]
        if a.bootstraps != list(range(expected)):
            raise UserError(f"column {name!r} has {len(a.rows)} of {expected} bootstraps; rerun the pipeline with -resume")
    columns = {name: column_summary(labels[name], a) for name, a in acc.items()}
    placement = {column_name(alg, r, 1): (alg, r) for alg in cfg.algorithms for r in cfg.resolutions}
    more = pending(columns, placement) if round_number < len(targets) else {}
    if len(targets) > 1:
        last = round_number == len(targets)
        for name in given:
            step = f"round {round_number}: {target}"
            end = "the cap (--stability_bootstraps)" if last else "settled"
            history[name] = [*history.get(name, []), f"{step}, then more: {more[name]}" if name in more else f"{step}, {end}"]
        for name in set(more) - given:  # settled before, open again: another column's interval moved
            history[name].append(f"after round {round_number}, more again: {more[name]}")
        for name, entry in columns.items():
            entry["n_bootstraps_reason"] = "; ".join(history[name])
    doc = {
        "format": FORMAT,
        "obs_fingerprint": fingerprint,
        "round": round_number,
        "targets": targets,
        "columns": columns,
        "ari": {name: a.aris() for name, a in acc.items()},
        "pending": sorted(more),
        "pending_batches": pending_batches(cfg, more, columns),
        "history": history,
    }
    return doc, acc


def pending_batches(cfg: Config, more: dict[str, str], columns: dict[str, dict[str, Any]]) -> dict[str, list[Any]]:
    """Per algorithm, the next round's columns as ``[first bootstrap, [resolution indices]]`` groups.

    A column settled in an earlier round can open again when another column's interval moves (a higher resolution
    no longer surely passes); it then needs the bootstraps it skipped, so each group starts at its columns' count.
    """
    out: dict[str, list[Any]] = {}
    for alg in cfg.algorithms:
        groups: dict[int, list[int]] = {}
        for i, r in enumerate(cfg.resolutions):
            name = column_name(alg, r, 1)
            if name in more:
                groups.setdefault(columns[name]["n_bootstraps"], []).append(i)
        out[alg] = [[start, indices] for start, indices in sorted(groups.items())]
    return out


def save_state(acc: dict[str, ColumnStability], path: str | Path) -> None:
    """Keep every column's comparisons (bootstrap numbers, Jaccard rows, ARIs) for the next round, atomically."""
    arrays: dict[str, np.ndarray] = {"names": np.array(sorted(acc))}
    for i, name in enumerate(sorted(acc)):
        arrays[f"bootstraps_{i}"] = np.array(acc[name].bootstraps, dtype=np.int64)
        arrays[f"jaccard_{i}"] = acc[name].table()
        arrays[f"ari_{i}"] = np.array(acc[name].aris())
    tmp = atomic_path(path)
    with tmp.open("wb") as fh:
        np.savez(fh, **arrays)
    tmp.replace(path)


def load_state(path: str | Path, acc: dict[str, ColumnStability]) -> None:
    """Put the comparisons :func:`save_state` kept back into ``acc`` (the same columns)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            names = data["names"].tolist()
            if sorted(names) != sorted(acc):
                raise UserError(f"stability state {path} has other columns than this run's; rerun without -resume")
            for i, name in enumerate(names):
                for b, row, ari in zip(data[f"bootstraps_{i}"], data[f"jaccard_{i}"], data[f"ari_{i}"], strict=True):
                    acc[name].rows[int(b)] = (row, float(ari))
    except (OSError, KeyError, ValueError) as err:
        raise UserError(f"stability state {path} is unreadable ({type(err).__name__}); rerun the pipeline with -resume") from None


def read_summary(path: str | Path, fingerprint: str) -> dict[str, Any]:
    """Read stability.json, checked to be of this format and these cells."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"stability file {path} is unreadable ({type(err).__name__}); rerun the pipeline with -resume") from None
    if doc.get("format") != FORMAT or doc.get("obs_fingerprint") != fingerprint:
        raise UserError(f"stability file {path} is not this dataset's ({FORMAT}); rerun without -resume")
    return doc
