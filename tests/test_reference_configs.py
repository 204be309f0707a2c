"""The reference tool's own test configurations (scAtlasTb, workflow/clustering/test/config.yaml), written as
scclust parameters and run through the real pipeline on the bundled pbmc68k data.

Expected labels come from a direct scanpy computation of the reference's meaning: level 1 is
``sc.tl.leiden`` on the input's graph at the level's resolution; level L > 1 re-clusters each level-(L-1) cluster
of at least 2 x 15 cells with ``sc.pp.neighbors(sub, use_rep="X_pca")`` and ``sc.tl.leiden``, at the level's
mapping value or else the run's resolution. Labels follow scclust's rule (a cluster that does not split keeps its
label), which changes names, not partitions.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scanpy as sc

from conftest import run_pipeline

pytestmark = pytest.mark.pipeline

# cluster counts per level that the reference reports for test_hierarchical (resolutions [0.5], {1: 0.1, 3: 0.2})
REFERENCE_COUNTS_HIERARCHICAL = [5, 12, 12]


def leiden(adata: ad.AnnData, resolution: float) -> np.ndarray:
    sc.tl.leiden(adata, resolution=resolution, flavor="igraph", n_iterations=2, random_state=0, key_added="ref")
    return adata.obs["ref"].astype(str).to_numpy()


def reference_tree(source: ad.AnnData, run_resolution: float, mapping: dict[int, float], depth: int) -> list[np.ndarray]:
    """Labels per level as the reference computes them, named by scclust's rule."""
    levels = [leiden(source.copy(), mapping.get(1, run_resolution))]
    for level in range(2, depth + 1):
        parent = levels[-1]
        child = parent.astype(object)
        for label in np.unique(parent):
            cells = parent == label
            if cells.sum() < 30:
                continue
            sub = ad.AnnData(obsm={"X_pca": source.obsm["X_pca"][cells]})
            sc.pp.neighbors(sub, use_rep="X_pca")
            labels = leiden(sub, mapping.get(level, run_resolution))
            if len(np.unique(labels)) > 1:
                child[cells] = label + "_" + labels
        levels.append(child.astype(str))
    return levels


def run(testdata, tmp_path_factory, name: str, *args: str):
    work = tmp_path_factory.mktemp(name)
    result = run_pipeline(work, "--input", str(testdata["h5ad"]), *args).ok()
    return result, ad.read_zarr(result.outdir / "pbmc" / "clustering.zarr")


@pytest.fixture(scope="module")
def hierarchical(testdata, tmp_path_factory):
    # test_hierarchical, plus a second tree at 1.0: a level-1 override then gives both trees the same level 1
    return run(testdata, tmp_path_factory, "hierarchical", "--resolutions", "0.5,1.0", "--hierarchy", "{1: 0.1, 3: 0.2}")


def test_hierarchical_config_matches_the_reference(hierarchical, testdata):
    result, merged = hierarchical
    source = ad.read_h5ad(testdata["h5ad"])
    for resolution in (0.5, 1.0):
        columns = [f"leiden_{resolution}_{level}" for level in (1, 2, 3)]
        expected = reference_tree(source, resolution, {1: 0.1, 3: 0.2}, 3)
        for column, labels, used in zip(columns, expected, (0.1, resolution, 0.2), strict=True):
            assert (merged.obs[column].astype(str).to_numpy() == labels).all(), column
            params = merged.uns[column]["params"]
            assert float(params["resolution"]) == used and float(params["run_resolution"]) == resolution
        line = f"leiden_{resolution}_{{1..3}}: resolution 0.1 at level 1, {resolution} at level 2, 0.2 at level 3"
        assert line in result.output
    counts = [merged.obs[f"leiden_0.5_{level}"].nunique() for level in (1, 2, 3)]
    assert counts == REFERENCE_COUNTS_HIERARCHICAL
    assert (merged.obs["leiden_0.5_1"].to_numpy() == merged.obs["leiden_1.0_1"].to_numpy()).all()


def test_hierarchical_int_config_matches_the_reference(testdata, tmp_path_factory):
    # test_hierarchical_int: use_gpu true falls back to the CPU here, as the reference does without a GPU
    _, merged = run(
        testdata, tmp_path_factory, "hierarchical_int", "--resolutions", "0.5", "--hierarchy", "3", "--use_gpu", "true"
    )
    expected = reference_tree(ad.read_h5ad(testdata["h5ad"]), 0.5, {}, 3)
    for level, labels in enumerate(expected, 1):
        assert (merged.obs[f"leiden_0.5_{level}"].astype(str).to_numpy() == labels).all(), level


def test_single_config_matches_the_reference(testdata, tmp_path_factory):
    # test_single (README: test_level1_multiresolution)
    result, merged = run(
        testdata,
        tmp_path_factory,
        "single",
        "--recompute_neighbors",
        "true",
        "--n_neighbors",
        "30",
        "--use_rep",
        "X_pca",
        "--resolutions",
        "0.2,0.3,0.4",
        "--recompute_umap",
        "true",
        "--umap_colors",
        "bulk_labels,batch",
    )
    reference = ad.read_h5ad(testdata["h5ad"])
    sc.pp.neighbors(reference, n_neighbors=30, use_rep="X_pca")
    for resolution in (0.2, 0.3, 0.4):
        assert (merged.obs[f"leiden_{resolution}_1"].astype(str).to_numpy() == leiden(reference, resolution)).all()
    assert "X_umap" in merged.obsm
    assert sorted(p.name for p in (result.outdir / "pbmc" / "plots").glob("*.png"))
    # resolutions_per_task auto on the test profile's 2 cores: two level-1 tasks, resolutions dealt round-robin
    trace = next((result.outdir / "pipeline_info").glob("execution_trace_*.txt")).read_text()
    tasks = sorted(line.split("\t")[3].split(":")[-1] for line in trace.splitlines() if "CLUSTER (" in line)
    assert tasks == ["CLUSTER (pbmc leiden #0,2)", "CLUSTER (pbmc leiden #1)"]
