"""Real `nextflow run` of level-1 multi-resolution clustering on the bundled test data."""

from __future__ import annotations

import subprocess

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from scanpy._utils import get_igraph_from_adjacency
from scanpy._utils.random import set_igraph_random_state

from conftest import NEXTFLOW, ROOT, run_pipeline, tree_digest

pytestmark = pytest.mark.pipeline

RESOLUTIONS = ["0.2", "0.5", "1"]
COLUMNS = [f"{a}_{r}_1" for a in ("leiden", "louvain") for r in ("0.2", "0.5", "1.0")]


@pytest.fixture(scope="module")
def level1(testdata, tmp_path_factory):
    work = tmp_path_factory.mktemp("level1")
    before = {k: tree_digest(testdata[k]) for k in ("h5ad", "zarr")}
    run = run_pipeline(
        work,
        "--input",
        str(testdata["samplesheet"]),
        "--algorithm",
        "leiden,louvain",
        "--resolutions",
        ",".join(RESOLUTIONS),
        "--resolutions_per_task",
        "2",
        "--recompute_umap",
        "true",
        "--umap_colors",
        "bulk_labels,n_genes",
    ).ok()
    return run, before


def louvain_reference(adata: ad.AnnData, resolution: float, seed: int = 0) -> np.ndarray:
    g = get_igraph_from_adjacency(adata.obsp["connectivities"], directed=False)
    with set_igraph_random_state(seed):
        return np.asarray(g.community_multilevel(weights="weight", resolution=resolution).membership).astype(str)


@pytest.mark.parametrize("dataset", ["pbmc_h5ad", "pbmc_zarr"])
def test_merged_store_has_every_column_with_params(level1, dataset):
    run, _ = level1
    merged = ad.read_zarr(run.outdir / dataset / "clustering.zarr")
    original = sc.datasets.pbmc68k_reduced()
    assert merged.n_obs == original.n_obs
    for column in original.obs.columns:
        assert column in merged.obs.columns
    for column in COLUMNS:
        assert isinstance(merged.obs[column].dtype, pd.CategoricalDtype)
        params = merged.uns[column]["params"]
        algorithm, resolution, level = column.split("_")
        assert params["algorithm"] == algorithm
        assert float(params["resolution"]) == float(resolution)
        assert int(params["level"]) == int(level) == 1
        for key in ("flavor", "seed", "neighbors_key", "graph", "versions", "pipeline", "backend"):
            assert key in params, (column, key)
        assert params["neighbors_key"] == "neighbors"
        assert params["versions"]["scanpy"] == sc.__version__
        assert "--resolutions" in params["pipeline"]["command_line"]
        categories = list(merged.obs[column].cat.categories)
        assert categories == sorted(categories, key=int)
        if algorithm == "leiden":
            assert int(params["n_iterations"]) == 2


def test_labels_equal_direct_scanpy_calls(level1, testdata):
    run, _ = level1
    merged = ad.read_zarr(run.outdir / "pbmc_zarr" / "clustering.zarr")
    adata = ad.read_h5ad(testdata["h5ad"])
    counts = []
    for r in (0.2, 0.5, 1.0):
        sc.tl.leiden(adata, resolution=r, flavor="igraph", n_iterations=2, random_state=0, neighbors_key="neighbors")
        column = f"leiden_{r}_1"
        assert (merged.obs[column].to_numpy() == adata.obs["leiden"].to_numpy()).all()
        assert list(merged.obs[column].cat.categories) == list(adata.obs["leiden"].cat.categories)
        louvain = louvain_reference(adata, r)
        assert (merged.obs[f"louvain_{r}_1"].astype(str).to_numpy() == louvain).all()
        counts.append(merged.obs[f"louvain_{r}_1"].nunique())
    assert counts[0] < counts[1] < counts[2], f"louvain must honour resolution: {counts}"


def test_inputs_unchanged_and_zarr_output_links_to_input(level1, testdata):
    run, before = level1
    assert {k: tree_digest(testdata[k]) for k in ("h5ad", "zarr")} == before
    store = run.outdir / "pbmc_zarr" / "clustering.zarr"
    assert (store / "X").is_symlink()
    assert (store / "X").resolve() == (testdata["zarr"] / "X").resolve()
    assert not (store / "obs").is_symlink()
    h5_store = run.outdir / "pbmc_h5ad" / "clustering.zarr"
    assert not (h5_store / "X").exists()
    merged = ad.read_zarr(h5_store)
    assert "X_pca" in merged.obsm and "connectivities" in merged.obsp


def test_tsv_and_pipeline_info(level1):
    run, _ = level1
    table = pd.read_csv(run.outdir / "pbmc_h5ad" / "clusters.tsv", sep="\t", index_col=0, dtype=str)
    merged = ad.read_zarr(run.outdir / "pbmc_h5ad" / "clustering.zarr")
    assert list(table.columns) == COLUMNS
    assert (table.index == merged.obs_names).all()
    assert (table["leiden_0.5_1"].to_numpy() == merged.obs["leiden_0.5_1"].astype(str).to_numpy()).all()
    info = run.outdir / "pipeline_info"
    names = [p.name for p in info.iterdir()]
    for prefix in (
        "execution_report",
        "execution_timeline",
        "execution_trace",
        "params.json",
        "software_versions.yml",
    ):
        assert any(n.startswith(prefix) for n in names), prefix
    assert "scanpy" in (info / "software_versions.yml").read_text()


def test_nextflow_lint_is_clean():
    dirs = ("workflows", "subworkflows", "modules")
    files = [str(ROOT / "main.nf"), *(str(f) for d in dirs for f in sorted((ROOT / d).rglob("*.nf")))]
    proc = subprocess.run([NEXTFLOW, "lint", *files], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "had no errors" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "profile",
    [
        "test",
        "docker",
        "podman",
        "singularity",
        "apptainer",
        "slurm",
        "awsbatch",
        "gpu",
        "test,podman",
        "slurm,singularity,gpu",
    ],
)
def test_nextflow_config_resolves_every_profile(profile):
    proc = subprocess.run(
        [NEXTFLOW, "config", str(ROOT), "-profile", profile],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "process" in proc.stdout


def test_recomputed_umap_is_stored_and_plotted(level1, testdata):
    run, _ = level1
    store = run.outdir / "pbmc_zarr" / "clustering.zarr"
    merged = ad.read_zarr(store)
    original = ad.read_zarr(testdata["zarr"])
    assert merged.obsm["X_umap"].shape == (merged.n_obs, 2)
    assert not np.allclose(merged.obsm["X_umap"], original.obsm["X_umap"])
    assert int(merged.uns["umap"]["params"]["random_state"]) == 0
    # obsm gained X_umap, so it is a real group whose other entries still link to the input
    assert not (store / "obsm").is_symlink() and (store / "obsm" / "X_pca").is_symlink()
    plots = run.outdir / "pbmc_zarr" / "plots"
    for name in [*COLUMNS, "bulk_labels", "n_genes"]:
        png = plots / f"umap_{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
