"""Real `nextflow run`s with --integration harmony and scvi on counts with a simulated batch effect.

The data (scclust.testdata.pbmc_counts): the 700 PBMCs' integer counts recovered from pbmc68k_reduced, batch
``b`` shifted gene by gene. Checks the stored embedding, its params, the graph and columns built on it,
reproducibility on rerun, and that the batches mix after integration while the clusters still follow the cell
types (``-s`` prints the numbers recorded in docs/benchmarks.md). One more Harmony run has the same cells without
counts, laid out as pbmc68k_reduced is (X scaled, raw/X log-normalised).
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score

from conftest import Run, run_pipeline, tree_digest
from scclust.testdata import pbmc_counts, pbmc_without_counts

pytestmark = pytest.mark.pipeline

COLUMN = "leiden_1.0_1"
N_TOP_GENES = 500
SCVI_EPOCHS = 100


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("counts")
    adata = pbmc_counts()
    paths = {"h5ad": d / "counts.h5ad", "zarr": d / "counts.zarr", "sheet": d / "samplesheet.csv"}
    adata.write_h5ad(paths["h5ad"])
    adata.write_zarr(paths["zarr"])
    paths["sheet"].write_text(f"id,path\ncounts_h5ad,{paths['h5ad']}\ncounts_zarr,{paths['zarr']}\n")
    return paths


def integrate_run(work: Path, source: Path, *args: str) -> Run:
    return run_pipeline(
        work, "--input", str(source), "--resolutions", "1.0", "--batch_key", "batch", "--n_top_genes", str(N_TOP_GENES), *args
    ).ok()


def store(run: Run, dataset: str = "counts") -> ad.AnnData:
    """The merged store of a run: ``counts`` when the input was the .h5ad itself, else the samplesheet id."""
    return ad.read_zarr(run.outdir / dataset / "clustering.zarr")


@pytest.fixture(scope="module")
def harmony(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, dict[str, str]]:
    before = {k: tree_digest(data[k]) for k in ("h5ad", "zarr")}
    return integrate_run(tmp_path_factory.mktemp("harmony"), data["sheet"], "--integration", "harmony"), before


@pytest.fixture(scope="module")
def scvi_run(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Run:
    pytest.importorskip("scvi")
    args = ("--integration", "scvi", "--scvi_max_epochs", str(SCVI_EPOCHS), "--n_latent", "10")
    return integrate_run(tmp_path_factory.mktemp("scvi"), data["h5ad"], *args)


def hvg_reference(data: dict[str, Path]) -> list[str]:
    adata = ad.read_h5ad(data["h5ad"])
    counts = ad.AnnData(X=adata.layers["counts"], obs=adata.obs[["batch"]], var=pd.DataFrame(index=adata.var_names))
    sc.pp.highly_variable_genes(counts, flavor="seurat_v3", n_top_genes=N_TOP_GENES, batch_key="batch")
    return list(counts.var_names[counts.var["highly_variable"]])


def assert_graph_and_column_on(merged: ad.AnnData, key: str) -> None:
    assert merged.uns["neighbors"]["params"]["use_rep"] == key
    reference = ad.AnnData(obs=pd.DataFrame(index=merged.obs_names), obsm={key: merged.obsm[key]})
    sc.pp.neighbors(reference, use_rep=key, n_neighbors=15, random_state=0)
    assert (merged.obsp["connectivities"] != reference.obsp["connectivities"]).nnz == 0
    sc.tl.leiden(reference, resolution=1.0, flavor="igraph", n_iterations=2, random_state=0)
    assert (merged.obs[COLUMN].to_numpy() == reference.obs["leiden"].to_numpy()).all()
    graph = merged.uns[COLUMN]["params"]["graph"]
    assert graph["recomputed"] and graph["use_rep"] == key


@pytest.mark.parametrize("dataset", ["counts_h5ad", "counts_zarr"])
def test_harmony_embedding_params_graph_and_column(harmony, data, dataset):
    run, before = harmony
    merged = store(run, dataset)
    assert merged.obsm["X_pca_harmony"].shape == (700, 50)
    params = merged.uns["scclust"]["integration"]
    assert params["method"] == "harmony" and params["obsm_key"] == "X_pca_harmony"
    assert params["batch_key"] == "batch" and params["n_batches"] == 2 and params["input"] == "counts:layers/counts"
    assert params["hvg_flavor"] == "seurat_v3" and params["n_top_genes"] == N_TOP_GENES
    assert list(params["genes"]) == hvg_reference(data)
    assert params["seed"] == 0 and params["iterations"] >= 1 and np.isfinite(params["final_loss"])
    assert params["pca"]["n_comps"] == 50 and "harmonypy" in params["versions"]
    assert_graph_and_column_on(merged, "X_pca_harmony")
    assert {k: tree_digest(data[k]) for k in ("h5ad", "zarr")} == before
    if dataset == "counts_zarr":  # X and the layers stay links to the input
        for group in ("X", "layers"):
            assert (run.outdir / dataset / "clustering.zarr" / group).is_symlink()
    assert "harmonypy" in (run.outdir / "pipeline_info" / "software_versions.yml").read_text()


def test_harmony_rerun_is_identical(harmony, data, tmp_path):
    first = store(harmony[0], "counts_h5ad")
    again = store(integrate_run(tmp_path, data["h5ad"], "--integration", "harmony"))
    assert np.array_equal(first.obsm["X_pca_harmony"], again.obsm["X_pca_harmony"])
    assert (first.obs[COLUMN] == again.obs[COLUMN]).all()


def test_scvi_embedding_params_graph_and_column(scvi_run, data):
    merged = store(scvi_run)
    assert merged.obsm["X_scVI"].shape == (700, 10)
    params = merged.uns["scclust"]["integration"]
    assert params["method"] == "scvi" and params["obsm_key"] == "X_scVI" and params["n_latent"] == 10
    assert list(params["genes"]) == hvg_reference(data)
    assert params["max_epochs"] == SCVI_EPOCHS and 1 <= params["epochs_run"] <= SCVI_EPOCHS
    assert params["early_stopping"] and np.isfinite(params["final_loss"]) and params["accelerator"] == "cpu"
    assert params["threads"] == 1 and {"scvi-tools", "torch"} <= set(params["versions"])
    assert_graph_and_column_on(merged, "X_scVI")


def test_scvi_rerun_is_identical(scvi_run, data, tmp_path):
    args = ("--integration", "scvi", "--scvi_max_epochs", str(SCVI_EPOCHS), "--n_latent", "10")
    again = store(integrate_run(tmp_path, data["h5ad"], *args))
    first = store(scvi_run)
    assert np.array_equal(first.obsm["X_scVI"], again.obsm["X_scVI"])
    assert (first.obs[COLUMN] == again.obs[COLUMN]).all()


def mixing(merged: ad.AnnData) -> dict[str, float]:
    """Mean fraction of each cell's kNN from another batch; ARI of the clusters to the batch and to the cell types."""
    knn = sp.csr_matrix(merged.obsp["distances"])
    batch = merged.obs["batch"].to_numpy()
    other = [np.mean(batch[knn.indices[knn.indptr[i] : knn.indptr[i + 1]]] != batch[i]) for i in range(merged.n_obs)]
    return {
        "other_batch_neighbours": float(np.mean(other)),
        "ari_batch": adjusted_rand_score(batch, merged.obs[COLUMN]),
        "ari_bulk_labels": adjusted_rand_score(merged.obs["bulk_labels"], merged.obs[COLUMN]),
        "n_clusters": merged.obs[COLUMN].nunique(),
    }


@pytest.fixture(scope="module")
def baseline(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    """No integration: the graph on a PCA of the log-normalised counts (X)."""
    run = run_pipeline(tmp_path_factory.mktemp("baseline"), "--input", str(data["h5ad"]), "--recompute_neighbors", "true")
    return mixing(store(run.ok()))


# (method, least rise of the other-batch neighbour fraction, most ARI to batch as a share of the baseline's).
# scVI gets 100 epochs on 700 cells here and mixes less than Harmony (docs/benchmarks.md), hence its own bounds.
@pytest.mark.parametrize(("method", "rise", "ari_share"), [("harmony", 0.3, 0.25), ("scvi_run", 0.1, 0.75)])
def test_integration_mixes_batches_and_keeps_cell_types(method, rise, ari_share, baseline, request):
    run = request.getfixturevalue(method)
    got = mixing(store(run[0], "counts_h5ad") if isinstance(run, tuple) else store(run))
    print("\n" + pd.DataFrame({"none (PCA of X)": baseline, method: got}).T.to_string(float_format="%.3f"))
    assert got["other_batch_neighbours"] > baseline["other_batch_neighbours"] + rise
    assert got["ari_batch"] < ari_share * baseline["ari_batch"]
    assert got["ari_bulk_labels"] > 0.8 * baseline["ari_bulk_labels"]


@pytest.fixture(scope="module")
def without_counts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, ad.AnnData]:
    """The one run of Harmony on an input without counts (X scaled, raw/X log-normalised), and that input."""
    work = tmp_path_factory.mktemp("without_counts")
    adata = pbmc_without_counts()
    adata.write_h5ad(work / "nocounts.h5ad")
    return integrate_run(work, work / "nocounts.h5ad", "--integration", "harmony"), adata


def test_harmony_without_counts_selects_genes_on_raw_lognorm_and_mixes_batches(without_counts):
    run, adata = without_counts
    merged = store(run, "nocounts")
    params = merged.uns["scclust"]["integration"]
    assert params["input"] == "lognorm:raw/X" and params["hvg_flavor"] == "seurat"
    assert params["normalisation"] == "as in the input (log-normalised)" and params["pca"]["n_comps"] == 50
    lognorm = adata.raw.to_adata()
    sc.pp.highly_variable_genes(lognorm, flavor="seurat", n_top_genes=N_TOP_GENES, batch_key="batch")
    assert list(params["genes"]) == list(lognorm.var_names[lognorm.var["highly_variable"]])
    assert merged.obsm["X_pca_harmony"].shape == (700, 50)
    assert merged.uns[COLUMN]["params"]["graph"]["use_rep"] == "X_pca_harmony"

    # unintegrated: the same PCA of the same genes, graph and clustering, without Harmony
    unintegrated = ad.AnnData(obs=merged.obs[["batch", "bulk_labels"]].copy())
    unintegrated.obsm["X_pca"] = sc.pp.pca(
        lognorm[:, params["genes"]].X.toarray().astype(np.float64), n_comps=50, svd_solver="arpack", random_state=0
    )
    sc.pp.neighbors(unintegrated, use_rep="X_pca", n_neighbors=15, random_state=0)
    sc.tl.leiden(unintegrated, resolution=1.0, flavor="igraph", n_iterations=2, random_state=0, key_added=COLUMN)
    before, after = mixing(unintegrated), mixing(merged)
    print("\n" + pd.DataFrame({"PCA of the HVGs of raw/X": before, "harmony": after}).T.to_string(float_format="%.3f"))
    assert after["other_batch_neighbours"] > before["other_batch_neighbours"] + 0.3
    assert after["ari_batch"] < 0.25 * before["ari_batch"]
    assert after["ari_bulk_labels"] > before["ari_bulk_labels"] - 0.05
