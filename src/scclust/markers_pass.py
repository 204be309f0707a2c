"""MARKERS' pass over the expression matrix: exact sums per cluster and gene, by chunks, gene batches and tasks.

Reading. A CSR or dense matrix is read in row chunks (only the chunk's rows), a CSC matrix in gene chunks (all rows
of a range of genes, sliced straight from its ``indptr``), so that neither is ever in memory whole. Raw counts are
log-normalised per cell on the fly; for a CSC matrix a first streamed pass adds up each cell's total.

Memory. A chunk holds about ``ENTRIES_PER_CHUNK`` stored values; the sums are ``clusters x genes x 48`` bytes and
above ``sums_budget`` the genes are split into batches, each a pass over the rows (CSR/dense) or over its own genes
(CSC). Labels take ``8 x columns`` bytes per cell. Nothing else grows with the number of cells.

Tasks. Above ``task_entries`` stored values the pass is split into parts (:func:`plan_parts`): row ranges of a CSR
or dense matrix, gene ranges of a CSC one, each a MARKERS_SUMS task writing its sums as an ``.npy`` file
(``clusters x its genes x 6`` int64, :func:`write_sums`); MARKERS adds them up gene batch by gene batch
(:func:`compute` with ``sums``). The sums are integers, so neither parts nor chunks nor the order of the additions
change a bit of the result.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from scclust import io
from scclust.errors import UserError
from scclust.integrate import is_counts, read_rows
from scclust.markers import (
    BAD_VALUES,
    N_SLOTS,
    Column,
    Layout,
    Ranking,
    accumulate_block,
    benjamini_hochberg,
    gene_batches,
    normalise_counts,
)
from scclust.results import atomic_path

ENTRIES_PER_CHUNK = 20_000_000  # about 160 MB of float32 values and indices per chunk
SUMS_BUDGET = 2 << 30  # accumulator bytes before the genes are split into batches (one pass each)
CLUSTERS_PER_COLUMN = 64
CHUNK_BYTES_PER_ENTRY = 48  # the block as read, as CSR with int64 indices, and normalised (counts)
TASK_ENTRIES = 250_000_000  # --markers_task_entries: stored values per MARKERS_SUMS task (about 100k cells)
SUMS_NAME = re.compile(r"markers_sums\.(\d+)\.npy$")

Rankings = dict[str, tuple[Ranking, Ranking | None]]


def plan_parts(info: dict[str, Any], *, n_obs: int, task_entries: int) -> list[list[int]]:
    """``[row_start, row_stop, gene_start, gene_stop]`` of each MARKERS_SUMS task: one part up to ``task_entries``."""
    n_parts = max(1, min(math.ceil(info["stored_entries"] / task_entries), n_obs, info["n_vars"]))
    if info["encoding"] == "csc_matrix":
        cuts = np.linspace(0, info["n_vars"], n_parts + 1).round().astype(int)
        return [[0, n_obs, int(a), int(b)] for a, b in itertools.pairwise(cuts)]
    cuts = np.linspace(0, n_obs, n_parts + 1).round().astype(int)
    return [[int(a), int(b), 0, info["n_vars"]] for a, b in itertools.pairwise(cuts)]


def plan_markers(info: dict[str, Any], *, n_obs: int, n_columns: int, task_entries: int = TASK_ENTRIES) -> dict[str, Any]:
    """The parts, the sums budget genes are batched by, and each task's memory request (read by conf/base.config).

    The budget assumes up to ``CLUSTERS_PER_COLUMN`` clusters per column; more make more gene batches, never more
    memory. The request: 512 MiB, a chunk (``CHUNK_BYTES_PER_ENTRY`` per stored value), the labels, the budget.
    """
    budget = min(SUMS_BUDGET, N_SLOTS * 8 * info["n_vars"] * CLUSTERS_PER_COLUMN * n_columns)
    chunk = min(info["stored_entries"], ENTRIES_PER_CHUNK)
    labels = 8 * n_obs * (n_columns + 2)
    return {
        "sums_budget": budget,
        "parts": plan_parts(info, n_obs=n_obs, task_entries=task_entries),
        "memory_bytes": (512 << 20) + CHUNK_BYTES_PER_ENTRY * chunk + labels + budget,
    }


def _row_chunks(info: dict[str, Any], rows: tuple[int, int], n_obs: int) -> Iterator[tuple[int, int]]:
    per_row = max(1.0, info["stored_entries"] / max(n_obs, 1))
    step = max(1, int(info.get("chunk_entries", ENTRIES_PER_CHUNK) // per_row))
    for start in range(rows[0], rows[1], step):
        yield start, min(start + step, rows[1])


def _gene_chunks(indptr: np.ndarray, genes: tuple[int, int], limit: int) -> Iterator[tuple[int, int]]:
    """Gene ranges of at most ``limit`` stored values (at least one gene each)."""
    start = genes[0]
    while start < genes[1]:
        stop = int(np.searchsorted(indptr, indptr[start] + limit, side="right")) - 1
        stop = min(max(stop, start + 1), genes[1])
        yield start, stop
        start = stop


def _bad(path: str | Path, source: str, status: int, where: str) -> UserError:
    return UserError(
        f"input {path}: {source} has {BAD_VALUES[status]} ({where}); marker genes need finite log-normalised values "
        "or counts: fix the matrix, pass --markers_layer, or --markers false"
    )


def _not_counts(path: str | Path, source: str, where: str) -> UserError:
    return UserError(
        f"input {path}: {source} held counts in its first rows but not in {where}; pass --markers_layer with "
        "log-normalised data or counts"
    )


def _csc_totals(node: Any, path: str | Path, source: str, n_obs: int, limit: int) -> np.ndarray:
    """Each cell's total count, streamed over a CSC matrix's stored values (float64: exact for counts)."""
    totals = np.zeros(n_obs)
    n = int(node["indptr"][-1])
    for start in range(0, n, limit):
        data = np.asarray(node["data"][start : start + limit])
        if not is_counts(data):
            raise _not_counts(path, source, f"stored values {start}-{start + len(data)}")
        totals += np.bincount(np.asarray(node["indices"][start : start + limit]), weights=data, minlength=n_obs)
    return totals


def _accumulate_csc(
    root: io.Group, path: str | Path, info: dict[str, Any], layout: Layout, genes: tuple[int, int], acc: np.ndarray
) -> None:
    source = info["source"]
    node = root[source]
    n_obs = len(layout.columns[0].labels)
    limit = int(info.get("chunk_entries", ENTRIES_PER_CHUNK))
    indptr = np.asarray(node["indptr"][:], dtype=np.int64)
    codes = layout.codes(0, n_obs)
    totals = _csc_totals(node, path, source, n_obs, limit) if info["normalise"] else None
    for g0, g1 in _gene_chunks(indptr, genes, limit):
        lo, hi = int(indptr[g0]), int(indptr[g1])
        data = np.asarray(node["data"][lo:hi])
        block = sp.csc_matrix((data, np.asarray(node["indices"][lo:hi]), indptr[g0 : g1 + 1] - lo), shape=(n_obs, g1 - g0))
        if totals is not None:
            block = normalise_counts(block, totals=totals)
        status = accumulate_block(block, codes, genes, acc, offset=g0)
        if status:
            raise _bad(path, source, status, f"genes {g0}-{g1}")


def accumulate(
    path: str | Path, info: dict[str, Any], layout: Layout, *, rows: tuple[int, int], genes: tuple[int, int]
) -> np.ndarray:
    """Exact sums of rows ``rows`` for genes ``genes``; the chunking (``info['chunk_entries']``) changes no bit."""
    acc = layout.new_sums(genes)
    source = info["source"]
    n_obs = len(layout.columns[0].labels)
    with io.open_store(path) as root:
        if info["encoding"] == "csc_matrix":
            if rows != (0, n_obs):
                raise ValueError("a CSC matrix is split by genes, never by rows")
            _accumulate_csc(root, path, info, layout, genes, acc)
            return acc
        for start, stop in _row_chunks(info, rows, n_obs):
            block = read_rows(root, source, path, start, stop)
            if info["normalise"]:
                if not is_counts(block):
                    raise _not_counts(path, source, f"rows {start}-{stop}")
                block = normalise_counts(sp.csr_matrix(block))
            status = accumulate_block(block, layout.codes(start, stop), genes, acc)
            if status:
                raise _bad(path, source, status, f"rows {start}-{stop}")
    return acc


def write_sums(path: str | Path, info: dict[str, Any], columns: Sequence[Column], part: int, out: str | Path) -> None:
    """MARKERS_SUMS: the exact sums of part ``part`` (its rows, its genes) as an ``.npy``, gene batch by gene batch.

    Beside it, ``<out>.json`` names the part and the layout's digest, which MARKERS checks before adding it up.
    """
    layout = Layout(columns)
    r0, r1, g0, g1 = info["parts"][part]
    tmp = atomic_path(out)
    sums = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.int64, shape=(layout.n_clusters, g1 - g0, N_SLOTS))
    for b0, b1 in gene_batches(layout.n_clusters, g1 - g0, info.get("sums_budget", SUMS_BUDGET)):
        sums[:, b0:b1] = accumulate(path, info, layout, rows=(r0, r1), genes=(g0 + b0, g0 + b1))
    sums.flush()
    del sums
    Path(f"{out}.json").write_text(json.dumps({"part": part, "range": [r0, r1, g0, g1], "layout": layout.digest()}))
    tmp.replace(out)


def _part_of(f: str | Path) -> int:
    m = SUMS_NAME.search(Path(f).name)
    if m is None:
        raise ValueError(f"markers sums {f}: not a markers_sums.<part>.npy file")
    return int(m.group(1))


def _read_sums(files: Sequence[str | Path], info: dict[str, Any], layout: Layout, genes: tuple[int, int]) -> np.ndarray:
    """Genes ``genes`` of the parts' sums, added up in part order (in place: no copy of a part in memory)."""
    acc = layout.new_sums(genes)
    for f in sorted(files, key=_part_of):
        _, _, g0, g1 = info["parts"][_part_of(f)]
        lo, hi = max(g0, genes[0]), min(g1, genes[1])
        if lo < hi:
            view = acc[:, lo - genes[0] : hi - genes[0]]
            np.add(view, np.load(f, mmap_mode="r")[:, lo - g0 : hi - g0], out=view)
    return acc


def check_sums(files: Sequence[str | Path], info: dict[str, Any], layout: Layout) -> None:
    """Every part exactly once, each written for its part and for this layout (the same columns, labels, order)."""
    found = sorted(_part_of(f) for f in files)
    if found != list(range(len(info["parts"]))):
        raise ValueError(f"markers sums: expected parts 0-{len(info['parts']) - 1}, got {found}")
    digest = layout.digest()
    for f in files:
        part = info["parts"][_part_of(f)]
        meta = json.loads(Path(f"{f}.json").read_text())
        shape = np.load(f, mmap_mode="r").shape
        if meta["range"] != part or meta["layout"] != digest or shape != (layout.n_clusters, part[3] - part[2], N_SLOTS):
            raise ValueError(f"markers sums {f}: written for part {meta['range']} of other columns or labels, not {part}")


def compute(
    path: str | Path, info: dict[str, Any], columns: Sequence[Column], sums: Sequence[str | Path] = ()
) -> tuple[Layout, Rankings]:
    """Every column's rankings: from the parts' ``sums`` files (each ``.npy`` with its ``.json``), or (none) a pass."""
    layout = Layout(columns)
    n_obs = len(columns[0].labels)
    sums = [f for f in sums if not str(f).endswith(".json")]
    if sums:
        check_sums(sums, info, layout)
    results = []
    for genes in gene_batches(layout.n_clusters, info["n_vars"], info.get("sums_budget", SUMS_BUDGET)):
        if sums:
            acc = _read_sums(sums, info, layout, genes)
        else:
            acc = accumulate(path, info, layout, rows=(0, n_obs), genes=genes)
        results.append(layout.rankings(acc, log_base=info["log_base"]))
    if len(results) == 1:
        return layout, results[0]
    return layout, {name: _join_genes([r[name] for r in results]) for name in results[0]}


def _join_genes(parts: list[tuple[Ranking, Ranking | None]]) -> tuple[Ranking, Ranking | None]:
    """Rankings of gene batches side by side; BH needs every gene, so it is applied again across batches."""

    def join(rs: list[Ranking]) -> Ranking:
        cat = {
            f: np.concatenate([getattr(r, f) for r in rs], axis=1)
            for f in ("scores", "pvals", "logfoldchanges", "pts", "pts_rest", "means")
        }
        adj = np.stack([benjamini_hochberg(p) for p in cat["pvals"]]) if len(rs[0].groups) else cat["pvals"]
        return Ranking(
            rs[0].groups, cat["scores"], cat["pvals"], adj, cat["logfoldchanges"], cat["pts"], cat["pts_rest"], cat["means"]
        )

    within = [p[1] for p in parts]
    return join([p[0] for p in parts]), (join(within) if within[0] is not None else None)  # type: ignore[arg-type]
