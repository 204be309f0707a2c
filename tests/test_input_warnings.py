"""Inputs that are wrong in ways scanpy does not notice (issue 9, section 4), through the real pipeline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anndata as ad
import pandas as pd
import pytest

from conftest import run_pipeline, tree_digest
from scclust.testdata import pbmc

pytestmark = pytest.mark.pipeline

ISOLATED = 5
# The README's reading call: cell ids such as "NA" or "" stay text.
READ_TSV = {"sep": "\t", "index_col": 0, "dtype": str, "keep_default_na": False}


def test_isolated_cells_warn_and_odd_cell_ids_read_back(tmp_path: Path) -> None:
    adata = pbmc()
    names = list(adata.obs_names)
    names[:3] = ["NA", "", "null"]
    adata.obs_names = names
    graph = adata.obsp["connectivities"].tolil()
    graph[:ISOLATED, :] = 0
    graph[:, :ISOLATED] = 0
    adata.obsp["connectivities"] = graph.tocsr()
    adata.obsp["connectivities"].eliminate_zeros()
    path = tmp_path / "isolated.h5ad"
    adata.write_h5ad(path)

    run = run_pipeline(tmp_path, "--input", str(path), "--resolutions", "0.5").ok()
    warning = f"{ISOLATED} of {adata.n_obs} cells have no edge in the graph"
    assert any("WARN" in line and warning in line for line in run.output.splitlines()), run.output[-3000:]
    merged = ad.read_zarr(run.outdir / "isolated" / "clustering.zarr")
    params = merged.uns["leiden_0.5_1"]["params"]
    assert int(params["graph"]["n_isolated"]) == ISOLATED
    assert any(warning in w for w in params["warnings"])
    labels = merged.obs["leiden_0.5_1"].astype(str)
    assert labels.iloc[:ISOLATED].nunique() == ISOLATED, "an isolated cell is a cluster of its own"

    table = pd.read_csv(run.outdir / "isolated" / "clusters.tsv", **READ_TSV)
    assert list(table.index) == names
    assert (table["leiden_0.5_1"].to_numpy() == labels.to_numpy()).all()


def test_h5ad_open_for_writing_elsewhere_is_named(tmp_path: Path, testdata: dict[str, Path]) -> None:
    path = tmp_path / "open.h5ad"
    path.write_bytes(testdata["h5ad"].read_bytes())
    hold = f"import h5py, time; f = h5py.File({str(path)!r}, 'a'); print('open', flush=True); time.sleep(600)"
    holder = subprocess.Popen(
        [sys.executable, "-c", hold],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        before = tree_digest(path)
        run = run_pipeline(tmp_path, "--input", str(path), "--resolutions", "0.5")
    finally:
        holder.kill()
        holder.wait()
    assert run.returncode != 0
    lines = [line for line in run.output.splitlines() if "locked by another process" in line]
    assert lines, run.output[-3000:]
    assert str(path) in lines[0] and "close it there" in lines[0]
    assert "LEVEL1:CLUSTER" not in run.output
    assert tree_digest(path) == before
