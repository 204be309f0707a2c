#!/usr/bin/env python
"""Cost of the metrics and the report, of --stability_bootstraps, and where the recommendation lands (issue 10).

* ``metrics-cost``  pipeline runs without bootstraps: wall time and what the metrics and the report add to it (the
                    scoring inside CLUSTER, the metrics inside MERGE, and REPORT where it outlasts MERGE).
* ``bootstraps``    for each repeat, one run per ``--bootstraps`` value in turn (alternating, so every value sees
                    the same machine load); wall time and its ratio to the run with B = 0 of the same repeat; for the
                    runs with bootstraps, each column's stability and ARI to ``--truth`` and the recommended column.
* ``adaptive``      for each repeat, in turn: no bootstraps, adaptive rounds up to ``--cap``, a fixed run of the cap
                    (and, in the first repeat, a fixed run of twice the cap): wall times and ratios, the recommended
                    columns, and per column the adaptive run's bootstraps and stability +- error against both fixed
                    runs (issue 20).

Uses ``run_benchmark.run_pipeline`` (fresh work dir and outdir per run, trace with extra timing fields).
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import click
import pandas as pd

from run_benchmark import DEFAULT_RESOLUTIONS, TRACE_FIELDS, emit, read_trace, run_pipeline

TIMING = Path(tempfile.gettempdir()) / "scclust-eval-trace.config"
RESULT_TASKS = ("CLUSTER", "COLLECT_LEVEL")


def timing_config() -> str:
    TIMING.write_text(f"trace.fields = '{TRACE_FIELDS},start,complete,workdir'\ntrace.raw = true\n")
    return str(TIMING)


def logged_seconds(row: dict[str, str]) -> float:
    """The seconds a task spent on metrics, from its ``scclust timing:`` stderr lines (scclust.metrics.log_seconds)."""
    text = (Path(row["workdir"]) / ".command.err").read_text()
    return sum(float(s) for s in re.findall(r"^scclust timing: .*: ([0-9.]+) s$", text, flags=re.M))


def metrics_span(outdir: Path) -> tuple[float, float, float]:
    """(the most seconds a CLUSTER task spent scoring its columns, MERGE's seconds on the dataset's metrics, and
    what the metrics and the report add to the wall time: that scoring, plus the time from the last clustering
    task's completion to PUBLISH's start less the part of MERGE's realtime a run without metrics would still spend).
    """
    rows = read_trace(outdir)
    last_result = max(float(r["complete"]) for r in rows if r["process"].split(":")[-1] in RESULT_TASKS)
    scoring = max(logged_seconds(r) for r in rows if r["process"].split(":")[-1] == "CLUSTER")
    merge, publish = (next(r for r in rows if r["process"].split(":")[-1] == p) for p in ("MERGE", "PUBLISH"))
    merge_metrics = logged_seconds(merge)
    tail = (float(publish["start"]) - last_result - float(merge["realtime"])) / 1000
    return scoring, merge_metrics, scoring + merge_metrics + tail


def run(
    store: str, resolutions: str, per_task: int, extra: list[str], workroot: Path, cores: int = 0
) -> tuple[float, Path, dict]:
    configs = [timing_config()]
    if cores:  # the local executor's capacity; run the benchmark under `taskset` so that threads get no more cores
        limit = Path(tempfile.gettempdir()) / f"scclust-eval-cores{cores}.config"
        limit.write_text(f"executor {{ cpus = {cores} }}\n")
        configs.append(str(limit))
        extra = [*extra, "--max_cpus", str(cores)]
    return run_pipeline(store, resolutions, per_task, tuple(extra), workroot, tuple(configs))


@click.group()
def cli():
    """scclust evaluation benchmarks."""


@cli.command("metrics-cost")
@click.option("--input", "store", required=True, type=click.Path(exists=True))
@click.option("--resolutions", default=DEFAULT_RESOLUTIONS, show_default=True)
@click.option("--repeats", default=2, show_default=True)
@click.option("--workroot", default="/tmp/bench-work", show_default=True, type=click.Path(path_type=Path))
@click.argument("extra", nargs=-1)
def metrics_cost(store, resolutions, repeats, workroot, extra):
    """Wall time of runs without bootstraps and the share the metrics and the report add to it."""
    emit(
        "| run | wall (s) | scoring in CLUSTER, max (s) | metrics in MERGE (s) | metrics + report added (s) | share of wall |",
        None,
    )
    emit("|---|---|---|---|---|---|", None)
    for i in range(repeats):
        wall, outdir, _ = run(store, resolutions, 5, ["--stability_bootstraps", "0", *extra], workroot)
        scoring, merge_metrics, added = metrics_span(outdir)
        emit(f"| {i + 1} | {wall:.1f} | {scoring:.1f} | {merge_metrics:.1f} | {added:.1f} | {added / wall:.1%} |", None)


@cli.command()
@click.option("--input", "store", required=True, type=click.Path(exists=True))
@click.option("--resolutions", default=DEFAULT_RESOLUTIONS, show_default=True)
@click.option("--bootstraps", "values", type=int, multiple=True, default=(0, 5, 10, 20), show_default=True)
@click.option("--repeats", default=1, show_default=True)
@click.option("--truth", default="bulk_labels", show_default=True, help="obs column of known labels (--label_columns)")
@click.option("--workroot", default="/tmp/bench-work", show_default=True, type=click.Path(path_type=Path))
@click.option("--cores", default=0, show_default=True, help="cores Nextflow may use (0: its default, all)")
@click.argument("extra", nargs=-1)
def bootstraps(store, resolutions, values, repeats, truth, workroot, cores, extra):
    """Wall time per number of bootstraps, as a ratio to the run without, and the recommendation's quality."""
    rows, tables = [], {}
    for i in range(repeats):
        walls = {}
        for b in values:
            args = ["--stability_bootstraps", str(b), "--label_columns", truth, *extra]
            wall, outdir, summary = run(store, resolutions, 5, args, workroot, cores)
            walls[b] = wall
            stab = summary.get("STABILITY", {"n": 0, "realtime_sum_s": 0.0})
            table = pd.read_csv(next(outdir.glob("*/metrics.tsv")), sep="\t", index_col="column")
            doc = json.loads(next(outdir.parent.glob("work/*/*/metrics.json")).read_text())
            rows.append((i + 1, b, wall, int(stab["n"]), stab["realtime_sum_s"], (table, doc.get("recommended", {}))))
            tables[b] = table
            click.echo(f"repeat {i + 1} B={b}: {wall:.1f} s", err=True)
        base = walls.get(0)
        rows[-len(values) :] = [(*r[:3], r[2] / base if base else float("nan"), *r[3:]) for r in rows[-len(values) :]]
    emit(
        "| repeat | B | wall (s) | ratio to B = 0 | STABILITY tasks | STABILITY realtime sum (s) | recommended (ARI to truth) |",
        None,
    )
    emit("|---|---|---|---|---|---|---|", None)
    for rep, b, wall, ratio, n, rt, (table, picks) in rows:
        rec = recommended(table, picks, truth) if b else "-"
        emit(f"| {rep} | {b} | {wall:.1f} | {ratio:.2f}x | {n} | {rt:.1f} | {rec} |", None)
    for b, table in tables.items():
        if b:
            emit(f"\nB = {b} (last repeat):\n", None)
            emit(column_table(table, truth), None)


@cli.command()
@click.option("--input", "store", required=True, type=click.Path(exists=True))
@click.option("--resolutions", default=DEFAULT_RESOLUTIONS, show_default=True)
@click.option("--cap", default=10, show_default=True, help="--stability_bootstraps of the adaptive and fixed runs")
@click.option("--repeats", default=2, show_default=True)
@click.option("--truth", default="bulk_labels", show_default=True, help="obs column of known labels (--label_columns)")
@click.option("--workroot", default="/tmp/bench-work", show_default=True, type=click.Path(path_type=Path))
@click.option("--double/--no-double", default=True, show_default=True, help="also a fixed run of twice the cap")
@click.argument("extra", nargs=-1)
def adaptive(store, resolutions, cap, repeats, truth, workroot, double, extra):
    """Adaptive against fixed stability: cost, recommendation, and each column's error against fixed runs."""
    kinds = {"none": ["0"], "adaptive": [str(cap)], "fixed": [str(cap), "--stability_adaptive", "false"]}
    rows, tables = [], {}
    for i in range(repeats):
        todo = dict(kinds)
        if double and i == 0:
            todo["fixed x2"] = [str(2 * cap), "--stability_adaptive", "false"]
        walls = {}
        for kind, value in todo.items():
            args = ["--stability_bootstraps", *value, "--label_columns", truth, *extra]
            wall, outdir, summary = run(store, resolutions, 5, args, workroot)
            walls[kind] = wall
            n_tasks = summary.get("STABILITY", {"n": 0})["n"]
            doc = json.loads(next(outdir.parent.glob("work/*/*/metrics.json")).read_text())
            tables[kind] = pd.read_csv(next(outdir.glob("*/metrics.tsv")), sep="\t", index_col="column")
            rows.append((i + 1, kind, wall, wall / walls["none"], int(n_tasks), doc.get("recommended", {})))
            click.echo(f"repeat {i + 1} {kind}: {wall:.1f} s", err=True)
    emit("| repeat | run | wall (s) | ratio to none | STABILITY tasks | recommended |", None)
    emit("|---|---|---|---|---|---|", None)
    for rep, kind, wall, ratio, n, picks in rows:
        emit(f"| {rep} | {kind} | {wall:.1f} | {ratio:.2f}x | {n} | {'; '.join(sorted(picks.values())) or '-'} |", None)
    emit("\n" + error_table(tables), None)


def error_table(tables: dict[str, pd.DataFrame]) -> str:
    """Per level-1 column: the adaptive run's bootstraps and stability +- se, and its distance to each fixed run in
    its own standard errors."""
    a = tables["adaptive"][tables["adaptive"]["level"] == 1]
    fixed = [k for k in ("fixed", "fixed x2") if k in tables]
    head = "| column | bootstraps | stability +- se | " + " | ".join(f"{k} | diff / se" for k in fixed) + " |"
    lines = [head, "|---" * (3 + 2 * len(fixed)) + "|"]
    for name, row in a.iterrows():
        cells = [name, str(int(row["n_bootstraps"])), f"{row['stability']:.3f} +- {row['stability_se']:.3f}"]
        for k in fixed:
            other = tables[k].loc[name, "stability"]
            ratio = abs(row["stability"] - other) / row["stability_se"] if row["stability_se"] else float("inf")
            cells += [f"{other:.3f}", f"{ratio:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def recommended(table: pd.DataFrame, picks: dict[str, str], truth: str) -> str:
    """Each algorithm's recommended column with its ARI to the truth, and the column that agrees best."""
    out = []
    for algorithm, pick in sorted(picks.items()):
        group = table[(table["level"] == 1) & (table["algorithm"] == algorithm)]
        best = group[f"ari_{truth}"].idxmax()
        out.append(f"{pick} ({group.loc[pick, f'ari_{truth}']:.3f}; best {best} {group.loc[best, f'ari_{truth}']:.3f})")
    return "; ".join(out)


def column_table(table: pd.DataFrame, truth: str) -> str:
    keys = ["n_clusters", "stability", "stability_weighted", "n_unstable_clusters", "ari_bootstrap_median", f"ari_{truth}"]
    lines = ["| column | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, row in table[table["level"] == 1].iterrows():
        lines.append(
            f"| {name} | " + " | ".join(f"{row[k]:.3f}" if isinstance(row[k], float) else str(row[k]) for k in keys) + " |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    cli()
