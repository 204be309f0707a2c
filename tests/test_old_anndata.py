"""The merged store opens in the oldest anndata scclust supports (0.11, with zarr 2), in its own virtualenv.

The virtualenv is created once under ``.venv-anndata011/`` (git-ignored) and reused while it works; pip's cache
makes a re-creation fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anndata as ad
import pytest
import scanpy as sc

from conftest import ROOT, run_pipeline

pytestmark = pytest.mark.pipeline

OLD_VENV = ROOT / ".venv-anndata011"
# the oldest supported stack: anndata 0.11 with zarr 2, and the pandas of its time
OLD_STACK = ("anndata==0.11.*", "zarr<3", "pandas<3")

READ_BACK = """
import json, sys
import anndata
adata = anndata.read_zarr(sys.argv[1])
columns = [c for c in adata.obs.columns if c.startswith(("leiden_", "louvain_"))]
print(json.dumps({
    "anndata": anndata.__version__,
    "n_obs": adata.n_obs,
    "columns": {c: adata.obs[c].astype(str).tolist() for c in columns},
    "params": {c: adata.uns[c]["params"] for c in columns},
    "scclust": list(adata.uns["scclust"]["columns"]),
}, default=lambda v: v.tolist()))
"""


def old_python() -> Path:
    """The virtualenv's python, creating the virtualenv if it is missing or broken."""
    python = OLD_VENV / "bin" / "python"
    check = [str(python), "-c", "import anndata, zarr; assert anndata.__version__.startswith('0.11.')"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(OLD_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *OLD_STACK], check=True, timeout=1200)
    subprocess.run(check, check=True)
    return python


@pytest.fixture(scope="module")
def stores(testdata, tmp_path_factory) -> dict[str, Path]:
    """An .h5ad-born and a .zarr-born store of one run with a two-level hierarchy and both algorithms."""
    work = tmp_path_factory.mktemp("old_anndata")
    hierarchy = "{2: {resolution: 0.8, n_iterations: 5}}"
    args = ("--input", str(testdata["samplesheet"]), "--algorithm", "leiden,louvain", "--resolutions", "0.5")
    # the reference's idiom: run arguments inside --clustering_args
    idiom = ("--clustering_args", '{"n_iterations": 3, "random_state": 1}')
    run = run_pipeline(work, *args, *idiom, "--hierarchy", hierarchy, "--min_cluster_size", "20").ok()
    return {name: run.outdir / name / "clustering.zarr" for name in ("pbmc_h5ad", "pbmc_zarr")}


def nones(value: Any, path: str = "") -> list[str]:
    """Paths of every ``None`` inside nested dicts and lists."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nones(v, f"{path}/{k}")]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in nones(v, f"{path}[{i}]")]
    return []


@pytest.mark.parametrize("name", ["pbmc_h5ad", "pbmc_zarr"])
def test_store_reads_back_in_anndata_0_11(stores, name):
    store = stores[name]
    current = ad.read_zarr(store)
    assert nones(dict(current.uns)) == []
    proc = subprocess.run([str(old_python()), "-c", READ_BACK, str(store)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    old = json.loads(proc.stdout)
    assert old["anndata"].startswith("0.11.")
    expected = ["leiden_0.5_1", "leiden_0.5_2", "louvain_0.5_1", "louvain_0.5_2"]
    assert sorted(old["columns"]) == expected == sorted(old["scclust"])
    for column in expected:
        assert old["columns"][column] == current.obs[column].astype(str).tolist()
        params = old["params"][column]
        assert params["algorithm"] == column.split("_")[0] and int(params["level"]) == int(column[-1])
        assert float(params["resolution"]) == (0.8 if column.endswith("_2") else 0.5)
        assert float(params["run_resolution"]) == 0.5
    level1 = old["params"]["leiden_0.5_1"]
    assert int(level1["n_iterations"]) == 3 and int(level1["seed"]) == 1
    assert "parent_column" not in level1 and "fallback" not in level1
    level2 = old["params"]["leiden_0.5_2"]
    assert level2["parent_column"] == "leiden_0.5_1"
    assert int(level2["level_args"]["n_iterations"]) == 5 and int(level2["n_iterations"]) == 5
    assert level2["subclusters"]


def test_clustering_args_idiom_gives_scanpy_labels(stores, testdata):
    merged = ad.read_zarr(stores["pbmc_h5ad"])
    reference = ad.read_h5ad(testdata["h5ad"])
    sc.tl.leiden(reference, resolution=0.5, flavor="igraph", n_iterations=3, random_state=1)
    assert (merged.obs["leiden_0.5_1"].to_numpy() == reference.obs["leiden"].to_numpy()).all()
