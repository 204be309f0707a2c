"""The pipeline in a podman container and on a one-node Slurm cluster (set up by .ci/run)."""

from __future__ import annotations

import os

import anndata as ad
import pytest
import scanpy as sc

from conftest import run_pipeline

pytestmark = pytest.mark.pipeline
IMAGE = os.environ.get("SCCLUST_TEST_IMAGE", "localhost/scclust-cpu:0.1.0")


def run_two_levels(testdata, tmp_path, profile, *extra):
    """Level 1 and a two-level tree on the test data under ``profile``; labels must equal scanpy's direct call."""
    run = run_pipeline(
        tmp_path, *extra, "--input", str(testdata["zarr"]), "--resolutions", "0.5", "--hierarchy", "2", profile=profile
    ).ok()
    merged = ad.read_zarr(run.outdir / "pbmc" / "clustering.zarr")
    assert "leiden_0.5_1" in merged.obs and "leiden_0.5_2" in merged.obs
    adata = ad.read_h5ad(testdata["h5ad"])
    sc.tl.leiden(adata, resolution=0.5, flavor="igraph", n_iterations=2, random_state=0)
    assert (merged.obs["leiden_0.5_1"].to_numpy() == adata.obs["leiden"].to_numpy()).all()
    trace = next((run.outdir / "pipeline_info").glob("execution_trace_*.txt")).read_text()
    assert "CLUSTER" in trace and "SUBCLUSTER" in trace
    return "".join(p.read_text() for p in tmp_path.glob("work/*/*/.command.run"))


@pytest.mark.podman
@pytest.mark.skipif(os.environ.get("SCCLUST_TEST_PODMAN") != "1", reason="needs podman and the CPU image (.ci/run)")
def test_podman_level1_and_two_levels(testdata, tmp_path):
    scripts = run_two_levels(testdata, tmp_path, "test,podman", "--cpu_container", IMAGE)
    assert "podman run" in scripts


@pytest.mark.slurm
@pytest.mark.skipif(os.environ.get("SCCLUST_TEST_SLURM") != "1", reason="needs a running Slurm cluster (.ci/run)")
def test_slurm_run_gives_the_local_result(testdata, tmp_path):
    fast = tmp_path / "fast_polling.config"
    fast.write_text("executor { pollInterval = '1 sec'; queueStatInterval = '2 sec'; submitRateLimit = '50/1s' }\n")
    scripts = run_two_levels(testdata, tmp_path, "test,slurm", "-c", str(fast))
    assert "#SBATCH" in scripts
