"""INTEGRATE: batch-aware highly variable genes, then Harmony or scVI, into one embedding.

The reference calls (what a user would type on an AnnData of counts) are::

    sc.pp.highly_variable_genes(adata, flavor="seurat_v3", n_top_genes=n, batch_key=batch_key)
    # harmony: log-normalised HVGs -> PCA -> harmonypy
    sc.pp.normalize_total(adata, target_sum=1e4); sc.pp.log1p(adata); sc.pp.pca(hvg, n_comps=n_pcs)
    harmonypy.run_harmony(X_pca, adata.obs, batch_key, random_state=seed).Z_corr
    # scvi: counts of the HVGs
    scvi.model.SCVI.setup_anndata(hvg, batch_key=batch_key); model = scvi.model.SCVI(hvg, n_latent=n_latent)
    model.train(max_epochs=..., early_stopping=True); model.get_latent_representation()

Harmony needs only a PCA, so without counts it starts from a log-normalised matrix (X, else ``.raw``'s X)::

    sc.pp.highly_variable_genes(lognorm, flavor="seurat", n_top_genes=n, batch_key=batch_key)
    sc.pp.pca(lognorm[:, hvg], n_comps=n_pcs); harmonypy.run_harmony(...)

or from an existing embedding (``--integration_rep``): ``harmonypy.run_harmony(adata.obsm[rep], ...)``.
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
# Harmony's input kinds (recorded as "<kind>:<where>") and the HVG flavor each gets; obsm has no gene selection.
HVG_FLAVORS = {"counts": "seurat_v3", "lognorm": "seurat", "obsm": "none"}
NORMALISATION = {"counts": "normalize_total(target_sum=1e4), log1p", "lognorm": "as in the input (log-normalised)"}
DEFAULT_COUNTS_LAYER = "counts"
# log1p of counts normalised to any usual total stays far below this (log1p(1e6) = 13.8); a larger value means the
# matrix was not log-transformed, and seurat's expm1 of it would give meaningless dispersions.
LOG_MAX = 20.0
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


def validate_integration_rep(method: str, rep: Any) -> str | None:
    """Check ``--integration_rep`` (an obsm key Harmony corrects instead of a PCA of genes) against the method.

    Raises
    ------
    UserError
        When it is set without ``--integration harmony``, or names Harmony's own output.
    """
    if rep in (None, ""):
        return None
    rep = str(rep)
    if method == "none":
        raise UserError("--integration_rep is set but --integration is none; pass --integration harmony")
    if method != "harmony":
        raise UserError(
            f"--integration_rep is for --integration harmony only: {method} models counts; "
            "unset --integration_rep and pass --counts_layer"
        )
    if rep == OBSM_KEYS["harmony"]:
        raise UserError(f"--integration_rep must name the embedding to correct (e.g. X_pca), not Harmony's output {rep!r}")
    return rep


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


def _not_lognorm(block: Any) -> str | None:
    """Why a matrix (dense or sparse) is not log-normalised, for messages; ``None`` when it looks log-normalised.

    It does when finite, non-negative, at most ``LOG_MAX`` and not all integers (counts).
    """
    values = block.data if sp.issparse(block) else np.asarray(block)
    if not np.all(np.isfinite(values)):
        return "has NaN or infinite values"
    if values.size and values.min() < 0:
        return "has negative values (scaled?)"
    if values.size and values.max() > LOG_MAX:
        return f"has values above {LOG_MAX:g} (not log-transformed?)"
    if is_counts(block):
        return "holds integers (counts?)"
    return None


def integration_input(
    root: io.Group, path: str | Path, *, method: str, counts_layer: str, rep: str | None, n_rows: int = 1000
) -> str:
    """What the integration starts from, as ``"counts:<source>"``, ``"lognorm:<source>"`` or ``"obsm:<key>"``.

    ``rep`` (``--integration_rep``) wins. Else the counts of :func:`counts_source`; without them Harmony (never
    scVI, which models counts) takes a log-normalised X, else ``raw/X`` (scanpy's place for it when X is scaled).
    A user-named ``--counts_layer`` that is missing is an error, not a reason to fall back. Matrices are checked
    on their first ``n_rows`` rows; INTEGRATE checks every row when it reads the one chosen.

    Raises
    ------
    UserError
        Naming ``--integration_rep`` or ``--counts_layer`` and what each candidate matrix holds instead.
    """
    if rep is not None:
        keys = io.obsm_keys(root)
        if rep not in keys:
            raise UserError(
                f"input {path}: --integration_rep {rep!r} is not in obsm (has: {', '.join(keys) or 'nothing'}); "
                "pass an existing obsm key"
            )
        io.read_rep(root, rep, path, param="--integration_rep")  # a 2-D, finite embedding, before any task starts
        return f"obsm:{rep}"
    try:
        return f"counts:{counts_source(root, counts_layer, path, n_rows)}"
    except UserError:
        has_layer = "layers" in root and counts_layer in root["layers"]
        if method != "harmony" or has_layer or counts_layer != DEFAULT_COUNTS_LAYER:
            raise
    reasons = []
    for source, present in (("X", "X" in root), ("raw/X", "raw" in root and "X" in root["raw"])):
        if not present:
            reasons.append(f"no {source}")
            continue
        why = _not_lognorm(read_rows(root, source, path, 0, n_rows))
        if why is None:
            return f"lognorm:{source}"
        reasons.append(f"{source} {why}")
    keys = io.obsm_keys(root)
    raise UserError(
        f"input {path}: --integration harmony found no raw counts (no layer {counts_layer!r}, X not integers) and no "
        f"log-normalised matrix ({'; '.join(reasons)}); pass --counts_layer with a layer of raw counts, or "
        f"--integration_rep with an embedding to correct (obsm has: {', '.join(keys) or 'nothing'})"
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


def read_expression(root: io.Group, source: str, path: str | Path, n_obs: int, kind: str = "counts") -> sp.csr_matrix:
    """Read the counts (``kind`` counts) or log-normalised values (lognorm) once, as float32 CSR, checking every row.

    A dense matrix is read row block by row block, each kept sparse, so that it never sits in memory whole.
    """
    node = root[source]
    if node.attrs.get("encoding-type", "array") == "csr_matrix":
        blocks = [read_rows(root, source, path, 0, n_obs)]
    else:
        blocks = [sp.csr_matrix(read_rows(root, source, path, i, i + ROWS_PER_READ)) for i in range(0, n_obs, ROWS_PER_READ)]
    matrix = sp.csr_matrix(sp.vstack(blocks, format="csr") if len(blocks) > 1 else blocks[0], dtype=np.float32)
    if kind == "counts" and not is_counts(matrix):
        raise UserError(
            f"input {path}: {source} does not hold raw counts (non-negative integers) in every row; pass --counts_layer"
        )
    if kind == "lognorm" and (why := _not_lognorm(matrix)) is not None:
        raise UserError(
            f"input {path}: {source}, used as log-normalised values, {why} in some rows; "
            "pass --counts_layer with a layer of raw counts, or --integration_rep with an embedding"
        )
    return matrix


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


def highly_variable(
    matrix: sp.csr_matrix, batches: pd.Series, n_top_genes: int, flavor: str = "seurat_v3", log_base: float | None = None
) -> np.ndarray:
    """Indices (ascending) of the ``n_top_genes`` HVGs, selected per batch by scanpy.

    ``seurat_v3`` takes counts; ``seurat`` takes log-normalised values (``log_base`` as in ``uns['log1p']``,
    ``None`` for the natural log).
    """
    import scanpy as sc

    adata = ad.AnnData(X=matrix, obs=pd.DataFrame({"batch": pd.Categorical(batches.to_numpy())}))
    adata.obs_names = adata.obs_names.astype(str)
    adata.var_names = np.arange(matrix.shape[1]).astype(str)
    if log_base is not None:
        adata.uns["log1p"] = {"base": log_base}  # seurat's expm1 undoes a log of this base
    table = sc.pp.highly_variable_genes(
        adata, flavor=flavor, n_top_genes=min(n_top_genes, matrix.shape[1]), batch_key="batch", inplace=False
    )
    return np.flatnonzero(table["highly_variable"].to_numpy())


def log_normalise(counts: sp.csr_matrix, hvg: np.ndarray) -> sp.csr_matrix:
    """``log1p`` of the HVGs' counts per 10,000, library sizes from all genes (as ``normalize_total`` does)."""
    library = np.asarray(counts.sum(axis=1)).ravel()
    library[library == 0] = 1
    lognorm = sp.csr_matrix(sp.diags(1e4 / library) @ counts[:, hvg])
    lognorm.data = np.log1p(lognorm.data)
    return lognorm


def run_harmony(
    pcs: np.ndarray, batches: pd.Series, *, seed: int, threads: int, args: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    """Harmony on an embedding (a PCA of the HVGs, or the user's ``--integration_rep``)."""
    import harmonypy

    result = harmonypy.run_harmony(
        pcs, pd.DataFrame({"batch": batches.to_numpy()}), "batch", random_state=seed, ncores=threads, verbose=False, **args
    )
    corrected = np.asarray(result.Z_corr, dtype=np.float32)
    objective = list(result.objective_harmony)
    return np.ascontiguousarray(corrected), {
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
    """Read the input preflight chose once, select HVGs per batch (not for an embedding) and run the method.

    Returns
    -------
    The embedding (cells x dimensions), its params for ``uns['scclust']['integration']`` and the cell ids.
    """
    from scclust.neighbors import compute_pca

    kind, _, source = dataset["integration"]["input"].partition(":")
    p = Path(path)
    with io.open_store(p) as root:
        names = io.read_obs_names(root, p)
        batches = read_batches(root, cfg.batch_key, p)
        if kind == "obsm":
            rep = io.read_rep(root, source, p, param="--integration_rep")
        else:
            var_names = io.read_var_names(root["raw"] if source == "raw/X" else root, p)  # raw/X has raw/var's genes
            matrix = read_expression(root, source, p, len(names), kind)
            log_base = _log_base(root) if kind == "lognorm" else None
    selection: dict[str, Any] = {"hvg_flavor": HVG_FLAVORS[kind]}
    if kind != "obsm":
        hvg = highly_variable(matrix, batches, cfg.n_top_genes, HVG_FLAVORS[kind], log_base)
        selection.update(n_top_genes=len(hvg), genes=[str(g) for g in var_names[hvg]], log1p_base=log_base)
    if cfg.integration == "harmony":
        if kind == "obsm":
            pcs, prep = rep, {"n_dims": rep.shape[1]}
        else:
            hvg_values = log_normalise(matrix, hvg) if kind == "counts" else sp.csr_matrix(matrix[:, hvg])
            del matrix
            pcs, pca_params = compute_pca(hvg_values, cfg.n_pcs, cfg.seed)
            prep = {"normalisation": NORMALISATION[kind], "pca": pca_params}
        emb, info = run_harmony(pcs, batches, seed=cfg.seed, threads=threads, args=dict(cfg.integration_args))
        info = {**prep, **info}
        extra_versions: tuple[str, ...] = ("harmonypy", "scikit-misc") if kind == "counts" else ("harmonypy",)
    else:
        hvg_counts = sp.csr_matrix(matrix[:, hvg])
        del matrix
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
        "input": dataset["integration"]["input"],
        **selection,
        "seed": cfg.seed,
        **info,
        "versions": package_versions(extra_versions),
    }
    return emb, drop_none(to_jsonable(params)), names


def _log_base(root: io.Group) -> float | None:
    """The base of the input's log (``uns['log1p']['base']``, as scanpy's ``log1p`` records it); ``None``: natural."""
    entry = io.read_uns_entry(root, "log1p")
    base = entry.get("base") if isinstance(entry, dict) else None
    return None if base is None else float(base)


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
