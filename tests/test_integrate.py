"""INTEGRATE's library logic: parameters, the batch column, its input (counts, log-normalised, an embedding), HVGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp

from scclust import integrate, io
from scclust.config import config_from_params
from scclust.dataset import inspect_dataset
from scclust.errors import UserError
from scclust.testdata import pbmc_counts, pbmc_without_counts

BASE = {"algorithm": "leiden", "resolutions": "1.0", "markers": False}  # MARKERS: tests/test_markers.py
HARMONY = {"integration": "harmony", "batch_key": "b"}
SCVI = {"integration": "scvi", "batch_key": "b"}


@pytest.fixture(scope="module")
def counts_adata() -> ad.AnnData:
    return pbmc_counts()


def write(adata: ad.AnnData, path: Path) -> Path:
    (adata.write_zarr if path.suffix == ".zarr" else adata.write_h5ad)(path)
    return path


def preflight_error(path: Path, **params: Any) -> str:
    with pytest.raises(UserError) as info:
        inspect_dataset(path, config_from_params({**BASE, **params}), "x")
    message = str(info.value)
    assert "\n" not in message
    return message


# --- parameters ------------------------------------------------------------------------------------------


def test_use_rep_defaults_to_the_integration_and_the_graph_is_recomputed() -> None:
    assert config_from_params(BASE).use_rep == "X_pca"
    for method, key in (("harmony", "X_pca_harmony"), ("scvi", "X_scVI")):
        cfg = config_from_params({**BASE, "integration": method, "batch_key": "batch"})
        assert (cfg.use_rep, cfg.recompute_neighbors) == (key, True)
    cfg = config_from_params({**BASE, "integration": "harmony", "batch_key": "batch", "use_rep": "X_pca"})
    assert cfg.use_rep == "X_pca"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"integration": "harmony"}, "--integration harmony needs --batch_key"),
        ({"integration": "combat", "batch_key": "b"}, "--integration 'combat' is not supported"),
        ({"integration_args": '{"theta": 1}'}, "--integration_args is set but --integration is none"),
        ({**HARMONY, "integration_args": '{"n_layers": 2}'}, "'n_layers' is not accepted by harmony"),
        ({**SCVI, "integration_args": '{"theta": 2}'}, "'theta' is not accepted by scvi; allowed:"),
        ({**SCVI, "integration_args": '{"n_layers": 1.5}'}, "'n_layers' must be an integer"),
        ({**SCVI, "integration_args": '{"n_hidden": true}'}, "'n_hidden' must be an integer"),
        ({**SCVI, "integration_args": '{"lr": "fast"}'}, "'lr' must be a number"),
        ({**SCVI, "integration_args": '{"early_stopping": 1}'}, "must be true or false"),
        ({**SCVI, "integration_args": '{"gene_likelihood": "normal"}'}, "one of zinb, nb"),
        ({**SCVI, "integration_args": '{"train_size": 1.5}'}, "in (0, 1]"),
        ({**SCVI, "integration_args": '{"max_epochs": 5}'}, "use --scvi_max_epochs"),
        ({**HARMONY, "integration_args": '{"random_state": 5}'}, "use --seed"),
        ({**HARMONY, "integration_args": "[1]"}, "--integration_args must be a mapping"),
        ({**SCVI, "scvi_max_epochs": 0}, "--scvi_max_epochs must be at least 1"),
        ({"integration_rep": "X_pca"}, "--integration_rep is set but --integration is none"),
        ({**SCVI, "integration_rep": "X_pca"}, "--integration_rep is for --integration harmony only: scvi models counts"),
        ({**HARMONY, "integration_rep": "X_pca_harmony"}, "not Harmony's output 'X_pca_harmony'"),
    ],
)
def test_bad_integration_params(params: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError) as info:
        config_from_params({**BASE, **params})
    assert message in str(info.value)


def test_valid_integration_args_are_kept() -> None:
    cfg = config_from_params({**BASE, **SCVI, "integration_args": {"n_layers": 2, "lr": 1e-3, "dispersion": "gene-batch"}})
    assert dict(cfg.integration_args) == {"n_layers": 2, "lr": 1e-3, "dispersion": "gene-batch"}
    assert config_from_params({**BASE, **HARMONY, "integration_args": "{theta: 1}"}).integration_args == {"theta": 1}


def test_max_epochs_rule_is_scvi_tools_own() -> None:
    pytest.importorskip("scvi")
    from scvi.model._utils import get_max_epochs_heuristic

    for n in (50, 700, 20_000, 20_001, 100_000, 5_000_000, 10**8):
        assert integrate.max_epochs_rule(n) == get_max_epochs_heuristic(n)


# --- the dataset at preflight ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: a.obs.drop(columns="batch", inplace=True), "--batch_key 'batch' is not an obs column"),
        (lambda a: a.obs.__setitem__("batch", np.nan), "is empty (all NaN)"),
        (lambda a: a.obs.__setitem__("batch", np.where(np.arange(a.n_obs) < 5, None, "a")), "has 5 cells without a batch"),
        (lambda a: a.obs.__setitem__("batch", "a"), "has a single value 'a'; integration needs two or more batches"),
    ],
)
def test_bad_batch_column(counts_adata: ad.AnnData, tmp_path: Path, mutate: Any, message: str) -> None:
    adata = counts_adata.copy()
    mutate(adata)
    path = write(adata, tmp_path / "d.h5ad")
    assert message in preflight_error(path, integration="harmony", batch_key="batch")


def source(path: Path, **params: Any) -> str:
    return inspect_dataset(path, config_from_params({**BASE, **params}), "x")["integration"]["input"]


@pytest.mark.parametrize("suffix", [".h5ad", ".zarr"])
def test_counts_layer_or_integer_x(counts_adata: ad.AnnData, tmp_path: Path, suffix: str) -> None:
    params = {"integration": "harmony", "batch_key": "batch"}
    assert source(write(counts_adata, tmp_path / f"layer{suffix}"), **params) == "counts:layers/counts"

    no_layer = counts_adata.copy()
    del no_layer.layers["counts"]
    no_layer.X = counts_adata.layers["counts"].copy()
    assert source(write(no_layer, tmp_path / f"xcounts{suffix}"), **params) == "counts:X"

    # a --counts_layer the user names and the input lacks is an error, never a fall-back to X
    message = preflight_error(write(pbmc_without_counts(), tmp_path / f"other{suffix}"), **params, counts_layer="raw")
    assert "no layer 'raw' (--counts_layer)" in message


@pytest.mark.parametrize("suffix", [".h5ad", ".zarr"])
def test_harmony_without_counts_takes_log_normalised_x_then_raw(tmp_path: Path, suffix: str) -> None:
    params = {"integration": "harmony", "batch_key": "batch"}
    scaled = pbmc_without_counts()  # X scaled (negative values), raw/X log-normalised
    assert source(write(scaled, tmp_path / f"raw{suffix}"), **params) == "lognorm:raw/X"
    lognorm = scaled.raw.to_adata()  # X log-normalised, no raw
    assert source(write(lognorm, tmp_path / f"x{suffix}"), **params) == "lognorm:X"
    both = lognorm.copy()
    both.raw = scaled.raw.to_adata()
    assert source(write(both, tmp_path / f"both{suffix}"), **params) == "lognorm:X"  # X first, as scanpy reads it


def test_scaled_only_or_unlogged_input_is_refused_naming_both_options(tmp_path: Path) -> None:
    scaled = pbmc_without_counts()
    del scaled.raw
    message = preflight_error(write(scaled, tmp_path / "scaled.h5ad"), integration="harmony", batch_key="batch")
    assert "--integration harmony found no raw counts (no layer 'counts', X not integers)" in message
    assert "(X has negative values (scaled?); no raw/X); pass --counts_layer" in message
    assert "or --integration_rep with an embedding to correct (obsm has: nothing)" in message

    unlogged = pbmc_without_counts().raw.to_adata()
    unlogged.X = sp.csr_matrix(np.expm1(unlogged.X.toarray()))  # counts per 10,000, never log-transformed
    message = preflight_error(write(unlogged, tmp_path / "unlogged.h5ad"), integration="harmony", batch_key="batch")
    assert "(X has values above 20 (not log-transformed?); no raw/X)" in message


@pytest.mark.parametrize("params", [SCVI, {**SCVI, "use_gpu": True}])
def test_scvi_without_counts_is_refused_naming_counts_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, params: dict[str, Any]
) -> None:
    monkeypatch.setattr("scclust.dataset.scvi_available", lambda: True)
    path = write(pbmc_without_counts(), tmp_path / "d.h5ad")
    message = preflight_error(path, **{**params, "batch_key": "batch"})
    assert "no layer 'counts' (--counts_layer) and X does not hold raw counts" in message


def test_integration_rep_is_harmonys_input(tmp_path: Path) -> None:
    adata = pbmc_without_counts()
    del adata.raw  # no genes Harmony could use: the embedding is its only input
    adata.obsm["X_pca"] = sc.pp.pca(adata.X, n_comps=20, random_state=0)
    path = write(adata, tmp_path / "d.h5ad")
    params = {"integration": "harmony", "batch_key": "batch", "integration_rep": "X_pca"}
    cfg = config_from_params({**BASE, **params})
    dataset = inspect_dataset(path, cfg, "x")
    assert dataset["integration"]["input"] == "obsm:X_pca" and dataset["use_rep"] == "X_pca_harmony"
    emb, got, _ = integrate.integrate(path, cfg, dataset, threads=1)
    assert emb.shape == (adata.n_obs, 20) and not np.allclose(emb, adata.obsm["X_pca"], atol=1e-3)
    assert got["input"] == "obsm:X_pca" and got["hvg_flavor"] == "none" and got["n_dims"] == 20
    assert not {"genes", "n_top_genes", "pca", "normalisation"} & set(got)

    message = preflight_error(path, **{**params, "integration_rep": "X_lsi"})
    assert message.endswith("--integration_rep 'X_lsi' is not in obsm (has: X_pca); pass an existing obsm key")
    adata.obsm["X_pca"][3, 1] = np.nan
    message = preflight_error(write(adata, tmp_path / "nan.h5ad"), **params)
    assert "obsm/X_pca contains NaN or infinite values; fix the embedding or pass another --integration_rep" in message


def test_lognorm_rows_beyond_the_checked_block_are_checked_when_read(tmp_path: Path) -> None:
    adata = pbmc_without_counts().raw.to_adata()
    adata.X = adata.X.toarray()
    adata.X[-1, 0] = -1.0
    path = write(adata, tmp_path / "d.h5ad")
    with io.open_store(path) as root:
        kind = integrate.integration_input(root, path, method="harmony", counts_layer="counts", rep=None, n_rows=100)
        assert kind == "lognorm:X"
        with pytest.raises(UserError, match="X, used as log-normalised values, has negative values"):
            integrate.read_expression(root, "X", path, adata.n_obs, "lognorm")


def test_counts_layer_of_non_integers_is_refused(counts_adata: ad.AnnData, tmp_path: Path) -> None:
    adata = counts_adata.copy()
    adata.layers["counts"] = adata.X.copy()
    path = write(adata, tmp_path / "d.h5ad")
    assert "layers/counts does not hold raw counts" in preflight_error(path, integration="harmony", batch_key="batch")


def test_existing_integration_key_needs_overwrite(counts_adata: ad.AnnData, tmp_path: Path) -> None:
    adata = counts_adata.copy()
    adata.obsm["X_pca_harmony"] = np.zeros((adata.n_obs, 2), dtype=np.float32)
    path = write(adata, tmp_path / "d.h5ad")
    assert "obsm already has 'X_pca_harmony'" in preflight_error(path, integration="harmony", batch_key="batch")
    cfg = config_from_params({**BASE, "integration": "harmony", "batch_key": "batch", "overwrite": True})
    assert inspect_dataset(path, cfg, "x")["integration"]["obsm_key"] == "X_pca_harmony"


def test_scvi_missing_stops_preflight_with_the_install_line(
    counts_adata: ad.AnnData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("scclust.dataset.scvi_available", lambda: False)
    path = write(counts_adata, tmp_path / "d.h5ad")
    message = preflight_error(path, integration="scvi", batch_key="batch")
    assert message.startswith(
        "--integration scvi needs scvi-tools, which is not installed; install it with `make setup EXTRAS=scvi`"
    )


# --- reading and HVGs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["csr", "csc", "dense"])
def test_read_expression_any_layout(
    counts_adata: ad.AnnData, tmp_path: Path, layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(integrate, "ROWS_PER_READ", 64)  # several row blocks
    expected = sp.csr_matrix(counts_adata.layers["counts"])
    adata = counts_adata.copy()
    adata.layers["counts"] = {"csr": expected, "csc": sp.csc_matrix(expected), "dense": expected.toarray()}[layout]
    for suffix in (".h5ad", ".zarr"):
        path = write(adata, tmp_path / f"d{suffix}")
        with io.open_store(path) as root:
            got = integrate.read_expression(root, "layers/counts", path, adata.n_obs)
        assert sp.isspmatrix_csr(got) and got.dtype == np.float32
        assert (got != expected).nnz == 0


def test_hvgs_are_scanpys_seurat_v3_per_batch(counts_adata: ad.AnnData) -> None:
    counts = sp.csr_matrix(counts_adata.layers["counts"])
    batches = pd.Series(counts_adata.obs["batch"].astype(str).to_numpy())
    got = integrate.highly_variable(counts, batches, 300)
    reference = ad.AnnData(X=counts.copy(), obs=counts_adata.obs[["batch"]].copy(), var=counts_adata.var.copy())
    sc.pp.highly_variable_genes(reference, flavor="seurat_v3", n_top_genes=300, batch_key="batch")
    assert list(counts_adata.var_names[got]) == list(reference.var_names[reference.var["highly_variable"]])
    assert len(integrate.highly_variable(counts, batches, 10_000)) == counts.shape[1]  # capped at the genes there are


@pytest.mark.parametrize("base", [None, 2.0])
def test_hvgs_of_log_normalised_values_are_scanpys_seurat_per_batch(counts_adata: ad.AnnData, base: float | None) -> None:
    lognorm = ad.AnnData(X=counts_adata.layers["counts"].copy(), obs=counts_adata.obs[["batch"]].copy())
    sc.pp.normalize_total(lognorm, target_sum=1e4)
    sc.pp.log1p(lognorm, base=base)
    batches = pd.Series(counts_adata.obs["batch"].astype(str).to_numpy())
    got = integrate.highly_variable(sp.csr_matrix(lognorm.X), batches, 300, "seurat", base)
    sc.pp.highly_variable_genes(lognorm, flavor="seurat", n_top_genes=300, batch_key="batch")
    assert list(np.flatnonzero(lognorm.var["highly_variable"])) == list(got)
    if base is not None:  # the base changes the selection: reading it from uns['log1p'] matters
        assert list(got) != list(integrate.highly_variable(sp.csr_matrix(lognorm.X), batches, 300, "seurat"))


def test_drop_none() -> None:
    assert integrate.drop_none({"a": None, "b": [1, None, {"c": None, "d": 2}]}) == {"b": [1, {"d": 2}]}
