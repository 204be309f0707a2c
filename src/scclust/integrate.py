"""INTEGRATE: batch-aware highly variable genes, then Harmony or scVI, from raw counts into one embedding.

The reference calls (what a user would type on an AnnData of counts) are::

    sc.pp.highly_variable_genes(adata, flavor="seurat_v3", n_top_genes=n, batch_key=batch_key)
    # harmony: log-normalised HVGs -> PCA -> harmonypy
    sc.pp.normalize_total(adata, target_sum=1e4); sc.pp.log1p(adata); sc.pp.pca(hvg, n_comps=n_pcs)
    harmonypy.run_harmony(X_pca, adata.obs, batch_key, random_state=seed).Z_corr
    # scvi: counts of the HVGs
    scvi.model.SCVI.setup_anndata(hvg, batch_key=batch_key); model = scvi.model.SCVI(hvg, n_latent=n_latent)
    model.train(max_epochs=..., early_stopping=True); model.get_latent_representation()
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scclust import io
from scclust.errors import UserError
from scclust.provenance import package_versions
from scclust.results import to_jsonable

if TYPE_CHECKING:
    from scclust.config import Config

INTEGRATIONS = ("none", "harmony", "scvi")
OBSM_KEYS = {"harmony": "X_pca_harmony", "scvi": "X_scVI"}
HVG_FLAVOR = "seurat_v3"
SCVI_INSTALL_HINT = (
    "install it with `make setup EXTRAS=scvi` (requirements/scvi.txt), or with a container profile build the scVI "
    "image (containers/scvi) and pass --scvi_container"
)
ROWS_PER_READ = 10_000  # rows of a dense matrix read (and sparsified) at a time

_INT = (int,)
_NUMBER = (int, float)
# --integration_args accepted per method: key -> allowed Python types, or the allowed values.
HARMONY_ARGS: dict[str, Any] = {
    "theta": _NUMBER,
    "lamb": _NUMBER,
    "sigma": _NUMBER,
    "nclust": _INT,
    "tau": _NUMBER,
    "block_size": _NUMBER,
    "max_iter_harmony": _INT,
    "max_iter_kmeans": _INT,
    "epsilon_cluster": _NUMBER,
    "epsilon_harmony": _NUMBER,
    "alpha": _NUMBER,
}
SCVI_MODEL_ARGS: dict[str, Any] = {
    "n_hidden": _INT,
    "n_layers": _INT,
    "dropout_rate": _NUMBER,
    "dispersion": ("gene", "gene-batch", "gene-cell"),
    "gene_likelihood": ("zinb", "nb", "poisson"),
    "latent_distribution": ("normal", "ln"),
}
SCVI_TRAIN_ARGS: dict[str, Any] = {
    "batch_size": _INT,
    "train_size": _NUMBER,
    "early_stopping": (bool,),
    "early_stopping_patience": _INT,
    "lr": _NUMBER,
}
METHOD_ARGS = {"harmony": HARMONY_ARGS, "scvi": {**SCVI_MODEL_ARGS, **SCVI_TRAIN_ARGS}}
# Keys that have a parameter of their own.
RESERVED = {
    "n_latent": "--n_latent",
    "max_epochs": "--scvi_max_epochs",
    "random_state": "--seed",
    "seed": "--seed",
    "batch_key": "--batch_key",
    "n_top_genes": "--n_top_genes",
    "ncores": "the task's cpus",
    "accelerator": "--use_gpu",
}


def validate_integration_args(method: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``--integration_args`` for ``method``: known keys with values of the right type.

    Raises
    ------
    UserError
        For a key the method does not take, a key with a parameter of its own, or a value of the wrong type.
    """
    if method == "none":
        if args:
            raise UserError("--integration_args is set but --integration is none; pass --integration harmony or scvi")
        return {}
    allowed = METHOD_ARGS[method]
    for key, value in args.items():
        if key in RESERVED:
            raise UserError(f"--integration_args must not set {key!r}; use {RESERVED[key]}")
        if key not in allowed:
            raise UserError(f"--integration_args key {key!r} is not accepted by {method}; allowed: {', '.join(sorted(allowed))}")
        rule = allowed[key]
        if all(isinstance(r, type) for r in rule):
            ok = isinstance(value, rule) and (bool in rule or not isinstance(value, bool))
            if not ok:
                kind = "true or false" if bool in rule else "an integer" if rule == _INT else "a number"
                raise UserError(f"--integration_args {key!r} must be {kind}, got {value!r}")
        elif value not in rule:
            raise UserError(f"--integration_args {key!r} must be one of {', '.join(rule)}, got {value!r}")
    if method == "scvi" and "train_size" in args and not 0 < args["train_size"] <= 1:
        raise UserError(f"--integration_args 'train_size' must be in (0, 1], got {args['train_size']!r}")
    return dict(args)


def scvi_available() -> bool:
    """Whether scvi-tools can be imported here (it is an optional extra)."""
    return importlib.util.find_spec("scvi") is not None


def max_epochs_rule(n_obs: int) -> int:
    """scvi-tools' default ``max_epochs`` (``scvi.model.get_max_epochs_heuristic``): 400, fewer above 20k cells."""
    return max(min(round(20_000 / n_obs * 400), 400), 1)


def is_counts(block: Any) -> bool:
    """Whether a matrix (dense or sparse) holds only non-negative integers."""
    values = block.data if sp.issparse(block) else np.asarray(block)
    return bool(values.size == 0 or (np.all(values >= 0) and np.all(np.equal(np.mod(values, 1), 0))))


def counts_source(root: io.Group, layer: str, path: str | Path, n_rows: int = 1000) -> str:
    """Where the raw counts are: ``layers/<layer>``, else X when it holds counts; checked on the first rows.

    Raises
    ------
    UserError
        When neither the layer nor X holds non-negative integers.
    """
    if "layers" in root and layer in root["layers"]:
        source = f"layers/{layer}"
        if not is_counts(read_rows(root, source, path, 0, n_rows)):
            raise UserError(
                f"input {path}: {source} does not hold raw counts (non-negative integers); "
                "pass --counts_layer with the layer of counts"
            )
        return source
    if "X" in root and is_counts(read_rows(root, "X", path, 0, n_rows)):
        return "X"
    raise UserError(
        f"input {path}: no layer {layer!r} (--counts_layer) and X does not hold raw counts (non-negative integers); "
        "pass --counts_layer with the layer of raw counts"
    )


def read_rows(root: io.Group, source: str, path: str | Path, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of X or a layer, dense or sparse (CSR/CSC) on disk."""
    from anndata.io import sparse_dataset

    node = root[source]
    try:
        if node.attrs.get("encoding-type", "array") in ("csr_matrix", "csc_matrix"):
            return sparse_dataset(node)[start:stop]
        return node[start:stop]
    except Exception as err:
        raise UserError(f"input {path}: cannot read {source} ({type(err).__name__}); the store may be damaged") from None


def read_counts(root: io.Group, source: str, path: str | Path, n_obs: int) -> sp.csr_matrix:
    """Read the counts once, as float32 CSR (a dense matrix row block by row block), checking they are counts."""
    node = root[source]
    if node.attrs.get("encoding-type", "array") == "csr_matrix":
        blocks = [read_rows(root, source, path, 0, n_obs)]
    else:  # dense or CSC: by row blocks, each kept sparse, so a dense X never sits in memory whole
        blocks = [sp.csr_matrix(read_rows(root, source, path, i, i + ROWS_PER_READ)) for i in range(0, n_obs, ROWS_PER_READ)]
    counts = sp.csr_matrix(sp.vstack(blocks, format="csr") if len(blocks) > 1 else blocks[0], dtype=np.float32)
    if not is_counts(counts):
        raise UserError(
            f"input {path}: {source} does not hold raw counts (non-negative integers) in every row; pass --counts_layer"
        )
    return counts


def read_batches(root: io.Group, batch_key: str, path: str | Path) -> pd.Series:
    """The batch column as strings, after checking that it names at least two batches and no cell lacks one.

    Raises
    ------
    UserError
        For a missing column, missing values or a single batch.
    """
    from anndata.io import read_elem

    obs = root["obs"]
    columns = list(obs.attrs.get("column-order", []))
    if batch_key not in columns:
        raise UserError(f"input {path}: --batch_key {batch_key!r} is not an obs column (has: {', '.join(columns) or 'none'})")
    values = pd.Series(np.asarray(read_elem(obs[batch_key]), dtype=object))
    missing = values.isna()
    if missing.all():
        raise UserError(f"input {path}: obs column {batch_key!r} (--batch_key) is empty (all NaN); pick the column of batches")
    if missing.any():
        raise UserError(
            f"input {path}: obs column {batch_key!r} (--batch_key) has {int(missing.sum())} cells without a batch; fill them in"
        )
    values = values.astype(str)
    if values.nunique() < 2:
        raise UserError(
            f"input {path}: obs column {batch_key!r} (--batch_key) has a single value {values.iloc[0]!r}; "
            "integration needs two or more batches"
        )
    return values


def highly_variable(counts: sp.csr_matrix, batches: pd.Series, n_top_genes: int) -> np.ndarray:
    """Indices (ascending) of the ``n_top_genes`` HVGs, selected per batch by scanpy's ``seurat_v3`` on counts."""
    import scanpy as sc

    adata = ad.AnnData(X=counts, obs=pd.DataFrame({"batch": pd.Categorical(batches.to_numpy())}))
    adata.obs_names = adata.obs_names.astype(str)
    adata.var_names = np.arange(counts.shape[1]).astype(str)
    table = sc.pp.highly_variable_genes(
        adata, flavor=HVG_FLAVOR, n_top_genes=min(n_top_genes, counts.shape[1]), batch_key="batch", inplace=False
    )
    return np.flatnonzero(table["highly_variable"].to_numpy())


def run_harmony(
    counts: sp.csr_matrix, hvg: np.ndarray, batches: pd.Series, *, n_pcs: int, seed: int, threads: int, args: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    """Harmony on a PCA of the log-normalised HVGs (library sizes from all genes, as ``normalize_total`` does)."""
    import harmonypy

    from scclust.neighbors import compute_pca

    library = np.asarray(counts.sum(axis=1)).ravel()
    library[library == 0] = 1
    lognorm = sp.csr_matrix(sp.diags(1e4 / library) @ counts[:, hvg])
    lognorm.data = np.log1p(lognorm.data)
    pcs, pca_params = compute_pca(lognorm, n_pcs, seed)
    result = harmonypy.run_harmony(
        pcs, pd.DataFrame({"batch": batches.to_numpy()}), "batch", random_state=seed, ncores=threads, verbose=False, **args
    )
    corrected = np.asarray(result.Z_corr, dtype=np.float32)
    objective = list(result.objective_harmony)
    return np.ascontiguousarray(corrected), {
        "normalisation": "normalize_total(target_sum=1e4), log1p",
        "pca": pca_params,
        "harmony_args": args,
        "iterations": len(objective),
        "final_loss": float(objective[-1]) if objective else "not recorded",
        "threads": threads,
    }


def run_scvi(
    counts: sp.csr_matrix,
    batches: pd.Series,
    *,
    n_latent: int,
    max_epochs: int,
    seed: int,
    threads: int,
    use_gpu: bool,
    args: dict[str, Any],
) -> tuple[np.ndarray, dict[str, Any]]:
    """Train scVI on the HVG counts and return its latent mean, reproducibly for a seed on the same device and threads."""
    if not scvi_available():
        raise UserError(f"--integration scvi needs scvi-tools, which is not installed; {SCVI_INSTALL_HINT}")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS is deterministic only with this
    import scvi
    import torch

    on_gpu = bool(use_gpu and torch.cuda.is_available())
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=on_gpu)
    scvi.settings.seed = seed
    scvi.settings.dl_num_workers = 0
    model_args = {k: v for k, v in args.items() if k in SCVI_MODEL_ARGS}
    train_args = {k: v for k, v in args.items() if k in SCVI_TRAIN_ARGS}
    lr = train_args.pop("lr", None)
    train_args.setdefault("early_stopping", True)

    adata = ad.AnnData(X=counts, obs=pd.DataFrame({"batch": pd.Categorical(batches.to_numpy())}))
    adata.obs_names = adata.obs_names.astype(str)
    scvi.model.SCVI.setup_anndata(adata, batch_key="batch")
    model = scvi.model.SCVI(adata, n_latent=n_latent, **model_args)
    model.train(
        max_epochs=max_epochs,
        accelerator="gpu" if on_gpu else "cpu",
        devices=1,
        enable_progress_bar=False,
        plan_kwargs={"lr": lr} if lr is not None else None,
        **train_args,
    )
    history = model.history
    elbo = history["elbo_train"].to_numpy().ravel()
    info: dict[str, Any] = {
        "n_latent": n_latent,
        "max_epochs": max_epochs,
        "epochs_run": len(elbo),
        "final_loss": float(history["train_loss"].to_numpy().ravel()[-1]),
        "final_elbo_train": float(elbo[-1]),
        "early_stopping": bool(train_args["early_stopping"]),
        "scvi_args": args,
        "accelerator": "gpu" if on_gpu else "cpu",
        "threads": threads,
        "deterministic": "identical for the same seed, threads and CPU" if not on_gpu else "same GPU and software",
    }
    if "elbo_validation" in history:
        info["final_elbo_validation"] = float(history["elbo_validation"].to_numpy().ravel()[-1])
    latent = model.get_latent_representation()
    return np.ascontiguousarray(latent, dtype=np.float32), info


def integrate(
    path: str | Path, cfg: Config, dataset: dict[str, Any], *, threads: int
) -> tuple[np.ndarray, dict[str, Any], pd.Index]:
    """Read the counts once, select HVGs per batch and run the configured method.

    Returns
    -------
    The embedding (cells x dimensions), its params for ``uns['scclust']['integration']`` and the cell ids.
    """
    spec = dataset["integration"]
    p = Path(path)
    with io.open_store(p) as root:
        names = io.read_obs_names(root, p)
        batches = read_batches(root, cfg.batch_key, p)
        var_names = io.read_var_names(root, p)
        counts = read_counts(root, spec["counts"], p, len(names))
    hvg = highly_variable(counts, batches, cfg.n_top_genes)
    if cfg.integration == "harmony":
        emb, info = run_harmony(
            counts, hvg, batches, n_pcs=cfg.n_pcs, seed=cfg.seed, threads=threads, args=dict(cfg.integration_args)
        )
        extra_versions: tuple[str, ...] = ("harmonypy", "scikit-misc")
    else:
        hvg_counts = sp.csr_matrix(counts[:, hvg])
        del counts
        max_epochs = cfg.scvi_max_epochs or max_epochs_rule(len(names))
        emb, info = run_scvi(
            hvg_counts,
            batches,
            n_latent=cfg.n_latent,
            max_epochs=max_epochs,
            seed=cfg.seed,
            threads=threads,
            use_gpu=cfg.use_gpu,
            args=dict(cfg.integration_args),
        )
        extra_versions = ("scvi-tools", "torch", "lightning", "scikit-misc")
    params = {
        "method": cfg.integration,
        "obsm_key": OBSM_KEYS[cfg.integration],
        "batch_key": cfg.batch_key,
        "n_batches": int(batches.nunique()),
        "counts": spec["counts"],
        "hvg_flavor": HVG_FLAVOR,
        "n_top_genes": len(hvg),
        "genes": [str(g) for g in var_names[hvg]],
        "seed": cfg.seed,
        **info,
        "versions": package_versions(extra_versions),
    }
    return emb, drop_none(to_jsonable(params)), names


def drop_none(value: Any) -> Any:
    """Remove ``None`` (anndata 0.11 cannot read it back) from nested params."""
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_none(v) for v in value if v is not None]
    return value


def write_integration(path: str | Path, cfg: Config, dataset: dict[str, Any], out: str | Path, *, threads: int) -> dict[str, Any]:
    """Integrate and write a small zarr store: ``obsm[X_pca_harmony | X_scVI]`` and ``uns['integration']``."""
    from scclust.neighbors import write_zarr_atomic

    emb, params, names = integrate(path, cfg, dataset, threads=threads)
    adata = ad.AnnData(obs=pd.DataFrame(index=names), obsm={params["obsm_key"]: emb}, uns={"integration": params})
    write_zarr_atomic(adata, out)
    return params
