#!/usr/bin/env python
"""Peak RSS of one CLUSTER call (``bin/scclust_cluster.py``), this tree against a baseline tree, alternating.

Each run is ``/usr/bin/time -v python <tree>/bin/scclust_cluster.py ...`` on the same store, with config.json and
dataset.json written by that tree's own code. Reports peak RSS, bytes per stored graph entry, the ratio to the
graph igraph must hold (32 bytes of edge structures + 8 bytes of weight per entry) and whether labels are equal.

    git archive <commit> src bin | tar -x -C /tmp/baseline
    .venv/bin/python benchmarks/cluster_memory.py --input benchmarks/data/synth_300k.zarr --baseline /tmp/baseline
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PREPARE = """
import json, sys
from scclust.config import config_from_params
from scclust.dataset import inspect_dataset
cfg = config_from_params({"resolutions": sys.argv[2], "algorithm": sys.argv[3]})
json.dump(cfg.to_json(), open(sys.argv[4], "w"))
json.dump(inspect_dataset(sys.argv[1], cfg, "bench"), open(sys.argv[5], "w"))
"""


def run_cluster(tree: Path, store: Path, resolutions: str, algorithm: str, workdir: Path) -> dict[str, float]:
    """Prepare and run one CLUSTER call with the code of ``tree``; peak RSS (bytes) and wall time (s)."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "OMP_NUM_THREADS": "1"}
    config, dataset, out = workdir / "config.json", workdir / "dataset.json", workdir / "result.npz"
    prepare = [sys.executable, "-c", PREPARE, str(store), resolutions, algorithm, str(config), str(dataset)]
    subprocess.run(prepare, env=env, check=True)
    indices = ",".join(str(i) for i in range(len(resolutions.split(","))))
    cmd = [sys.executable, str(tree / "bin" / "scclust_cluster.py"), "--graph-store", str(store), "--config", str(config)]
    cmd += ["--dataset", str(dataset), "--algorithm", algorithm, "--indices", indices, "--out", str(out)]
    cmd += ["--versions", str(workdir / "versions.yml")]
    if "--input" in (tree / "bin" / "scclust_cluster.py").read_text():  # trees that score their columns
        cmd += ["--input", str(store)]
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True, cwd=workdir)
    if proc.returncode != 0:
        raise click.ClickException(proc.stderr[-2000:])
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1)) * 1024
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", proc.stderr).group(1)
    seconds = sum(float(x) * 60**i for i, x in enumerate(reversed(wall.split(":"))))
    with np.load(out) as data:
        codes = [data[k] for k in sorted(data.files) if k.startswith("codes_")]
    return {"rss": rss, "wall": seconds, "codes": codes}


@click.command()
@click.option("--input", "store", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--baseline", required=True, type=click.Path(exists=True, path_type=Path), help="tree with src/ and bin/")
@click.option("--resolutions", default="1.0", show_default=True)
@click.option("--algorithm", default="leiden", show_default=True)
@click.option("--repeats", default=1, show_default=True, help="alternating pairs (baseline, this tree)")
def main(store: Path, baseline: Path, resolutions: str, algorithm: str, repeats: int) -> None:
    """Print one table row per run."""
    from scclust.io import open_store

    store = store.resolve()  # each call runs in its own temporary directory
    with open_store(store) as root:
        entries = int(root["obsp"]["connectivities"]["data"].shape[0])
    graph = 40 * entries
    click.echo(f"{store}: {entries} stored entries; graph igraph must hold (40 B/entry): {graph / 2**30:.2f} GiB")
    click.echo("| tree | run | peak RSS (GiB) | bytes/entry | x graph | wall (s) | labels equal to baseline |")
    click.echo("|---|---|---|---|---|---|---|")
    reference = None
    for i in range(repeats):
        for name, tree in (("baseline", baseline), ("this", ROOT)):
            with tempfile.TemporaryDirectory() as tmp:
                r = run_cluster(tree, store, resolutions, algorithm, Path(tmp))
            reference = reference or r["codes"]
            same = all(np.array_equal(a, b) for a, b in zip(reference, r["codes"], strict=True))
            click.echo(
                f"| {name} | {i + 1} | {r['rss'] / 2**30:.2f} | {r['rss'] / entries:.0f} | {r['rss'] / graph:.2f} "
                f"| {r['wall']:.1f} | {same} |"
            )


if __name__ == "__main__":
    main()
