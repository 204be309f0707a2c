#!/usr/bin/env python
"""How well a few bootstraps' standard errors predict the stability of many (issue 20), and what rounds cost.

``collect`` clusters a dataset's kNN graph at level 1 and its first ``--bootstraps`` bootstraps exactly as the
pipeline does (the library's ``cluster_bootstrap`` with the pipeline's defaults) and keeps every column's table of
best Jaccard per (bootstrap, cluster). ``analyse`` draws many subsets of ``k`` of those bootstraps and compares each
column's statistics with ``k`` against all of them: how often the value of all lies beyond two reported errors,
and how often the adaptive rule would settle a column on the wrong side of the rule. ``simulate`` replays the
pipeline's adaptive rounds on random orders of the bootstraps: bootstraps spent, and whether the recommendation is
the fixed run's (the same first ``--cap``) and that of all bootstraps. ``--variant`` swaps the pipeline's errors for
an alternative, to compare.

    PY=../.venv/bin/python
    $PY stability_calibration.py collect --input data/pbmc_up_20k_n07.zarr --out data/calib_20k_n07.npz
    $PY stability_calibration.py analyse data/calib_*.npz
    $PY stability_calibration.py simulate data/calib_*.npz
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

STATISTICS = ("stability", "stability_min", "stability_weighted")


@click.group()
@click.option(
    "--variant",
    type=click.Choice(["pipeline", "jackknife", "no-min-floor", "min-estimate", "floor-all"]),
    default="pipeline",
    show_default=True,
    help="The errors: the pipeline's, or an alternative (see alternative_errors()).",
)
def main(variant: str) -> None:
    """Calibration of the stability errors."""
    global VARIANT
    VARIANT = variant


@main.command()
@click.option("--input", "input_", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--bootstraps", type=int, default=20, show_default=True)
@click.option("--resolutions", default="0.2,0.4,0.6,0.8,1.0,1.2,1.4,1.6,1.8,2.0", show_default=True)
def collect(input_: Path, out: Path, bootstraps: int, resolutions: str) -> None:
    """Cluster level 1 and ``--bootstraps`` bootstraps; save each column's Jaccard table."""
    import zarr
    from anndata.io import read_elem

    from scclust.clustering import GraphClusterer, column_name
    from scclust.config import config_from_params
    from scclust.stability import ColumnStability, cluster_bootstrap

    cfg = config_from_params({"resolutions": resolutions, "stability_bootstraps": bootstraps})
    adjacency = read_elem(zarr.open_group(str(input_), mode="r")["obsp/connectivities"]).tocsr()
    t0 = time.perf_counter()
    clusterer = GraphClusterer(adjacency)
    labels = {column_name("leiden", r, 1): clusterer.labels(cfg.spec("leiden", r)) for r in cfg.resolutions}
    acc = {n: ColumnStability(lab.codes.astype(np.int64), len(lab.categories)) for n, lab in labels.items()}
    for b in range(bootstraps):
        result = cluster_bootstrap(adjacency, cfg, "leiden", cfg.resolutions, b)
        for name, boot in result["columns"].items():
            acc[name].add(b, result["cells"], boot)
        click.echo(f"bootstrap {b}: {time.perf_counter() - t0:.0f} s", err=True)
    arrays = {}
    for name, a in acc.items():
        arrays[f"table|{name}"] = a.table()
        arrays[f"sizes|{name}"] = np.bincount(labels[name].codes, minlength=len(labels[name].categories))
    np.savez(out, **arrays)


VARIANT = "pipeline"


def alternative_errors(table: np.ndarray, sizes: np.ndarray, entry: dict) -> dict:
    """The errors of an alternative to the pipeline's (``--variant``), from the same table.

    ``jackknife``: all three plain jackknife errors (not widened, no floor), as before this calibration;
    ``no-min-floor``: the lowest cluster's error without its floor (the widened jackknife, as the other two);
    ``min-estimate``: the lowest cluster's floor taken at its value instead of at the mark 0.5; ``floor-all``: the
    median's and the weighted stability's errors floored too, each at its own value (the weighted one as a weighted
    mean of independent clusters).
    """
    from scclust.stability_rounds import error_scale
    from scclust.stability_summary import jackknife_se, loo_per_cluster, variance_ratio

    k, ratio, out = len(table), variance_ratio(table), dict(entry)
    full, loo = loo_per_cluster(table)
    jack_min = jackknife_se(loo.min(axis=-1)) * error_scale(k)
    if VARIANT == "jackknife":
        statistics = {"stability": np.median(loo, axis=-1), "stability_min": loo.min(axis=-1)}
        statistics["stability_weighted"] = np.average(loo, axis=-1, weights=sizes)
        out.update({f"{name}_se": jackknife_se(values) for name, values in statistics.items()})
    elif VARIANT == "no-min-floor":
        out["stability_min_se"] = jack_min
    elif VARIANT == "min-estimate":
        low = entry["stability_min"]
        out["stability_min_se"] = max(jack_min, float(np.sqrt(ratio * low * (1 - low) / k)))
    elif VARIANT == "floor-all":
        m = entry["stability"]
        out["stability_se"] = max(entry["stability_se"], float(np.sqrt(ratio * m * (1 - m) / k)))
        w = sizes / sizes.sum()
        floor = float(np.sqrt(ratio * np.sum(w**2 * full * (1 - full)) / k))
        out["stability_weighted_se"] = max(entry["stability_weighted_se"], floor)
    return out


def statistics(table: np.ndarray, sizes: np.ndarray) -> dict[str, float]:
    """The rule's statistics and their jackknife errors, as the pipeline computes them."""
    import pandas as pd

    from scclust.stability import ColumnStability
    from scclust.stability_summary import column_summary

    acc = ColumnStability(np.zeros(0, dtype=np.int64), table.shape[1])
    acc.rows = {b: (row, 0.0) for b, row in enumerate(table)}
    labels = pd.Categorical.from_codes(np.repeat(np.arange(len(sizes)), sizes), categories=[str(i) for i in range(len(sizes))])
    entry = column_summary(labels, acc)
    return alternative_errors(table, sizes, entry) if VARIANT != "pipeline" and len(table) > 1 else entry


def load(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    with np.load(path) as data:
        names = sorted({k.split("|", 1)[1] for k in data.files}, key=lambda n: float(n.split("_")[1]))
        return {n: (data[f"table|{n}"], data[f"sizes|{n}"]) for n in names}


@main.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--subsets", type=int, default=100, show_default=True, help="Random subsets of k bootstraps per k.")
@click.option("--ks", default="3,4,5,6,10", show_default=True)
def analyse(files: tuple[Path, ...], subsets: int, ks: str) -> None:
    """Per dataset and k: how often |estimate - all bootstraps| > 2 errors; per column, the statistics."""
    from scclust.stability import meets_rule
    from scclust.stability_rounds import outcome

    rng = np.random.default_rng(0)
    for path in files:
        columns = load(path)
        n_boot = next(iter(columns.values()))[0].shape[0]
        click.echo(f"\n## {path.name} ({n_boot} bootstraps)\n")
        click.echo("| column | clusters | " + " | ".join(f"{s} (all) +- se" for s in STATISTICS) + " | fixed run (10) |")
        click.echo("|---" * 5 + "|")
        truth = {}
        for name, (table, sizes) in columns.items():
            truth[name] = statistics(table, sizes)
            ten = statistics(table[:10], sizes)
            cells = " | ".join(f"{truth[name][s]:.3f} +- {truth[name][f'{s}_se']:.3f}" for s in STATISTICS)
            click.echo(f"| {name} | {len(sizes)} | {cells} | {'pass' if meets_rule(ten) else 'fail'} |")
        click.echo("\n| k | statistic | share beyond 2 se | beyond 3 se | median abs z | wrongly settled (of settled) |")
        click.echo("|---|---|---|---|---|---|")
        for k in map(int, ks.split(",")):
            z = {s: [] for s in STATISTICS}
            settled = wrong = 0
            for name, (table, sizes) in columns.items():
                ten = "pass" if meets_rule(statistics(table[:10], sizes)) else "fail"  # the fixed run's verdict
                for _ in range(subsets):
                    pick = np.sort(rng.choice(n_boot, size=k, replace=False))
                    got = statistics(table[pick], sizes)
                    for s in STATISTICS:
                        se = got[f"{s}_se"]
                        diff = abs(got[s] - truth[name][s])
                        z[s].append(diff / se if se > 0 else (0.0 if diff == 0 else np.inf))
                    verdict = outcome(got)
                    if verdict != "uncertain":
                        settled += 1
                        wrong += verdict != ten
            for s in STATISTICS:
                zs = np.array(z[s])
                click.echo(
                    f"| {k} | {s} | {np.mean(zs > 2):.2f} | {np.mean(zs > 3):.2f} | {np.median(zs):.2f} | "
                    + (f"{wrong} of {settled}" if s == STATISTICS[0] else "")
                    + " |"
                )


def adaptive_run(
    columns: dict[str, tuple[np.ndarray, np.ndarray]], order: np.ndarray, targets: list[int]
) -> tuple[dict[str, int], str]:
    """The rounds the pipeline would run with bootstraps ``order`` (renumbered 0, 1, ...): bootstraps per column and
    the recommended column."""
    from scclust.stability_rounds import pending

    placement = {n: ("leiden", float(n.split("_")[1])) for n in columns}
    given, got = set(columns), dict.fromkeys(columns, 0)
    for number, target in enumerate(targets, 1):
        for name in given:
            got[name] = target
        entries = {n: statistics(columns[n][0][order[: got[n]]], columns[n][1]) for n in columns}
        given = set(pending(entries, placement)) if number < len(targets) else set()
        if not given:
            break
    return got, recommended(entries, placement)


def recommended(entries: dict, placement: dict) -> str:
    from scclust.stability import recommend

    full = {
        n: {**e, "level": 1, "algorithm": "leiden", "run_resolution": placement[n][1], "column": n} for n, e in entries.items()
    }
    return recommend(full)["leiden"]


@main.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--orders", type=int, default=50, show_default=True, help="Random bootstrap orders per dataset.")
@click.option("--cap", type=int, default=10, show_default=True)
@click.option("--first", type=int, default=None, help="First round's bootstraps (default: the pipeline's).")
def simulate(files: tuple[Path, ...], orders: int, cap: int, first: int | None) -> None:
    """Adaptive runs replayed on random orders of the collected bootstraps: their cost in column-bootstraps (a
    fixed run: columns x cap) and whether they recommend what the fixed run with the same first ``cap`` does."""
    from scclust import stability_rounds
    from scclust.stability_rounds import round_targets

    if first is not None:
        stability_rounds.FIRST_ROUND = first
    rng = np.random.default_rng(0)
    targets = round_targets(cap, adaptive=True)
    click.echo(f"rounds {targets}")
    click.echo(
        "| dataset | cost / fixed (mean, min-max) | adaptive = fixed | adaptive = all | fixed = all "
        "| bootstraps per column (mean) |"
    )
    click.echo("|---|---|---|---|---|---|")
    for path in files:
        columns = load(path)
        placement = {n: ("leiden", float(n.split("_")[1])) for n in columns}
        n_boot = next(iter(columns.values()))[0].shape[0]
        everything = recommended({n: statistics(t, s) for n, (t, s) in columns.items()}, placement)
        costs, same, right, fixed_right, per = [], 0, 0, 0, {n: [] for n in columns}
        for _ in range(orders):
            order = rng.permutation(n_boot)
            got, pick = adaptive_run(columns, order, targets)
            fixed = recommended({n: statistics(t[order[:cap]], s) for n, (t, s) in columns.items()}, placement)
            costs.append(sum(got.values()) / (cap * len(columns)))
            same += pick == fixed
            right += pick == everything
            fixed_right += fixed == everything
            for n, k in got.items():
                per[n].append(k)
        spread = ", ".join(f"{n.split('_')[1]}: {np.mean(v):.1f}" for n, v in per.items())
        click.echo(
            f"| {path.name} | {np.mean(costs):.2f} ({min(costs):.2f}-{max(costs):.2f}) | {same}/{orders} | "
            f"{right}/{orders} | {fixed_right}/{orders} | {spread} |"
        )
        click.echo(f"all {n_boot} bootstraps recommend {everything}", err=True)


@main.command()
@click.argument("metrics", type=click.Path(exists=True, path_type=Path))
@click.argument("collected", type=click.Path(exists=True, path_type=Path))
def compare(metrics: Path, collected: Path) -> None:
    """A pipeline run's level-1 stability (its metrics.tsv) against ``collect``'s bootstraps of the same data: the
    same first ``k`` bootstraps must give the same numbers, and all of them (twice the cap) lie within two errors."""
    import pandas as pd

    table = pd.read_csv(metrics, sep="\t", index_col="column")
    columns = load(collected)
    n_boot = next(iter(columns.values()))[0].shape[0]
    click.echo(f"| column | bootstraps | stability +- se | same k from collect | all {n_boot} | diff / se |")
    click.echo("|---|---|---|---|---|---|")
    for name, (jaccard, sizes) in columns.items():
        row = table.loc[name]
        k = int(row["n_bootstraps"])
        same = statistics(jaccard[:k], sizes)["stability"]
        everything = statistics(jaccard, sizes)["stability"]
        z = abs(row["stability"] - everything) / row["stability_se"]
        click.echo(
            f"| {name} | {k} | {row['stability']:.3f} +- {row['stability_se']:.3f} | {same:.3f} | {everything:.3f} | {z:.2f} |"
        )


if __name__ == "__main__":
    main()
