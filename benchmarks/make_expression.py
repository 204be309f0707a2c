#!/usr/bin/env python
"""Give a ``make_synthetic.py --from-pbmc68k`` store a raw-count expression matrix with planted marker genes.

The input store (``make_synthetic.py --from-pbmc68k --noise 0.7 --n-cells N --out IN.zarr``) holds pbmc68k_reduced's
PCA upsampled to N cells, the source cell's ``bulk_labels`` (the cell type) and scanpy's kNN graph, but X is an
all-zero ``N x 1`` matrix. This script copies the store and writes a CSR X of raw counts (float32), a new var and
``uns['planted_markers']`` (gene -> cell type), row block by row block, so that at a million cells only one block
(10,000 cells) and the per-source expression profiles are ever in memory.

The model
---------
* **Genes** (``--n-genes``, default 20,000): pbmc68k_reduced's 765 genes (their own symbols), ``--markers-per-type``
  planted markers per cell type (``MK_<type>_<k>``, 10 types) and background genes ``GENE00001``...; the columns are
  in a seeded random order.
* **Source cell.** Each synthetic cell descends from one of the 700 real cells (the cell ``make_synthetic.py`` drew
  it from: its draws are replayed with ``--synthetic-seed`` and checked against the store's ``bulk_labels``; if they
  do not match, a seeded random cell of the same type is used and the script says so).
* **Profile of a source cell** (probabilities over all genes, one alias table per source cell):
  - the 765 real genes: half the source cell's own counts, half its type's mean, each as a fraction of the cell's
    total ``n_counts`` (so they carry ~20% of the counts, as in pbmc68k, where they are the highly variable genes);
  - planted markers of the cell's type: fractions ``--marker-fractions`` (default 6e-3 ... 1.5e-3 of the counts:
    about 21, 14, 10, 7 and 5 counts in a cell of 3,500), every other planted marker 1e-5 (ambient);
  - background genes take the rest: a shared heavy-tailed profile (log-normal weights, sigma 2: the top 1% of genes
    hold ~38% of the background counts), times a per-type factor ``exp(N(0, 0.25))`` on every gene and
    ``exp(N(0, 1))`` more on a per-type 2% of the genes (type programmes).
* **Counts**: library size ``round(n_counts[source] * exp(N(0, 0.2)))`` (pbmc68k's median is 3,334), then that many
  draws from the source cell's profile (a multinomial, by the alias method), counted per gene.

How realistic: the sparsity (median ~1,800 non-zero genes and ~3,400 counts per cell), the heavy-tailed gene
means, the type structure of the real genes and the link between embedding and expression (through the source cell)
are those of 10x PBMC data. Counts given the profile are multinomial (Poisson-like), so there is no extra
per-cell overdispersion beyond the source cell's and library size's variation, no gene-gene correlation beyond cell
type and source cell, no dropout model, and the background genes carry no biology beyond the type factors. The
planted markers are clean, strong markers (like CD79A in B cells): a check that markers are found, not a benchmark of
marker detection power.

Deterministic given ``--seed`` (and the input). Row blocks are drawn with their own seeds (``[seed, block]``), so
the result does not depend on memory or time.

    python benchmarks/make_expression.py --input benchmarks/data/pbmc_up_100k_n07.zarr \\
        --out benchmarks/data/expr_100k.zarr
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import click
import numba
import numpy as np
import pandas as pd

BLOCK = 10_000  # cells per generated and written row block (fixed: it is part of the seeding)
ZARR_CHUNK = 1 << 22  # stored values per zarr chunk of X's data and indices
DEFAULT_FRACTIONS = "6e-3,4e-3,3e-3,2e-3,1.5e-3"
AMBIENT = 1e-5  # fraction of the counts of a planted marker of another type


@numba.njit(cache=True)
def _alias_tables(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Vose's alias tables, one row per profile (rows of ``probs`` sum to 1)."""
    n_rows, n = probs.shape
    prob = np.empty((n_rows, n), dtype=np.float64)
    alias = np.empty((n_rows, n), dtype=np.int32)
    small = np.empty(n, dtype=np.int64)
    large = np.empty(n, dtype=np.int64)
    for r in range(n_rows):
        scaled = probs[r] * n
        ns = 0
        nl = 0
        for j in range(n):
            if scaled[j] < 1.0:
                small[ns] = j
                ns += 1
            else:
                large[nl] = j
                nl += 1
        while ns > 0 and nl > 0:
            ns -= 1
            s = small[ns]
            nl -= 1
            g = large[nl]
            prob[r, s] = scaled[s]
            alias[r, s] = g
            scaled[g] = scaled[g] + scaled[s] - 1.0
            if scaled[g] < 1.0:
                small[ns] = g
                ns += 1
            else:
                large[nl] = g
                nl += 1
        for q in range(nl):
            prob[r, large[q]] = 1.0
            alias[r, large[q]] = large[q]
        for q in range(ns):
            prob[r, small[q]] = 1.0
            alias[r, small[q]] = small[q]
    return prob, alias


@numba.njit(cache=True)
def _draw_block(
    sources: np.ndarray, libsizes: np.ndarray, uniforms: np.ndarray, prob: np.ndarray, alias: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """CSR (indptr, indices, data) of cells drawing ``libsizes[i]`` genes from profile ``sources[i]``."""
    n_cells = sources.shape[0]
    n_genes = prob.shape[1]
    indptr = np.zeros(n_cells + 1, dtype=np.int64)
    indices = np.empty(uniforms.shape[0], dtype=np.int32)
    data = np.empty(uniforms.shape[0], dtype=np.float32)
    counts = np.zeros(n_genes, dtype=np.int32)
    touched = np.empty(n_genes, dtype=np.int32)
    k = 0
    pos = 0
    for i in range(n_cells):
        s = sources[i]
        nt = 0
        for _ in range(libsizes[i]):
            x = uniforms[k] * n_genes
            k += 1
            j = min(int(x), n_genes - 1)
            g = j if x - j < prob[s, j] else alias[s, j]
            if counts[g] == 0:
                touched[nt] = g
                nt += 1
            counts[g] += 1
        genes = np.sort(touched[:nt])
        for q in range(nt):
            g = genes[q]
            indices[pos] = g
            data[pos] = counts[g]
            counts[g] = 0
            pos += 1
        indptr[i + 1] = pos
    return indptr, indices[:pos].copy(), data[:pos].copy()


def slug(cell_type: str) -> str:
    """A gene-name-safe form of a cell type: ``CD4+/CD25 T Reg`` -> ``CD4p_CD25_T_Reg``."""
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9]", "_", cell_type.replace("+", "p"))).strip("_")


def pbmc_reference() -> tuple[np.ndarray, np.ndarray, pd.Series, pd.Index]:
    """pbmc68k_reduced's integer counts of its 765 genes, its cells' total counts, bulk labels and gene names."""
    import scanpy as sc

    ref = sc.datasets.pbmc68k_reduced()
    n_counts = ref.obs["n_counts"].to_numpy(dtype=np.float64)
    counts = np.rint(np.expm1(ref.raw.X.toarray()) * n_counts[:, None] / 1e4)
    return counts, n_counts, ref.obs["bulk_labels"].astype(str).reset_index(drop=True), pd.Index(ref.raw.var_names)


def source_cells(labels: np.ndarray, ref_labels: pd.Series, synthetic_seed: int, seed: int) -> tuple[np.ndarray, bool]:
    """Each cell's source among the 700 (``make_synthetic.upsample_pbmc68k``'s first draw), and whether it replayed.

    If the replayed sources do not carry the store's labels, a seeded random cell of the same type is used.
    """
    n_ref = len(ref_labels)
    replay = np.random.default_rng(synthetic_seed).integers(0, n_ref, len(labels))
    if np.array_equal(ref_labels.to_numpy()[replay], labels):
        return replay, True
    rng = np.random.default_rng([seed, 1])
    source = np.empty(len(labels), dtype=np.int64)
    for t in np.unique(labels):
        cells = np.flatnonzero(labels == t)
        pool = np.flatnonzero(ref_labels.to_numpy() == t)
        if not len(pool):
            raise click.ClickException(f"cell type {t!r} of the store is not a bulk_labels value of pbmc68k_reduced")
        source[cells] = pool[rng.integers(0, len(pool), len(cells))]
    return source, False


def profiles(
    counts: np.ndarray,
    n_counts: np.ndarray,
    ref_labels: pd.Series,
    real_names: pd.Index,
    types: list[str],
    n_genes: int,
    fractions: list[float],
    seed: int,
) -> tuple[np.ndarray, pd.Index, dict[str, str]]:
    """Per source cell, the probability of each gene (700 x n_genes, columns in the final order); gene names; markers."""
    rng = np.random.default_rng([seed, 0])
    n_ref, n_real = counts.shape
    n_mk = len(fractions) * len(types)
    n_bg = n_genes - n_real - n_mk
    if n_bg < 1000:
        raise click.ClickException(f"--n-genes {n_genes} leaves {n_bg} background genes; use at least {n_real + n_mk + 1000}")
    base = np.exp(rng.normal(0.0, 2.0, n_bg))
    type_bg = {}
    for t in types:
        factor = np.exp(rng.normal(0.0, 0.25, n_bg))
        programme = rng.random(n_bg) < 0.02
        factor[programme] *= np.exp(rng.normal(0.0, 1.0, int(programme.sum())))
        w = base * factor
        type_bg[t] = w / w.sum()
    frac = counts / n_counts[:, None]
    type_mean = {t: frac[(ref_labels == t).to_numpy()].mean(axis=0) for t in types}
    marker_names = [f"MK_{slug(t)}_{k + 1}" for t in types for k in range(len(fractions))]
    planted = {name: t for name, t in zip(marker_names, [t for t in types for _ in fractions], strict=True)}
    out = np.empty((n_ref, n_genes), dtype=np.float64)
    for s in range(n_ref):
        t = ref_labels.iloc[s]
        real = 0.5 * frac[s] + 0.5 * type_mean[t]
        mk = np.full(n_mk, AMBIENT)
        i = types.index(t)
        mk[i * len(fractions) : (i + 1) * len(fractions)] = fractions
        rest = 1.0 - real.sum() - mk.sum()
        out[s] = np.concatenate([real, mk, rest * type_bg[t]])
    names = [*map(str, real_names), *marker_names, *(f"GENE{i + 1:05d}" for i in range(n_bg))]
    order = rng.permutation(n_genes)
    return np.ascontiguousarray(out[:, order]), pd.Index(np.asarray(names, dtype=object)[order], dtype=object), planted


def write_counts(
    out: Path,
    sources: np.ndarray,
    libsizes: np.ndarray,
    prob: np.ndarray,
    alias: np.ndarray,
    seed: int,
) -> dict[str, float]:
    """Draw and write X block by block (anndata's sparse append); returns totals for the log."""
    import scipy.sparse as sp
    import zarr
    from anndata.io import sparse_dataset, write_elem

    root = zarr.open_group(str(out), mode="r+", use_consolidated=False)
    if "X" in root:
        del root["X"]
    n_cells, n_genes = len(sources), prob.shape[1]
    nnz_per_cell = np.empty(n_cells, dtype=np.int64)
    dataset = None
    for b, start in enumerate(range(0, n_cells, BLOCK)):
        stop = min(start + BLOCK, n_cells)
        lib = libsizes[start:stop]
        uniforms = np.random.default_rng([seed, 2, b]).random(int(lib.sum()))
        indptr, indices, data = _draw_block(sources[start:stop], lib, uniforms, prob, alias)
        del uniforms
        block = sp.csr_matrix((data, indices, indptr), shape=(stop - start, n_genes))
        nnz_per_cell[start:stop] = np.diff(indptr)
        if dataset is None:
            write_elem(root, "X", block, dataset_kwargs={"chunks": (ZARR_CHUNK,), "indptr_dtype": np.int64})
            dataset = sparse_dataset(root["X"])
        else:
            dataset.append(block)
    if nnz_per_cell.sum() < np.iinfo(np.int32).max:
        # written as int64 (the total is unknown until the end); int32 when it fits, as anndata writes it, because
        # anndata reads int64 indptr + int32 indices as is and scanpy's rank_genes_groups then fails in scipy's
        # eliminate_zeros ("Output dtype not compatible with inputs")
        indptr = root["X"]["indptr"][...].astype(np.int32)
        del root["X"]["indptr"]
        root["X"].create_array("indptr", shape=indptr.shape, dtype=np.int32, chunks=(ZARR_CHUNK,))[...] = indptr
    return {
        "nnz": float(nnz_per_cell.sum()),
        "nnz_p5": float(np.percentile(nnz_per_cell, 5)),
        "nnz_median": float(np.median(nnz_per_cell)),
        "nnz_p95": float(np.percentile(nnz_per_cell, 95)),
    }


@click.command()
@click.option(
    "--input", "src", type=click.Path(exists=True, path_type=Path), required=True, help="make_synthetic.py --from-pbmc68k store."
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="New .zarr store (the input copied, with X).")
@click.option("--n-genes", type=int, default=20_000, show_default=True, help="Genes in total (real, planted, background).")
@click.option(
    "--marker-fractions", default=DEFAULT_FRACTIONS, show_default=True, help="Count fractions of each type's planted markers."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the profiles and counts.")
@click.option("--synthetic-seed", type=int, default=0, show_default=True, help="The --seed the input was made with.")
@click.option("--force", is_flag=True, help="Rebuild even if --out exists.")
def main(src: Path, out: Path, n_genes: int, marker_fractions: str, seed: int, synthetic_seed: int, force: bool) -> None:
    """Copy SRC to OUT and give it a raw-count X with planted markers (cached: an existing OUT is reused)."""
    if out.exists() and not force:
        click.echo(f"{out} exists; reusing it (--force to rebuild)")
        return
    import zarr
    from anndata.io import read_elem, write_elem

    t0 = time.perf_counter()
    fractions = [float(x) for x in marker_fractions.split(",")]
    counts, n_counts, ref_labels, real_names = pbmc_reference()
    obs = read_elem(zarr.open_group(str(src), mode="r")["obs"])
    labels = obs["bulk_labels"].astype(str).to_numpy()
    types = sorted(ref_labels.unique())
    sources, replayed = source_cells(labels, ref_labels, synthetic_seed, seed)
    how = "replayed from make_synthetic.py" if replayed else "NOT replayed; random cells of the same type"
    click.echo(f"source cells: {how}")
    probs, genes, planted = profiles(counts, n_counts, ref_labels, real_names, types, n_genes, fractions, seed)
    prob, alias = _alias_tables(probs)
    del probs
    rng = np.random.default_rng([seed, 3])
    libsizes = np.maximum(1, np.rint(n_counts[sources] * np.exp(rng.normal(0.0, 0.2, len(sources))))).astype(np.int64)
    t_setup = time.perf_counter() - t0

    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, out)
    (out / ".zmetadata").unlink(missing_ok=True)  # consolidated again at the end; anndata refuses to edit it
    stats = write_counts(out, sources, libsizes, prob, alias, seed)
    root = zarr.open_group(str(out), mode="r+", use_consolidated=False)
    del root["var"]
    write_elem(root, "var", pd.DataFrame(index=genes))
    uns = root["uns"]
    write_elem(uns, "planted_markers", planted)
    params = {
        "input": str(src), "n_genes": n_genes, "marker_fractions": fractions, "seed": seed,
        "synthetic_seed": synthetic_seed, "sources_replayed": replayed, "block": BLOCK,
    }  # fmt: skip
    write_elem(uns, "expression_params", json.dumps(params))
    zarr.consolidate_metadata(str(out))
    wall = time.perf_counter() - t0
    click.echo(
        f"wrote {out}: {len(sources)} cells x {n_genes} genes, {stats['nnz']:.4g} non-zeros "
        f"(per cell: 5% {stats['nnz_p5']:.0f}, median {stats['nnz_median']:.0f}, 95% {stats['nnz_p95']:.0f}), "
        f"counts per cell median {np.median(libsizes):.0f}; setup {t_setup:.1f} s, total {wall:.1f} s"
    )


if __name__ == "__main__":
    main()
