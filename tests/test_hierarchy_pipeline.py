"""Real pipeline runs of hierarchical sub-clustering on the bundled test data."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

from conftest import run_pipeline
from scclust.hierarchy import label_key

pytestmark = pytest.mark.pipeline


def read(run, dataset="pbmc"):
    return ad.read_zarr(run.outdir / dataset / "clustering.zarr")


def assert_nested(merged: ad.AnnData, parent: str, child: str) -> None:
    """Every child cluster lies inside one parent cluster and its label extends the parent's."""
    p = merged.obs[parent].astype(str).to_numpy()
    c = merged.obs[child].astype(str).to_numpy()
    for label in np.unique(c):
        parents = np.unique(p[c == label])
        assert len(parents) == 1, (child, label, parents)
        assert label == parents[0] or label.startswith(parents[0] + "_"), (label, parents[0])
    categories = list(merged.obs[child].cat.categories)
    assert categories == sorted(categories, key=label_key)
    params = merged.uns[child]["params"]
    assert params["parent_column"] == parent
    assert int(params["level"]) == int(child.rsplit("_", 1)[1])


@pytest.fixture(scope="module")
def depth3(testdata, tmp_path_factory):
    work = tmp_path_factory.mktemp("depth3")
    args = (
        "--input",
        str(testdata["zarr"]),
        "--resolutions",
        "0.5",
        "--hierarchy",
        "3",
        "--min_cluster_size",
        "40",
    )
    first = run_pipeline(work, *args).ok()
    again = run_pipeline(work, *args, outdir=work / "again").ok()
    return first, again


def test_integer_depth_builds_a_tree(depth3):
    merged = read(depth3[0])
    assert_nested(merged, "leiden_0.5_1", "leiden_0.5_2")
    assert_nested(merged, "leiden_0.5_2", "leiden_0.5_3")
    assert merged.obs["leiden_0.5_2"].nunique() > merged.obs["leiden_0.5_1"].nunique()


def test_small_clusters_keep_their_label_and_are_recorded(depth3):
    merged = read(depth3[0])
    level1 = merged.obs["leiden_0.5_1"].astype(str)
    level2 = merged.obs["leiden_0.5_2"].astype(str)
    sizes = level1.value_counts()
    small = [label for label, n in sizes.items() if n < 40]
    assert small, "the test data must have a cluster below min_cluster_size"
    params = merged.uns["leiden_0.5_2"]["params"]
    for label in small:
        assert (level2[level1 == label] == label).all()
        assert params["unsplit"][label] == "below_min_cluster_size"
    assert int(params["min_cluster_size"]) == 40


def test_rerun_is_identical(depth3):
    first, again = (read(r) for r in depth3)
    for column in ("leiden_0.5_1", "leiden_0.5_2", "leiden_0.5_3"):
        assert (first.obs[column].to_numpy() == again.obs[column].to_numpy()).all()
        assert list(first.obs[column].cat.categories) == list(again.obs[column].cat.categories)


def test_level2_split_equals_direct_reference(depth3, testdata):
    merged = read(depth3[0])
    params = merged.uns["leiden_0.5_2"]["params"]
    level1 = merged.obs["leiden_0.5_1"].astype(str)
    label = level1.value_counts().index[0]
    cells = (level1 == label).to_numpy()
    source = ad.read_zarr(testdata["zarr"])
    sub = ad.AnnData(obs=pd.DataFrame(index=source.obs_names[cells]), obsm={"X_pca": source.obsm["X_pca"][cells]})
    sc.pp.neighbors(sub, n_neighbors=int(params["n_neighbors"]), use_rep="X_pca", random_state=int(params["seed"]))
    sc.tl.leiden(
        sub,
        resolution=float(params["resolution"]),
        flavor="igraph",
        n_iterations=int(params["n_iterations"]),
        random_state=int(params["seed"]),
    )
    expected = (label + "_" + sub.obs["leiden"].astype(str)).to_numpy()
    assert (merged.obs["leiden_0.5_2"].astype(str).to_numpy()[cells] == expected).all()


def test_igraph_only_argument_with_leidenalg_level_is_refused(testdata, tmp_path):
    hierarchy = "{1: 0.3, 2: {resolution: 0.8, n_iterations: 5, flavor: leidenalg, beta: 0.02}}"
    run = run_pipeline(tmp_path, "--input", str(testdata["h5ad"]), "--hierarchy", hierarchy)
    # beta belongs to igraph's Leiden: with flavor leidenalg at level 2 it is refused before any task, naming it
    assert run.returncode != 0
    assert "beta" in run.output and "leidenalg" in run.output
    assert not (run.outdir / "pbmc" / "clustering.zarr").exists()


@pytest.fixture(scope="module")
def per_level_ok(testdata, tmp_path_factory):
    work = tmp_path_factory.mktemp("perlevel_ok")
    hierarchy = "{1: 0.3, 2: {resolution: 0.8, n_iterations: 5, flavor: leidenalg, seed: 7}}"
    return {
        mode: run_pipeline(
            work,
            "--input",
            str(testdata["h5ad"]),
            "--algorithm",
            "leiden,louvain",
            "--hierarchy",
            hierarchy,
            "--subcluster_graph",
            mode,
            "--min_cluster_size",
            "20",
            outdir=work / mode,
        ).ok()
        for mode in ("recompute", "induced")
    }


def test_level_mapping_records_level_arguments(per_level_ok):
    merged = read(per_level_ok["recompute"], "pbmc")
    # columns are named by the run's resolution (default 1.0); params record what each level really used
    assert "leiden_1.0_1" in merged.obs and "leiden_1.0_2" in merged.obs and "louvain_1.0_2" in merged.obs
    level1 = merged.uns["leiden_1.0_1"]["params"]
    assert float(level1["resolution"]) == 0.3 and float(level1["run_resolution"]) == 1.0
    assert level1["flavor"] == "igraph"
    level2 = merged.uns["leiden_1.0_2"]["params"]
    assert float(level2["resolution"]) == 0.8 and float(level2["run_resolution"]) == 1.0
    assert int(level2["n_iterations"]) == 5
    assert level2["flavor"] == "leidenalg"
    assert int(level2["seed"]) == 7
    assert level2["subcluster_graph"] == "recompute"
    assert_nested(merged, "leiden_1.0_1", "leiden_1.0_2")
    assert_nested(merged, "louvain_1.0_1", "louvain_1.0_2")


def test_induced_mode_differs_from_recompute_and_is_nested(per_level_ok):
    induced = read(per_level_ok["induced"], "pbmc")
    recompute = read(per_level_ok["recompute"], "pbmc")
    assert induced.uns["leiden_1.0_2"]["params"]["subcluster_graph"] == "induced"
    assert_nested(induced, "leiden_1.0_1", "leiden_1.0_2")
    assert (induced.obs["leiden_1.0_1"].to_numpy() == recompute.obs["leiden_1.0_1"].to_numpy()).all()
    assert not (induced.obs["leiden_1.0_2"].to_numpy() == recompute.obs["leiden_1.0_2"].to_numpy()).all()
