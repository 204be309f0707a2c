"""Preflight: check one dataset against the run's config before any heavy work, and describe it for the tasks."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scclust import io
from scclust.config import Config
from scclust.errors import UserError
from scclust.integrate import OBSM_KEYS, SCVI_INSTALL_HINT, integration_input, read_batches, scvi_available
from scclust.markers_io import check_markers_input
from scclust.markers_pass import plan_markers
from scclust.names import check_storable
from scclust.resources import cluster_memory_bytes, graph_entries_estimate
from scclust.results import obs_fingerprint, to_jsonable


def inspect_dataset(path: str | Path, cfg: Config, dataset_id: str) -> dict[str, Any]:
    """Validate a dataset for a run and return the description every later task reads (``dataset.json``).

    Raises
    ------
    UserError
        For anything the user must fix: not AnnData, too few cells, duplicate cell ids, a damaged obs, a missing,
        damaged, empty or non-finite graph, a missing embedding, ``n_neighbors`` too large, columns that exist
        already, unknown colours. Isolated cells are a warning (``warnings``), kept in every column's params.
    """
    p = Path(path)
    with io.open_store(p) as root:
        names = io.read_obs_names(root, p)
        n = len(names)
        if n < 2:
            raise UserError(f"input {p}: has {n} cell(s); clustering needs at least 2 cells")
        if names.has_duplicates:
            dup = names[names.duplicated()][0]
            raise UserError(
                f"input {p}: obs names are not unique (e.g. {dup!r}); make them unique with adata.obs_names_make_unique()"
            )
        obs_columns = set(io.check_obs(root, p).columns)
        check_storable(root, p, io.store_format(p))
        warnings: list[str] = []
        stale = io.unconsolidated_nodes(p) if io.store_format(p) == "zarr" else []
        if stale:
            warnings.append(
                f"the input's consolidated metadata (.zmetadata) does not describe {', '.join(stale[:5])} as they are "
                "on disk; scclust reads the store without it (the output store is consolidated anew), but "
                "anndata.read_zarr of the input would not: run zarr.consolidate_metadata(<input path>) to update it"
            )
        if not cfg.overwrite:
            clash = [c for c in cfg.columns() if c in obs_columns]
            if clash:
                raise UserError(
                    f"input {p}: obs already has column {clash[0]!r}; pass --overwrite to replace it or choose other resolutions"
                )
        missing_colours = [c for c in cfg.umap_colors if c not in obs_columns and c not in cfg.columns()]
        if missing_colours:
            raise UserError(f"--umap_colors: {missing_colours[0]!r} is not an obs column of {p}; pick existing columns")
        missing_labels = [c for c in cfg.label_columns if c not in obs_columns]
        if missing_labels:
            close = difflib.get_close_matches(missing_labels[0], sorted(obs_columns), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "pick existing columns"
            raise UserError(f"--label_columns: {missing_labels[0]!r} is not an obs column of {p}; {hint}")
        for parameter, names in (("--label_columns", cfg.label_columns), ("--umap_colors", cfg.umap_colors)):
            for name in names:
                if name not in cfg.columns():
                    _check_informative(root, p, parameter, name)

        integration = _check_integration(root, p, cfg)
        integrated = integration is not None and cfg.use_rep == integration["obsm_key"]
        rep_in_input = cfg.use_rep in io.obsm_keys(root) and not integrated
        compute_pca = False
        graph: dict[str, Any]
        if cfg.recompute_neighbors:
            if cfg.n_neighbors >= n:
                raise UserError(f"input {p}: --n_neighbors {cfg.n_neighbors} must be smaller than the number of cells ({n})")
            graph = {"neighbors_key": cfg.neighbors_key, "recomputed": True, "n_neighbors": cfg.n_neighbors}
            n_entries = graph_entries_estimate(n, cfg.n_neighbors)
        else:
            conn, dist = io.graph_keys(root, cfg.neighbors_key)
            shape = _stored_shape(root["obsp"][conn])
            if shape != (n, n):
                raise UserError(f"input {p}: obsp/{conn} has shape {shape}, not {n} x {n} cells; add --recompute_neighbors")
            edges = io.scan_graph(root, conn, p)
            n_entries = edges["n_edges"]  # what igraph will hold: the non-zero entries
            if edges["n_edges"] == 0:
                raise UserError(
                    f"input {p}: obsp/{conn} has no edges; every cell would be its own cluster. Add --recompute_neighbors"
                )
            if edges["n_isolated"]:
                warnings.append(
                    f"obsp/{conn}: {edges['n_isolated']} of {n} cells have no edge in the graph; each will be a cluster "
                    "of its own (add --recompute_neighbors for a graph without isolated cells)"
                )
            stored = io.read_uns_entry(root, cfg.neighbors_key)
            params = stored.get("params", {}) if isinstance(stored, dict) else {}
            graph = {
                "neighbors_key": cfg.neighbors_key,
                "connectivities_key": conn,
                "distances_key": dist,
                "recomputed": False,
                "stored_params": to_jsonable(params),
                **edges,
            }
        needs_rep = cfg.recompute_neighbors or (cfg.depth > 1 and cfg.subcluster_graph == "recompute")
        if needs_rep and rep_in_input:
            io.read_rep(root, cfg.use_rep, p)  # fails on NaN/inf before any task starts
        elif needs_rep and not integrated:
            if cfg.use_rep != "X_pca" or not cfg.recompute_neighbors:
                raise UserError(
                    f"input {p}: --use_rep {cfg.use_rep!r} is not in obsm (has: {', '.join(io.obsm_keys(root)) or 'nothing'}); "
                    "pass an existing obsm key, or --use_rep X_pca with --recompute_neighbors to compute PCA"
                )
            source = f"layers/{cfg.pca_layer}" if cfg.pca_layer else "X"
            if cfg.pca_layer and ("layers" not in root or cfg.pca_layer not in root["layers"]):
                raise UserError(f"input {p}: --pca_layer {cfg.pca_layer!r} is not in layers; pass an existing layer")
            if not cfg.pca_layer and "X" not in root:
                raise UserError(f"input {p}: has no X to compute PCA from; pass --pca_layer or an existing --use_rep")
            compute_pca = True
            graph["pca_source"] = source
        graph["use_rep"] = cfg.use_rep
        markers = None
        if cfg.markers:
            markers = check_markers_input(root, p, layer=cfg.markers_layer, gene_symbols=cfg.gene_symbols, n_obs=n)
            markers |= plan_markers(markers, n_obs=n, n_columns=len(cfg.columns()), task_entries=cfg.markers_task_entries)
        has_umap = "X_umap" in io.obsm_keys(root)
        if cfg.umap_colors and not (has_umap or cfg.recompute_umap):
            raise UserError(f"input {p}: --umap_colors needs obsm/X_umap; add --recompute_umap")

    return {
        "id": dataset_id,
        "input": str(p.resolve()),
        "format": io.store_format(p),
        "n_obs": n,
        "obs_fingerprint": obs_fingerprint(names),
        "graph": graph,
        "use_rep": cfg.use_rep,
        "rep_in_input": rep_in_input,
        "compute_pca": compute_pca,
        "umap_in_input": has_umap,
        "columns": cfg.columns(),
        "warnings": warnings,
        "graph_entries": n_entries,
        # read by conf/base.config (label process_high_memory) to size CLUSTER's memory request
        "cluster_memory_bytes": cluster_memory_bytes(n_entries),
        **({"integration": integration} if integration is not None else {}),
        **({"markers": markers} if markers is not None else {}),
    }


def _check_integration(root: io.Group, p: Path, cfg: Config) -> dict[str, Any] | None:
    """Check what INTEGRATE needs (batch column, its input, scvi-tools) and describe it; ``None`` without integration."""
    if cfg.integration == "none":
        return None
    # with --use_gpu INTEGRATE may run in another environment (label process_gpu) and checks there itself
    if cfg.integration == "scvi" and not cfg.use_gpu and not scvi_available():
        raise UserError(f"--integration scvi needs scvi-tools, which is not installed; {SCVI_INSTALL_HINT}")
    key = OBSM_KEYS[cfg.integration]
    if key in io.obsm_keys(root) and not cfg.overwrite:
        raise UserError(
            f"input {p}: obsm already has {key!r}; pass --overwrite to replace it in the output, "
            f"or cluster on it with --integration none --use_rep {key} --recompute_neighbors true"
        )
    batches = read_batches(root, cfg.batch_key or "", p)
    source = integration_input(root, p, method=cfg.integration, counts_layer=cfg.counts_layer, rep=cfg.integration_rep)
    described = {"method": cfg.integration, "obsm_key": key, "input": source, "n_batches": int(batches.nunique())}
    if not source.startswith("obsm:"):
        genes = root["raw"]["var"] if source == "lognorm:raw/X" else root["var"]
        described["n_vars"] = int(_stored_shape(genes[genes.attrs.get("_index", "_index")])[0])
    return described


def _check_informative(root: io.Group, p: Path, parameter: str, name: str) -> None:
    """Refuse a column with fewer than two distinct non-missing values: any clustering agrees with it trivially."""
    values = pd.Series(np.asarray(io.read_obs_column(root, name, p), dtype=object)).dropna()
    n_values = values.nunique()
    if n_values < 2:
        held = f"only {values.iloc[0]!r}" if n_values else "no value"
        raise UserError(
            f"{parameter}: obs column {name!r} of {p} holds {held} besides missing ones, so nothing can be compared "
            "with it; pick a column with at least two labels"
        )


def _stored_shape(node: Any) -> tuple[int, ...]:
    shape = node.attrs.get("shape")
    if shape is None:
        shape = node.shape
    return tuple(int(x) for x in shape)
