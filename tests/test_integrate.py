"""INTEGRATE's library logic: parameters, the batch column, where the counts are, reading them, HVGs."""

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
from scclust.testdata import pbmc_counts

BASE = {"algorithm": "leiden", "resolutions": "1.0"}
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


@pytest.mark.parametrize("suffix", [".h5ad", ".zarr"])
def test_counts_layer_or_integer_x(counts_adata: ad.AnnData, tmp_path: Path, suffix: str) -> None:
    params = {"integration": "harmony", "batch_key": "batch"}
    path = write(counts_adata, tmp_path / f"layer{suffix}")
    cfg = config_from_params({**BASE, **params})
    assert inspect_dataset(path, cfg, "x")["integration"]["counts"] == "layers/counts"

    no_layer = counts_adata.copy()
    del no_layer.layers["counts"]  # X is log-normalised: not counts
    path = write(no_layer, tmp_path / f"nolayer{suffix}")
    message = preflight_error(path, **params)
    assert "no layer 'counts' (--counts_layer) and X does not hold raw counts" in message

    no_layer.X = counts_adata.layers["counts"].copy()
    path = write(no_layer, tmp_path / f"xcounts{suffix}")
    assert inspect_dataset(path, cfg, "x")["integration"]["counts"] == "X"

    path = write(counts_adata, tmp_path / f"other{suffix}")
    message = preflight_error(path, **params, counts_layer="raw")
    assert "no layer 'raw' (--counts_layer)" in message


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
def test_read_counts_any_layout(counts_adata: ad.AnnData, tmp_path: Path, layout: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(integrate, "ROWS_PER_READ", 64)  # several row blocks
    expected = sp.csr_matrix(counts_adata.layers["counts"])
    adata = counts_adata.copy()
    adata.layers["counts"] = {"csr": expected, "csc": sp.csc_matrix(expected), "dense": expected.toarray()}[layout]
    for suffix in (".h5ad", ".zarr"):
        path = write(adata, tmp_path / f"d{suffix}")
        with io.open_store(path) as root:
            got = integrate.read_counts(root, "layers/counts", path, adata.n_obs)
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


def test_drop_none() -> None:
    assert integrate.drop_none({"a": None, "b": [1, None, {"c": None, "d": 2}]}) == {"b": [1, {"d": 2}]}
