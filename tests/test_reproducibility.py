"""Same input and params give byte-identical labels: across reruns, core counts, task batching and -resume."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import anndata as ad
import numpy as np
import pytest

from conftest import pipeline_command, run_pipeline

pytestmark = pytest.mark.pipeline


def labels(outdir, dataset="pbmc"):
    merged = ad.read_zarr(outdir / dataset / "clustering.zarr")
    columns = merged.uns["scclust"]["columns"]
    return merged, {c: (merged.obs[c].astype(str).to_numpy(), list(merged.obs[c].cat.categories)) for c in columns}


def assert_same_labels(a, b):
    assert a.keys() == b.keys()
    for column in a:
        assert (a[column][0] == b[column][0]).all(), column
        assert a[column][1] == b[column][1], column


@pytest.fixture(scope="module")
def bare(testdata, tmp_path_factory):
    """The test data without embedding and graph: the pipeline must compute PCA and the kNN graph itself."""
    data = tmp_path_factory.mktemp("bare")
    adata = ad.read_h5ad(testdata["h5ad"])
    del adata.obsm["X_pca"], adata.obsp["connectivities"], adata.obsp["distances"], adata.uns["neighbors"]
    path = data / "pbmc.zarr"
    adata.write_zarr(path)
    return path


def test_core_count_and_batching_do_not_change_labels(bare, tmp_path):
    args = (
        "--input",
        str(bare),
        "--recompute_neighbors",
        "true",
        "--n_pcs",
        "30",
        "--resolutions",
        "0.5,1.0",
        "--algorithm",
        "leiden,louvain",
        "--hierarchy",
        "2",
        "--min_cluster_size",
        "20",
    )
    (tmp_path / "one").mkdir()
    one = run_pipeline(tmp_path / "one", *args, "--resolutions_per_task", "2", outdir=tmp_path / "out1").ok()
    two_cpus = tmp_path / "two_cpus.config"
    two_cpus.write_text(
        "process { cpus = 2; withLabel: 'process_low' { cpus = 2 }; withLabel: 'process_medium' { cpus = 2 }; "
        "withLabel: 'process_single' { cpus = 2 } }\n"
    )
    (tmp_path / "two").mkdir()
    two = run_pipeline(
        tmp_path / "two",
        "-c",
        str(two_cpus),
        *args,
        "--resolutions_per_task",
        "1",
        # Two batches per column, not one per cluster: each SUBCLUSTER task is a new Python process (~7-10 s here,
        # ~30 s more where numba's kernel cache is cold), and 29 of them took over 15 minutes on two cores.
        "--subcluster_batch_cells",
        "400",
        outdir=tmp_path / "out2",
    ).ok()
    first, a = labels(one.outdir)
    second, b = labels(two.outdir)
    assert_same_labels(a, b)
    assert np.array_equal(first.obsm["X_pca"], second.obsm["X_pca"])
    assert first.uns["pca"]["params"]["n_comps"] == 30
    assert first.uns["leiden_0.5_1"]["params"]["graph"]["recomputed"] is True
    trace = next((two.outdir / "pipeline_info").glob("execution_trace_*.txt")).read_text()
    assert trace.count("SUBCLUSTER") > next((one.outdir / "pipeline_info").glob("execution_trace_*.txt")).read_text().count(
        "SUBCLUSTER"
    )


def test_killed_run_resumes_from_cache_with_identical_output(testdata, tmp_path):
    args = (
        "--input",
        str(testdata["zarr"]),
        "--resolutions",
        "0.5,1.0",
        "--resolutions_per_task",
        "1",
        "--hierarchy",
        "2",
        "--min_cluster_size",
        "20",
    )
    work, outdir = tmp_path / "killed", tmp_path / "killed" / "results"
    work.mkdir()
    proc = subprocess.Popen(
        pipeline_command(outdir, "test", *args),
        cwd=work,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = work / ".nextflow.log"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and "Submitted process > SCCLUST:HIERARCHY:SUBCLUSTER" in log.read_text(errors="replace"):
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (outdir / "pbmc" / "clustering.zarr").exists(), "a killed run must not publish a store"

    resumed = run_pipeline(work, *args, "-resume", outdir=outdir).ok()
    assert "Cached process > SCCLUST:LEVEL1:CLUSTER" in resumed.output
    assert "Cached process > SCCLUST:INPUTS:PREFLIGHT" in resumed.output
    # a finished run resumed again redoes none of the heavy tasks, the merge included
    again = run_pipeline(work, *args, "-resume", outdir=outdir).ok()
    for process in ("MERGE", "REPORTS:REPORT"):
        assert f"Cached process > SCCLUST:{process}" in again.output, process
        assert f"Submitted process > SCCLUST:{process}" not in again.output, process
    # the usual fix after an out-of-memory error: PREFLIGHT checks the new value, the clustering stays cached
    # (MERGE runs again only because the store records the new command line)
    raised = run_pipeline(work, *args, "--max_memory", "7.GB", "-resume", outdir=outdir).ok()
    assert "Submitted process > SCCLUST:INPUTS:PREFLIGHT" in raised.output
    for process in ("LEVEL1:CLUSTER", "HIERARCHY:SUBCLUSTER", "EVALUATE:METRICS"):
        assert f"Cached process > SCCLUST:{process}" in raised.output, process
        assert f"Submitted process > SCCLUST:{process}" not in raised.output, process
    (tmp_path / "clean").mkdir()
    clean = run_pipeline(tmp_path / "clean", *args, outdir=tmp_path / "clean" / "results").ok()
    assert_same_labels(labels(resumed.outdir)[1], labels(clean.outdir)[1])


def test_every_column_can_be_recreated_from_its_params_alone(testdata, tmp_path):
    import scanpy as sc
    from scanpy._utils import get_igraph_from_adjacency
    from scanpy._utils.random import set_igraph_random_state

    run = run_pipeline(
        tmp_path,
        "--input",
        str(testdata["h5ad"]),
        "--algorithm",
        "leiden,louvain",
        "--resolutions",
        "0.4,1.3",
        "--flavor",
        "leidenalg",
        "--seed",
        "11",
        "--n_iterations",
        "3",
    ).ok()
    merged = ad.read_zarr(run.outdir / "pbmc" / "clustering.zarr")
    for column in merged.uns["scclust"]["columns"]:
        p = merged.uns[column]["params"]
        key = p["neighbors_key"]
        if p["algorithm"] == "leiden":
            sc.tl.leiden(
                merged,
                resolution=float(p["resolution"]),
                flavor=p["flavor"],
                n_iterations=int(p["n_iterations"]),
                random_state=int(p["seed"]),
                neighbors_key=key,
                key_added="again",
            )
            again = merged.obs["again"].to_numpy()
        else:
            g = get_igraph_from_adjacency(merged.obsp[p["graph"]["connectivities_key"]], directed=False)
            with set_igraph_random_state(int(p["seed"])):
                again = np.asarray(g.community_multilevel(weights="weight", resolution=float(p["resolution"])).membership).astype(
                    str
                )
        assert (merged.obs[column].astype(str).to_numpy() == again).all(), column
