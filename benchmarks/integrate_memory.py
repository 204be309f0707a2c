#!/usr/bin/env python
"""Peak memory and time of the INTEGRATE task on synthetic counts (default 100k cells x 10k genes, 4 batches).

Counts: cells drawn (seeded) from the 700 PBMCs of ``scclust.testdata.pbmc_counts`` and drawn again as Poisson
counts of their 765 genes, plus background genes with Poisson rates ~ LogNormal(log 0.05, 1) (about 5% non-zero),
as CSR X in a .zarr store. Then the real steps: ``scclust_preflight.py`` and ``scclust_integrate.py`` under
``/usr/bin/time -v`` (peak RSS of the task's process), for each method asked for.

    python benchmarks/integrate_memory.py --out /tmp/integrate-bench --method harmony --method scvi --scvi-epochs 2
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def make_counts(path: Path, n_cells: int, n_genes: int, n_batches: int, seed: int) -> None:
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    from scclust.testdata import pbmc_counts

    base = pbmc_counts(seed, batch_effect=0.0)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, base.n_obs, n_cells)
    real = sp.csr_matrix(base.layers["counts"])[pick]
    real.data = rng.poisson(real.data).astype(np.float32)
    real.eliminate_zeros()
    rates = np.exp(rng.normal(np.log(0.05), 1.0, n_genes - base.n_vars))
    blocks = []
    for start in range(0, n_cells, 10_000):
        rows = min(10_000, n_cells - start)
        blocks.append(sp.csr_matrix(rng.poisson(rates, size=(rows, len(rates))).astype(np.float32)))
    counts = sp.hstack([real, sp.vstack(blocks)], format="csr")
    obs = pd.DataFrame(
        {"batch": pd.Categorical(rng.integers(0, n_batches, n_cells).astype(str))}, index=[f"cell{i}" for i in range(n_cells)]
    )
    var = pd.DataFrame(index=[*base.var_names, *(f"bg{i}" for i in range(len(rates)))])
    ad.AnnData(X=counts, obs=obs, var=var).write_zarr(path)


def run_task(workdir: Path, data: Path, method: str, epochs: int) -> dict[str, float | str]:
    workdir.mkdir(parents=True, exist_ok=True)
    params = {"input": str(data), "outdir": str(workdir), "integration": method, "batch_key": "batch", "scvi_max_epochs": epochs}
    (workdir / "params.json").write_text(json.dumps(params))
    bin_dir = ROOT / "bin"
    subprocess.run(
        [sys.executable, bin_dir / "scclust_preflight.py", "--params", "params.json", "--schema", ROOT / "nextflow_schema.json",
         "--input", data, "--id", "bench", "--out-config", "config.json", "--out", "dataset.json", "--out-plan", "plan.json"],
        cwd=workdir, check=True,
    )  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, bin_dir / "scclust_integrate.py", "--input", data, "--config", "config.json",
         "--dataset", "dataset.json", "--threads", "2", "--out", "integration.zarr"],
        cwd=workdir, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    import anndata as ad

    params = ad.read_zarr(workdir / "integration.zarr").uns["integration"]
    out: dict[str, float | str] = {"method": method, "peak_rss_gb": rss_kb / 1024**2, "wall_s": wall}
    if method == "scvi":
        out["epochs_run"] = int(params["epochs_run"])
    return out


@click.command()
@click.option("--out", type=click.Path(path_type=Path), required=True, help="work folder (the data is cached there)")
@click.option("--n-cells", type=int, default=100_000, show_default=True)
@click.option("--n-genes", type=int, default=10_000, show_default=True)
@click.option("--n-batches", type=int, default=4, show_default=True)
@click.option("--method", "methods", multiple=True, type=click.Choice(["harmony", "scvi"]), default=["harmony"])
@click.option("--scvi-epochs", type=int, default=2, show_default=True, help="scVI epochs (memory does not grow with them)")
def main(out: Path, n_cells: int, n_genes: int, n_batches: int, methods: tuple[str, ...], scvi_epochs: int) -> None:
    data = out / f"counts_{n_cells}x{n_genes}.zarr"
    if not data.exists():
        start = time.perf_counter()
        make_counts(data, n_cells, n_genes, n_batches, seed=0)
        click.echo(f"wrote {data} in {time.perf_counter() - start:.0f} s")
    for method in methods:
        click.echo(json.dumps(run_task(out / method, data.resolve(), method, scvi_epochs)))


if __name__ == "__main__":
    main()
