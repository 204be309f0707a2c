"""The pipeline in a podman container and on a one-node Slurm cluster (set up by .ci/run)."""

from __future__ import annotations

import os

import anndata as ad
import pytest
import scanpy as sc

from conftest import run_pipeline

pytestmark = pytest.mark.pipeline
IMAGE = os.environ.get("SCCLUST_TEST_IMAGE", "localhost/scclust-cpu:0.1.0")


def assert_leiden_matches_scanpy(run, testdata, columns):
    merged = ad.read_zarr(run.outdir / "pbmc" / "clustering.zarr")
    adata = ad.read_h5ad(testdata["h5ad"])
    for column in columns:
        assert column in merged.obs
    sc.tl.leiden(adata, resolution=0.5, flavor="igraph", n_iterations=2, random_state=0)
    assert (merged.obs["leiden_0.5_1"].to_numpy() == adata.obs["leiden"].to_numpy()).all()


@pytest.mark.podman
@pytest.mark.skipif(os.environ.get("SCCLUST_TEST_PODMAN") != "1", reason="needs podman and the CPU image (.ci/run)")
def test_podman_level1_and_two_levels(testdata, tmp_path):
    run = run_pipeline(
        tmp_path,
        "--cpu_container",
        IMAGE,
        "--input",
        str(testdata["zarr"]),
        "--resolutions",
        "0.5",
        "--hierarchy",
        "2",
        profile="test,podman",
    ).ok()
    assert "podman run" in "".join(p.read_text() for p in tmp_path.glob("work/*/*/.command.run"))
    assert_leiden_matches_scanpy(run, testdata, ["leiden_0.5_1", "leiden_0.5_2"])
    trace = next((run.outdir / "pipeline_info").glob("execution_trace_*.txt")).read_text()
    assert "CLUSTER" in trace and "SUBCLUSTER" in trace


@pytest.mark.slurm
@pytest.mark.skipif(os.environ.get("SCCLUST_TEST_SLURM") != "1", reason="needs a running Slurm cluster (.ci/run)")
def test_slurm_run_gives_the_local_result(testdata, tmp_path):
    fast = tmp_path / "fast_polling.config"
    fast.write_text("executor { pollInterval = '1 sec'; queueStatInterval = '2 sec'; submitRateLimit = '50/1s' }\n")
    run = run_pipeline(
        tmp_path,
        "-c",
        str(fast),
        "--input",
        str(testdata["zarr"]),
        "--resolutions",
        "0.5",
        "--hierarchy",
        "2",
        profile="test,slurm",
    ).ok()
    assert_leiden_matches_scanpy(run, testdata, ["leiden_0.5_1", "leiden_0.5_2"])
    trace = next((run.outdir / "pipeline_info").glob("execution_trace_*.txt")).read_text()
    assert "CLUSTER" in trace
    assert "#SBATCH" in "".join(p.read_text() for p in tmp_path.glob("work/*/*/.command.run"))
