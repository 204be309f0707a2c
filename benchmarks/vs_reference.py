#!/usr/bin/env python
"""Time scclust against the reference tool (scAtlasTb's clustering module) on the same store, alternating runs.

Subcommands (each prints a markdown table; ``--append-to FILE`` appends it):

* ``single``    ``nextflow run main.nf --resolutions R`` against the reference's own CLI call,
                ``python workflow/clustering/scripts/clustering.py IN OUT --resolution R``.
* ``workflow``  the pipeline with several resolutions against the reference's Snakemake workflow
                (``snakemake --cores N cluster_all``: one job per resolution, then its merge).

Both sides run as fresh processes, so start-ups, imports, reads and writes are counted. The reference needs a
checkout of scAtlasTb (``--reference``: the directory holding ``workflow/``) and a Python environment with its
dependencies and snakemake 7 (``--reference-python``); benchmarks/README.md section 5 has the recipe. Labels are
compared column by column with the reference's output (same column names: ``leiden_<resolution>_1``).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import anndata as ad
import click
import pandas as pd
import yaml
import zarr

from run_benchmark import emit, run_pipeline, timed


def reference_labels(store: Path) -> pd.DataFrame:
    # the reference links the input's consolidated metadata into its output, which lists the input's obs only
    obs = ad.io.read_elem(zarr.open_group(str(store), mode="r", use_consolidated=False)["obs"])
    return obs.astype(str)


def same_columns(ours: Path, ref: pd.DataFrame) -> str:
    mine = pd.read_csv(ours, sep="\t", index_col=0, dtype=str)
    cols = [c for c in ref.columns if c in mine.columns]
    same = sum(bool((mine[c].loc[ref.index] == ref[c]).all()) for c in cols)
    return f"{same}/{len(cols)}"


def run_reference_single(reference: Path, python: str, store: Path, resolution: str, work: Path) -> tuple[float, Path]:
    out = work / "ref_single.zarr"
    shutil.rmtree(out, ignore_errors=True)
    script = reference / "workflow" / "clustering" / "scripts" / "clustering.py"
    env = {**os.environ, "PYTHONPATH": str(reference / "workflow")}
    cmd = [python, str(script), str(store), str(out), "--resolution", resolution, "--algorithm", "leiden"]
    wall, _ = timed(cmd, env=env, log=work / "ref_single.log")
    return wall, out


def reference_config(store: Path, resolutions: list[str], work: Path) -> Path:
    """The reference's test configuration (workflow/clustering/test/config.yaml), reduced to one CPU dataset."""
    profile = {"partition": "cpu", "qos": "normal", "gpu": 0, "mem_mb": 16000}
    cfg = {
        "output_dir": str(work / "ref_out"),
        "images": str(work / "ref_images"),
        "use_gpu": False,
        "env_mode": "from_yaml",  # "local" makes snakemake 7 call `conda env export` per job
        "resources": {"cpu": profile, "gpu": profile},
        "DATASETS": {
            "bench": {
                "input": {"clustering": str(store)},
                "clustering": {
                    "neighbors_key": "neighbors",
                    "algorithm": "leiden",
                    "use_gpu": False,
                    "resolutions": [float(r) for r in resolutions],
                },
            }
        },
    }
    path = work / "ref_config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_reference_workflow(
    reference: Path, python: str, store: Path, resolutions: list[str], cores: int, work: Path
) -> tuple[float, Path]:
    for d in ("ref_out", "ref_images"):
        shutil.rmtree(work / d, ignore_errors=True)
    cfg = reference_config(store, resolutions, work)
    snakemake = str(Path(python).parent / "snakemake")
    cmd = [snakemake, "--cores", str(cores), "--configfile", str(cfg), "--nolock", "cluster_all"]
    env = {**os.environ, "PATH": f"{Path(python).parent}:{os.environ['PATH']}"}
    wall, _ = timed(cmd, env=env, log=work / "ref_workflow.log", cwd=reference / "workflow" / "clustering")
    merged = [p for p in (work / "ref_out" / "clustering").glob("dataset~*/*.zarr") if p.is_dir()]
    if len(merged) != 1:
        raise click.ClickException(f"expected one merged store under {work / 'ref_out'}, found {merged}")
    return wall, merged[0]


common = [
    click.option("--input", "store", required=True, type=click.Path(exists=True, path_type=Path)),
    click.option("--reference", required=True, type=click.Path(exists=True, path_type=Path)),
    click.option("--reference-python", required=True, type=click.Path(exists=True)),
    click.option("--repeats", default=3, show_default=True, help="Pairs, each reference then scclust."),
    click.option("--workroot", default="/tmp/bench-ref", show_default=True, type=click.Path(path_type=Path)),
    click.option("--append-to", type=click.Path(path_type=Path), default=None),
]


def with_common(f):
    for opt in reversed(common):
        f = opt(f)
    return f


def pairs(label: str, ref_run, ours_run, repeats: int, workroot: Path, append_to: Path | None, target: str) -> None:
    rows, ratios = [], []
    for i in range(repeats):
        ref_wall, ref_store = ref_run()
        wall, outdir, summary = ours_run()
        ratio = ref_wall / wall
        ratios.append(ratio)
        tsv = next(outdir.glob("*/clusters.tsv"))
        cl = summary.get("CLUSTER", {})
        rows.append(
            f"| {i + 1} | {ref_wall:.1f} | {wall:.1f} | {ratio:.2f}x | {same_columns(tsv, reference_labels(ref_store))} "
            f"| {int(cl.get('n', 0))} | {cl.get('realtime_max_s', float('nan')):.1f} |"
        )
        shutil.rmtree(outdir.parent / "work", ignore_errors=True)
    emit(
        "\n".join(
            [
                f"{label} ({time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f} at the end)\n",
                "| pair | reference (s) | scclust (s) | reference / scclust | labels identical | CLUSTER tasks | "
                "CLUSTER realtime max (s) |",
                "|---|---|---|---|---|---|---|",
                *rows,
                f"\nMedian reference / scclust: {statistics.median(ratios):.2f}x ({target}).\n",
            ]
        ),
        append_to,
    )


@click.group()
def cli():
    """scclust against scAtlasTb's clustering module."""


@cli.command()
@with_common
@click.option("--resolution", default="1.0", show_default=True)
@click.argument("extra", nargs=-1)
def single(store, reference, reference_python, repeats, workroot, append_to, resolution, extra):
    """One resolution: the reference's CLI call against the whole pipeline. EXTRA: pipeline args after `--`."""
    workroot.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="single-", dir=workroot))
    pairs(
        f"One resolution ({resolution}), `{store}`, scclust args `{' '.join(extra) or '-'}`",
        lambda: run_reference_single(reference, reference_python, store.resolve(), resolution, work),
        lambda: run_pipeline(str(store), resolution, "auto", extra, workroot),
        repeats,
        workroot,
        append_to,
        "target: scclust within 1.15x of the reference, i.e. this ratio >= 0.87x",
    )


@cli.command()
@with_common
@click.option("--resolutions", default="0.5,1.0,1.5,2.0", show_default=True)
@click.option("--cores", default=2, show_default=True, help="snakemake --cores and scclust --max_cpus.")
@click.argument("extra", nargs=-1)
def workflow(store, reference, reference_python, repeats, workroot, append_to, resolutions, cores, extra):
    """Several resolutions: the reference's Snakemake workflow against the pipeline. EXTRA: pipeline args."""
    workroot.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="workflow-", dir=workroot))
    res = resolutions.split(",")
    pairs(
        f"{len(res)} resolutions ({resolutions}) on {cores} cores, `{store}`, scclust args `{' '.join(extra) or '-'}`",
        lambda: run_reference_workflow(reference, reference_python, store.resolve(), res, cores, work),
        lambda: run_pipeline(str(store), resolutions, "auto", ("--max_cpus", str(cores), *extra), workroot),
        repeats,
        workroot,
        append_to,
        "target: >= 1.8x",
    )


if __name__ == "__main__":
    cli()
