#!/usr/bin/env python
"""Cost of the METRICS task and of --stability_bootstraps, and where the recommendation lands (issue 10).

* ``metrics-cost``  pipeline runs without bootstraps: wall time, METRICS realtime, and the time METRICS adds to the
                    critical path (its completion minus the completion of the last clustering task before it).
* ``bootstraps``    for each repeat, one run per ``--bootstraps`` value in turn (alternating, so every value sees
                    the same machine load); wall time and its ratio to the run with B = 0 of the same repeat; for the
                    runs with bootstraps, each column's stability and ARI to ``--truth`` and the recommended column.

Uses ``run_benchmark.run_pipeline`` (fresh work dir and outdir per run, trace with extra timing fields).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click
import pandas as pd

from run_benchmark import DEFAULT_RESOLUTIONS, TRACE_FIELDS, emit, read_trace, run_pipeline

TIMING = Path(tempfile.gettempdir()) / "scclust-eval-trace.config"
RESULT_TASKS = ("CLUSTER", "COLLECT_LEVEL")


def timing_config() -> str:
    TIMING.write_text(f"trace.fields = '{TRACE_FIELDS},start,complete'\ntrace.raw = true\n")
    return str(TIMING)


def metrics_span(outdir: Path) -> tuple[float, float, float]:
    """(METRICS realtime, seconds from the last clustering task's completion to METRICS' completion, seconds that
    METRICS and REPORT add: from that completion to PUBLISH's start, less MERGE's realtime, which a run without
    them would still spend)."""
    rows = read_trace(outdir)
    proc = {r["process"].split(":")[-1]: r for r in rows}
    last_result = max(float(r["complete"]) for r in rows if r["process"].split(":")[-1] in RESULT_TASKS)
    metrics, merge, publish = proc["METRICS"], proc["MERGE"], proc["PUBLISH"]
    added = float(publish["start"]) - last_result - float(merge["realtime"])
    return float(metrics["realtime"]) / 1000, (float(metrics["complete"]) - last_result) / 1000, added / 1000


def run(store: str, resolutions: str, per_task: int, extra: list[str], workroot: Path) -> tuple[float, Path, dict]:
    return run_pipeline(store, resolutions, per_task, tuple(extra), workroot, (timing_config(),))


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
    """Wall time of runs without bootstraps and the share METRICS takes of it."""
    emit(
        "| run | wall (s) | METRICS realtime (s) | METRICS on the critical path (s) | share of wall "
        "| METRICS + REPORT added (s) | share of wall |",
        None,
    )
    emit("|---|---|---|---|---|---|---|", None)
    for i in range(repeats):
        wall, outdir, _ = run(store, resolutions, 5, ["--stability_bootstraps", "0", *extra], workroot)
        realtime, span, added = metrics_span(outdir)
        shares = f"{span / wall:.1%} | {added:.1f} | {added / wall:.1%}"
        emit(f"| {i + 1} | {wall:.1f} | {realtime:.1f} | {span:.1f} | {shares} |", None)


@cli.command()
@click.option("--input", "store", required=True, type=click.Path(exists=True))
@click.option("--resolutions", default=DEFAULT_RESOLUTIONS, show_default=True)
@click.option("--bootstraps", "values", type=int, multiple=True, default=(0, 5, 10, 20), show_default=True)
@click.option("--repeats", default=1, show_default=True)
@click.option("--truth", default="bulk_labels", show_default=True, help="obs column of known labels (--label_columns)")
@click.option("--workroot", default="/tmp/bench-work", show_default=True, type=click.Path(path_type=Path))
@click.argument("extra", nargs=-1)
def bootstraps(store, resolutions, values, repeats, truth, workroot, extra):
    """Wall time per number of bootstraps, as a ratio to the run without, and the recommendation's quality."""
    rows, tables = [], {}
    for i in range(repeats):
        walls = {}
        for b in values:
            args = ["--stability_bootstraps", str(b), "--label_columns", truth, *extra]
            wall, outdir, summary = run(store, resolutions, 5, args, workroot)
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
