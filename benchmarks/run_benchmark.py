#!/usr/bin/env python
"""Time scclust's Nextflow pipeline against a plain loop of ``sc.tl.leiden`` and record per-task peak RSS.

Subcommands (each prints a markdown table; ``--append-to FILE`` appends it to a markdown file):

* ``loop``      one fresh Python process: import scanpy, read the store, ``sc.tl.leiden`` per resolution.
* ``pipeline``  ``nextflow run main.nf`` with a fresh work dir per repeat; wall time, per-process realtime and
                peak RSS from the trace; optional label comparison with a ``loop`` run (``--compare-with``).
* ``compare``   loop and pipeline alternately (same machine load for both); speedup per pair and median.
* ``rss-vs-x``  the pipeline on two stores that differ only in X; compares the CLUSTER tasks' peak RSS.

Every wall time is measured around a subprocess, so interpreter/JVM start-up, imports and reads are included.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import textwrap
import time
from math import nan
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
PYTHON = os.environ.get("SCCLUST_BENCH_PYTHON", str(ROOT / ".venv" / "bin" / "python"))
DEFAULT_RESOLUTIONS = ",".join(f"{0.2 * i:.1f}" for i in range(1, 11))  # 0.2,0.4,...,2.0
TRACE_FIELDS = "task_id,name,process,status,exit,realtime,%cpu,peak_rss,peak_vmem,rchar,wchar"

LOOP_SCRIPT = textwrap.dedent(
    """
    import sys, time
    t0 = time.perf_counter()
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scanpy as sc
    store, resolutions, out = sys.argv[1], [float(x) for x in sys.argv[2].split(",")], sys.argv[3]
    t_import = time.perf_counter()
    adata = ad.read_zarr(store) if store.rstrip("/").endswith(".zarr") else ad.read_h5ad(store)
    t_read = time.perf_counter()
    per_res = []
    for r in resolutions:
        t = time.perf_counter()
        sc.tl.leiden(adata, resolution=r, flavor="igraph", n_iterations=2, random_state=0,
                     key_added=f"leiden_{r!r}_1")
        per_res.append(time.perf_counter() - t)
    t_loop = time.perf_counter()
    cols = [f"leiden_{r!r}_1" for r in resolutions]
    adata.obs[cols].rename_axis("cell_id").to_csv(out, sep="\\t")
    import json
    print("LOOP_TIMES " + json.dumps({"import": t_import - t0, "read": t_read - t_import,
          "leiden": per_res, "total_in_process": t_loop - t0,
          "n_clusters": [int(adata.obs[c].nunique()) for c in cols]}))
    """
)


def emit(text: str, append_to: Path | None) -> None:
    click.echo(text)
    if append_to is not None:
        with append_to.open("a") as fh:
            fh.write(text + "\n")


def timed(
    cmd: list[str], *, env: dict[str, str] | None = None, log: Path | None = None, cwd: Path | None = None
) -> tuple[float, str]:
    """Run cmd, return (wall seconds, stdout+stderr); raise on failure."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    if log is not None:
        log.write_text(proc.stdout)
    if proc.returncode != 0:
        raise click.ClickException(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-4000:]}")
    return wall, proc.stdout


def run_loop(store: str, resolutions: str, labels_out: Path) -> tuple[float, dict]:
    wall, out = timed([PYTHON, "-c", LOOP_SCRIPT, store, resolutions, str(labels_out)])
    line = next(x for x in out.splitlines() if x.startswith("LOOP_TIMES "))
    return wall, json.loads(line[len("LOOP_TIMES ") :])


def read_trace(outdir: Path) -> list[dict[str, str]]:
    files = sorted((outdir / "pipeline_info").glob("execution_trace_*.txt"))
    if not files:
        raise click.ClickException(f"no trace file under {outdir}/pipeline_info")
    with files[-1].open() as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def summarize_trace(rows: list[dict[str, str]]) -> dict[str, dict[str, float]]:
    """Per process: task count, max peak RSS (MiB), sum and max realtime (s)."""
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        proc = row.get("process") or row["name"].split(" ")[0]
        proc = proc.split(":")[-1]
        rss = float(row["peak_rss"]) / 2**20 if row["peak_rss"] not in ("", "-") else float("nan")
        rt = float(row["realtime"]) / 1000 if row["realtime"] not in ("", "-") else float("nan")
        entry = out.setdefault(proc, {"n": 0, "peak_rss_mib": 0.0, "realtime_sum_s": 0.0, "realtime_max_s": 0.0})
        entry["n"] += 1
        entry["peak_rss_mib"] = max(entry["peak_rss_mib"], rss)
        entry["realtime_sum_s"] += rt
        entry["realtime_max_s"] = max(entry["realtime_max_s"], rt)
    return out


def run_pipeline(
    store: str,
    resolutions: str,
    per_task: int,
    extra: tuple[str, ...],
    workroot: Path,
    extra_config: tuple[str, ...] = (),
) -> tuple[float, Path, dict]:
    """One pipeline run with a fresh work dir and outdir; returns (wall s, outdir, trace summary)."""
    store = str(Path(store).resolve())  # nextflow runs from run_dir
    extra_config = tuple(str(Path(c).resolve()) for c in extra_config)
    workroot = workroot.resolve()
    workroot.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=workroot))
    cfg = run_dir / "trace.config"
    cfg.write_text(f"trace.fields = '{TRACE_FIELDS}'\ntrace.raw = true\n")
    outdir = run_dir / "out"
    cmd = ["nextflow", "run", str(ROOT / "main.nf"), "-ansi-log", "false", "-c", str(cfg)]
    for c in extra_config:
        cmd += ["-c", c]
    cmd += [
        "-w",
        str(run_dir / "work"),
        "--input",
        store,
        "--outdir",
        str(outdir),
        "--resolutions",
        resolutions,
        "--resolutions_per_task",
        str(per_task),
        *extra,
    ]
    env = dict(os.environ)
    env["PATH"] = f"{Path(PYTHON).parent}:{env['PATH']}"
    env.setdefault("NXF_HOME", str(ROOT / ".nextflow-home"))
    # run from run_dir so .nextflow/ history and .nextflow.log stay out of the repository
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=run_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    (run_dir / "nextflow.stdout").write_text(proc.stdout)
    if proc.returncode != 0:
        raise click.ClickException(f"pipeline failed ({proc.returncode}), see {run_dir}\n{proc.stdout[-4000:]}")
    return wall, outdir, summarize_trace(read_trace(outdir))


def compare_labels(loop_tsv: Path, pipeline_tsv: Path) -> tuple[int, int]:
    """(columns identical, columns compared) between a loop's labels and the pipeline's clusters.tsv."""
    import pandas as pd

    a = pd.read_csv(loop_tsv, sep="\t", index_col=0, dtype=str)
    b = pd.read_csv(pipeline_tsv, sep="\t", index_col=0, dtype=str)
    same = 0
    cols = [c for c in a.columns if c in b.columns]
    for c in cols:
        same += bool((a[c].loc[b.index] == b[c]).all())
    return same, len(cols)


def process_table(summary: dict[str, dict[str, float]]) -> str:
    lines = [
        "| process | tasks | max peak RSS (MiB) | realtime sum (s) | realtime max (s) |",
        "|---|---|---|---|---|",
    ]
    for proc, e in summary.items():
        lines.append(
            f"| {proc} | {int(e['n'])} | {e['peak_rss_mib']:.0f} | {e['realtime_sum_s']:.1f} | {e['realtime_max_s']:.1f} |"
        )
    return "\n".join(lines)


common = [
    click.option("--input", "store", required=True, type=click.Path(exists=True), help="Synthetic .zarr/.h5ad."),
    click.option("--resolutions", default=DEFAULT_RESOLUTIONS, show_default=True),
    click.option("--repeats", default=2, show_default=True, help="Measure each thing this many times."),
    click.option("--workroot", default="/tmp/bench-work", show_default=True, type=click.Path(path_type=Path)),
    click.option(
        "--append-to",
        type=click.Path(path_type=Path),
        default=None,
        help="Also append the markdown output to this file.",
    ),
]


def with_common(f):
    for opt in reversed(common):
        f = opt(f)
    return f


@click.group()
def cli():
    """scclust benchmarks."""


@cli.command()
@with_common
def loop(store, resolutions, repeats, workroot, append_to):
    """Time a plain loop of sc.tl.leiden in one fresh Python process."""
    workroot.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(repeats):
        wall, t = run_loop(store, resolutions, workroot / f"loop_labels.{i}.tsv")
        rows.append(
            f"| loop #{i + 1} | {wall:.1f} | {t['import']:.1f} | {t['read']:.1f} | {sum(t['leiden']):.1f} | "
            f"{', '.join(f'{x:.1f}' for x in t['leiden'])} | {', '.join(map(str, t['n_clusters']))} |"
        )
    emit(
        "\n".join(
            [
                f"Plain loop, `{store}`, resolutions {resolutions}\n",
                "| run | wall (s) | import (s) | read (s) | leiden total (s) | per resolution (s) | n clusters |",
                "|---|---|---|---|---|---|---|",
                *rows,
                "",
            ]
        ),
        append_to,
    )


@cli.command()
@with_common
@click.option("--resolutions-per-task", "per_task", type=int, multiple=True, default=(5,), show_default=True)
@click.option(
    "--compare-with",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Labels TSV of a loop run (e.g. /tmp/bench-work/loop_labels.0.tsv).",
)
@click.option("--loop-seconds", type=float, default=None, help="Loop wall time to compute the speedup against.")
@click.option("-c", "extra_config", multiple=True, help="Extra Nextflow config file(s) (e.g. resource overrides).")
@click.argument("extra", nargs=-1)
def pipeline(
    store,
    resolutions,
    repeats,
    workroot,
    append_to,
    per_task,
    compare_with,
    loop_seconds,
    extra_config,
    extra,
):
    """Time `nextflow run main.nf` (fresh work dir per run). EXTRA are further pipeline args after `--`."""
    out = [
        f"Pipeline, `{store}`, resolutions {resolutions}, extra args `{' '.join(extra) or '-'}`"
        f"{', configs ' + ', '.join(extra_config) if extra_config else ''}\n",
        "| resolutions_per_task | run | wall (s) | speedup vs loop | labels identical | CLUSTER tasks | "
        "CLUSTER realtime max/sum (s) | CLUSTER peak RSS (MiB) | MERGE peak RSS (MiB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    details = []
    for n in per_task:
        for i in range(repeats):
            wall, outdir, summary = run_pipeline(store, resolutions, n, extra, workroot, extra_config)
            ident = "-"
            tsvs = sorted(outdir.glob("*/clusters.tsv"))
            if compare_with is not None and tsvs:
                same, total = compare_labels(compare_with, Path(tsvs[0]))
                ident = f"{same}/{total}"
            cl = summary.get("CLUSTER", {})
            mg = summary.get("MERGE", {})
            speed = f"{loop_seconds / wall:.2f}x" if loop_seconds else "-"
            out.append(
                f"| {n} | {i + 1} | {wall:.1f} | {speed} | {ident} | {int(cl.get('n', 0))} | "
                f"{cl.get('realtime_max_s', nan):.1f}/{cl.get('realtime_sum_s', nan):.1f} | "
                f"{cl.get('peak_rss_mib', nan):.0f} | {mg.get('peak_rss_mib', nan):.0f} |"
            )
            details.append(
                f"\nPer process, resolutions_per_task {n}, run {i + 1} (wall {wall:.1f} s, {outdir}):\n\n"
                + process_table(summary)
            )
            shutil.rmtree(outdir.parent / "work", ignore_errors=True)
    emit("\n".join(out + details + [""]), append_to)


@cli.command()
@with_common
@click.option("--resolutions-per-task", "per_task", type=int, default=5, show_default=True)
def compare(store, resolutions, repeats, workroot, append_to, per_task):
    """Alternate loop and pipeline runs (L P L P ...) so that both see the same machine load; speedup per pair."""
    workroot.mkdir(parents=True, exist_ok=True)
    rows, speedups = [], []
    for i in range(repeats):
        loop_wall, t = run_loop(store, resolutions, workroot / f"loop_labels.{i}.tsv")
        wall, outdir, summary = run_pipeline(store, resolutions, per_task, (), workroot)
        same, total = compare_labels(workroot / f"loop_labels.{i}.tsv", next(outdir.glob("*/clusters.tsv")))
        speedups.append(loop_wall / wall)
        row = {p: summary.get(p, {}).get("realtime_max_s", nan) for p in ("PREFLIGHT", "CLUSTER", "MERGE")}
        rows.append(
            f"| {i + 1} | {loop_wall:.1f} | {sum(t['leiden']):.1f} | {wall:.1f} | {row['PREFLIGHT']:.1f} | "
            f"{row['CLUSTER']:.1f} | {row['MERGE']:.1f} | {same}/{total} | {loop_wall / wall:.2f}x |"
        )
        shutil.rmtree(outdir.parent / "work", ignore_errors=True)
    emit(
        "\n".join(
            [
                f"Loop vs pipeline, alternating, `{store}`, resolutions {resolutions}, resolutions_per_task {per_task}\n",
                "| pair | loop wall (s) | loop leiden (s) | pipeline wall (s) | PREFLIGHT (s) | CLUSTER max (s) | "
                "MERGE (s) | labels identical | speedup |",
                "|---|---|---|---|---|---|---|---|---|",
                *rows,
                "",
                f"Speedup: median {statistics.median(speedups):.2f}x, min {min(speedups):.2f}x, "
                f"max {max(speedups):.2f}x over {repeats} pairs.",
                "",
            ]
        ),
        append_to,
    )


@cli.command("rss-vs-x")
@click.option("--small", required=True, type=click.Path(exists=True), help="Store without X.")
@click.option("--large", required=True, type=click.Path(exists=True), help="Same graph with a large dense X.")
@click.option("--resolutions", default="1.0", show_default=True)
@click.option("--repeats", default=1, show_default=True)
@click.option("--workroot", default="/tmp/bench-work", show_default=True, type=click.Path(path_type=Path))
@click.option("--append-to", type=click.Path(path_type=Path), default=None)
def rss_vs_x(small, large, resolutions, repeats, workroot, append_to):
    """Peak RSS of the CLUSTER (and MERGE) tasks with and without a large dense X."""
    out = [
        f"Peak RSS vs X, resolutions {resolutions}\n",
        "| input | X size on disk (MiB) | run | wall (s) | CLUSTER peak RSS (MiB) | MERGE peak RSS (MiB) | "
        "PREFLIGHT peak RSS (MiB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for store in (small, large):
        xdir = Path(store) / "X"
        xsize = sum(p.stat().st_size for p in xdir.rglob("*") if p.is_file()) / 2**20 if xdir.is_dir() else 0
        for i in range(repeats):
            wall, outdir, s = run_pipeline(store, resolutions, 5, (), workroot)
            out.append(
                f"| `{store}` | {xsize:.0f} | {i + 1} | {wall:.1f} | {s['CLUSTER']['peak_rss_mib']:.0f} | "
                f"{s['MERGE']['peak_rss_mib']:.0f} | {s.get('PREFLIGHT', {}).get('peak_rss_mib', nan):.0f} |"
            )
            shutil.rmtree(outdir.parent / "work", ignore_errors=True)
    emit("\n".join([*out, ""]), append_to)


if __name__ == "__main__":
    cli()
