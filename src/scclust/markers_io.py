"""MARKERS' inputs and outputs: which matrix (scanpy's rule), preflight checks, and what the pass's rankings become.

Outputs: ``markers.npz`` holds, per column, what the ``uns`` entry in scanpy's ``rank_genes_groups`` layout is made
of (MERGE writes it into the store under :func:`uns_key`; :func:`read_entries`), and ``markers.tsv`` the long table.
The pass itself (chunks, gene batches, tasks) is :mod:`scclust.markers_pass`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata.io import read_elem

from scclust import io
from scclust.errors import UserError
from scclust.integrate import is_counts, read_rows
from scclust.markers import Column, Layout, Ranking
from scclust.markers_pass import compute, plan_markers
from scclust.results import ColumnResult, atomic_path

__all__ = ["check_markers_input", "compute", "plan_markers", "read_entries", "uns_key", "write_markers"]

PREFLIGHT_ROWS = 1000
UNS_PREFIX = "rank_genes_groups_"
WITHIN_SUFFIX = "_within_parent"


def uns_key(column: str, *, within: bool = False) -> str:
    """The store's ``uns`` key of a column's markers: ``rank_genes_groups_<column>[_within_parent]``."""
    return f"{UNS_PREFIX}{column}{WITHIN_SUFFIX if within else ''}"


def matrix_source(root: io.Group, path: str | Path, layer: str | None) -> tuple[str, str]:
    """Scanpy's choice of matrix (``raw`` when present, else X) or ``layers/<layer>``; returns it and its var group."""
    if layer:
        if "layers" not in root or layer not in root["layers"]:
            have = ", ".join(sorted(root["layers"].keys())) if "layers" in root else "none"
            raise UserError(f"input {path}: --markers_layer {layer!r} is not a layer (has: {have}); pass an existing layer")
        return f"layers/{layer}", "var"
    if "raw" in root and "X" in root["raw"]:
        return "raw/X", "raw/var"
    if "X" in root:
        return "X", "var"
    raise UserError(
        f"input {path}: has no expression matrix (X, raw or layers) to find marker genes in (a result store made from "
        "an .h5ad holds none); pass the original data as input, or --markers false"
    )


def _var_index(root: io.Group, var: str, path: str | Path) -> pd.Index:
    group = root[var]
    try:
        names = read_elem(group[group.attrs.get("_index", "_index")])
    except Exception as err:
        raise UserError(f"input {path}: cannot read {var} ({type(err).__name__}); the store may be damaged") from None
    return pd.Index([str(x) for x in np.asarray(names, dtype=object)], dtype=object)


def _symbols(root: io.Group, var: str, path: str | Path, gene_symbols: str | None) -> pd.Index | None:
    if not gene_symbols:
        return None
    if gene_symbols not in root[var]:
        raise UserError(
            f"input {path}: --gene_symbols {gene_symbols!r} is not a column of {var} (the var of the marker matrix); "
            "pass an existing column or leave it unset"
        )
    values = read_elem(root[var][gene_symbols])
    return pd.Index([str(x) for x in np.asarray(values, dtype=object)], dtype=object)


def check_markers_input(
    root: io.Group, path: str | Path, *, layer: str | None, gene_symbols: str | None, n_obs: int
) -> dict[str, Any]:
    """Preflight: the matrix exists, has unique gene names, is not scaled; describe it for MARKERS.

    Counts (non-negative integers in the first rows) are log-normalised on the fly (``normalize_total`` to 1e4, then
    ``log1p``); a negative value (scaled data) is refused, naming ``--markers_layer``.
    """
    source, var = matrix_source(root, path, layer)
    genes = _var_index(root, var, path)
    if genes.has_duplicates:
        dup = genes[genes.duplicated()][0]
        raise UserError(
            f"input {path}: gene names of {var} are not unique (e.g. {dup!r}), so markers could not be told apart; make "
            "them unique (adata.var_names_make_unique()) or pass --markers false"
        )
    _symbols(root, var, path, gene_symbols)
    block = read_rows(root, source, path, 0, min(PREFLIGHT_ROWS, n_obs))
    values = block.data if hasattr(block, "data") and not isinstance(block, np.ndarray) else np.asarray(block)
    if values.size and not np.isfinite(values).all():
        raise UserError(f"input {path}: {source} has NaN or infinite values; fix the matrix or pass --markers_layer")
    if values.size and (values < 0).any():
        raise UserError(
            f"input {path}: {source} has negative values (scaled data?); marker genes need log-normalised data or "
            "counts: pass --markers_layer with such a layer, or --markers false"
        )
    node = root[source]
    encoding = node.attrs.get("encoding-type", "array")
    stored = int(node["data"].shape[0]) if encoding in ("csr_matrix", "csc_matrix") else n_obs * len(genes)
    log1p = io.read_uns_entry(root, "log1p")
    counts = is_counts(block)
    return {
        "source": source,
        "var": var,
        "encoding": encoding,
        "n_vars": len(genes),
        "stored_entries": stored,
        "normalise": counts,
        "log_base": None if counts or not isinstance(log1p, dict) else log1p.get("base"),
        "gene_symbols": gene_symbols,
    }


def columns_for_markers(columns: list[ColumnResult]) -> list[Column]:
    """The markers' view of the run's columns: labels, level and parent column."""
    return [
        Column(
            name=c.name,
            labels=c.labels,
            level=int(c.params.get("level", 1)),
            parent=c.params.get("parent_column"),
        )
        for c in columns
    ]


FIELDS = {"scores": "float32", "pvals": "float64", "pvals_adj": "float64", "logfoldchanges": "float32"}


def entry_arrays(ranking: Ranking, genes: pd.Index, n_genes: int) -> dict[str, np.ndarray]:
    """A ranking's top ``n_genes`` per group (genes x groups) and, for the genes listed, pts, pts_rest and means."""
    top = ranking.top(n_genes).T
    cols = np.arange(len(ranking.groups))
    listed = np.unique(top)
    out = {"names": np.asarray(genes, dtype=str)[top], "listed": np.asarray(genes, dtype=str)[listed]}
    for field in FIELDS:
        out[field] = getattr(ranking, field).T[top, cols]
    for field in ("pts", "pts_rest", "means"):
        out[field] = getattr(ranking, field)[:, listed].T
    return out


def uns_entry(arrays: dict[str, np.ndarray], groups: list[str], params: dict[str, Any]) -> dict[str, Any]:
    """The ``uns['rank_genes_groups']`` layout of :func:`entry_arrays` (pts, pts_rest: the listed genes only)."""
    entry: dict[str, Any] = {"params": params}
    for field, dtype in {"names": "O", **FIELDS}.items():
        entry[field] = pd.DataFrame(arrays[field], columns=groups).to_records(index=False, column_dtypes=dtype)
    for field in ("pts", "pts_rest"):
        entry[field] = pd.DataFrame(arrays[field], index=pd.Index(arrays["listed"], dtype=object), columns=groups)
    return entry


TSV_COLUMNS = [
    "column", "level", "cluster", "parent", "rank", "gene", "symbol", "score", "logfoldchange", "pval", "pval_adj",
    "pct_in", "pct_out", "rank_within", "score_within", "logfoldchange_within", "pval_within", "pval_adj_within",
    "pct_siblings",
]  # fmt: skip


def table(
    columns: list[Column], layout: Layout, rankings: dict[str, tuple[Ranking, Ranking | None]], genes: pd.Index,
    symbols: pd.Index | None, n_genes: int,
) -> pd.DataFrame:  # fmt: skip
    """markers.tsv: per cluster its top genes against the rest, then (levels >= 2) those only top against its siblings."""
    rows = []
    for col in columns:
        ranking, within = rankings[col.name]
        parents = layout.parent_labels(col) if col.parent else {}
        top = ranking.top(n_genes)
        wtop = within.top(n_genes) if within is not None else None
        for i, cluster in enumerate(ranking.groups):
            j = within.groups.index(cluster) if within is not None and cluster in within.groups else None
            order = list(top[i])
            wrank = {} if j is None else {int(g): r for r, g in enumerate(wtop[j], 1)}  # type: ignore[index]
            order += [g for g in wrank if g not in set(order)]
            grank = {int(g): r for r, g in enumerate(top[i], 1)}
            for g in order:
                row = {
                    "column": col.name, "level": col.level, "cluster": cluster, "parent": parents.get(cluster, ""),
                    "rank": grank.get(int(g)), "gene": genes[g], "symbol": symbols[g] if symbols is not None else genes[g],
                    "score": ranking.scores[i, g], "logfoldchange": ranking.logfoldchanges[i, g],
                    "pval": ranking.pvals[i, g], "pval_adj": ranking.pvals_adj[i, g],
                    "pct_in": ranking.pts[i, g], "pct_out": ranking.pts_rest[i, g],
                }  # fmt: skip
                if j is not None:
                    row |= {
                        "rank_within": wrank.get(int(g)), "score_within": within.scores[j, g],  # type: ignore[union-attr]
                        "logfoldchange_within": within.logfoldchanges[j, g], "pval_within": within.pvals[j, g],  # type: ignore[union-attr]
                        "pval_adj_within": within.pvals_adj[j, g], "pct_siblings": within.pts_rest[j, g],  # type: ignore[union-attr]
                    }  # fmt: skip
                rows.append(row)
    out = pd.DataFrame(rows, columns=TSV_COLUMNS)
    for name in ("rank", "rank_within"):
        out[name] = out[name].astype("Int64")
    return out


def write_markers(
    path: str | Path,
    info: dict[str, Any],
    columns: list[Column],
    n_genes: int,
    out_npz: str | Path,
    out_tsv: str | Path,
    sums: Sequence[str | Path] = (),
) -> None:
    """Every column's markers (from the parts' ``sums``, or a pass of its own) as ``markers.npz`` and ``markers.tsv``."""
    with io.open_store(path) as root:
        genes = _var_index(root, info["var"], path)
        symbols = _symbols(root, info["var"], path, info["gene_symbols"])
    layout, rankings = compute(path, info, columns, sums)
    params = {
        "reference": "rest", "method": "t-test", "use_raw": info["source"] == "raw/X",
        "layer": info["source"][len("layers/"):] if info["source"].startswith("layers/") else None,
        "corr_method": "benjamini-hochberg", "matrix": info["source"],
        "normalised": "normalize_total(target_sum=1e4), log1p, on the fly" if info["normalise"] else "as stored",
        "gene_symbols": info["gene_symbols"] or "",
    }  # fmt: skip
    meta: dict[str, Any] = {"entries": {}, "symbols": None if symbols is None else list(symbols)}
    arrays: dict[str, np.ndarray] = {"genes": np.asarray(genes, dtype=str)}
    for col in columns:
        for within, ranking in enumerate(rankings[col.name]):
            if ranking is None:
                continue
            reference = f"siblings (the other cells of its cluster in {col.parent})" if within else "rest"
            key = uns_key(col.name, within=bool(within))
            meta["entries"][key] = {"groups": ranking.groups, "params": {"groupby": col.name, **params, "reference": reference}}
            arrays |= {f"{key}/{f}": v for f, v in entry_arrays(ranking, genes, n_genes).items()}
    tmp = atomic_path(out_npz)
    with tmp.open("wb") as fh:
        np.savez_compressed(fh, meta=np.array(json.dumps(meta)), **arrays)
    tmp.replace(out_npz)
    tsv = atomic_path(out_tsv)
    table(columns, layout, rankings, genes, symbols, n_genes).to_csv(tsv, sep="\t", index=False, float_format="%.6g")
    tsv.replace(out_tsv)


def read_entries(path: str | Path, part: str = "uns") -> Any:
    """Read ``markers.npz``: the uns entries by key.

    ``part='means'``: mean expression of the listed genes per entry (the report's dot plots); ``'symbols'``: var
    name -> the name to show.
    """
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if part == "symbols":
            genes = list(data["genes"])
            return pd.Series(meta["symbols"] or genes, index=genes, dtype=object)
        out = {}
        for key, entry in meta["entries"].items():
            arrays = {f: data[f"{key}/{f}"] for f in ("names", "listed", *FIELDS, "pts", "pts_rest", "means")}
            if part == "means":
                out[key] = pd.DataFrame(arrays["means"], index=pd.Index(arrays["listed"], dtype=object), columns=entry["groups"])
            else:
                out[key] = uns_entry(arrays, entry["groups"], entry["params"])
        return out
