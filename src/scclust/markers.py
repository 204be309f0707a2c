"""Marker genes of every cluster column from one pass over the expression matrix: scanpy's t-test, exactly.

scanpy's ``rank_genes_groups(method='t-test')`` (pinned 1.11.5) uses, per group and gene, only the cell count, the
mean and the variance (``sum(x * x) / n - mean ** 2``, times ``n / (n - 1)``) and, for ``pts``, the non-zero count;
"rest" is every other cell. So one pass over the rows accumulates, for every cluster of every column at once, the
sum, the sum of squares and the non-zero count of each gene, and "rest" (or a sub-cluster's siblings) is the total
(or the parent's) minus the cluster's.

Exact, order-free sums. Each value ``x`` and its square (computed in the matrix's own dtype, as scanpy does: a float32
square for float32 data) is rounded to a multiple of ``2**-48`` (exact for every float32 above ``2**-25``; below one
float64 ulp of 1 for any other) and added as integer limbs to int64 accumulators. Integer addition is exact and
associative, so the sums do not depend on the chunk size, the number of chunks or tasks, or the order partial sums
are added in: the result is the same bits. Rest sums (total minus cluster) are exact too, with no cancellation.

Memory: ``clusters x genes x 6`` int64 (48 bytes per cluster and gene) for all columns together; above
``budget_bytes`` the genes are split into batches, each a pass over the rows (see :func:`gene_batches`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

FIX_BITS = 48
MAX_VALUE = 2.0**15  # x * 2**48 stays below 2**63, x * x * 2**48 below 2**78 (three 31-bit limbs)
_MASK31 = (1 << 31) - 1
N_SLOTS = 6  # sum (hi, lo), sum of squares (top, mid, lo), non-zero count
BAD_VALUES = {1: "NaN or infinite values", 2: "negative values", 3: f"values of {MAX_VALUE:g} or more"}


@numba.njit(cache=True, nogil=True)
def _accumulate(indptr, indices, data, codes, offset, g0, g1, acc):  # pragma: no cover - compiled
    """Add a CSC block (its gene ``j`` is gene ``offset + j``) to ``acc[cluster, gene - g0, slot]``.

    Gene by gene, so that the accumulators being added to (all clusters of one gene) stay in cache; returns 0, or a
    code of BAD_VALUES.
    """
    scale = 2.0**FIX_BITS
    split = 2.0**62
    for j in range(indptr.shape[0] - 1):
        g = offset + j
        if g < g0 or g >= g1:
            continue
        for k in range(indptr[j], indptr[j + 1]):
            x = data[k]
            if x == 0:
                continue
            if not np.isfinite(x):
                return 1
            if x < 0:
                return 2
            if x >= MAX_VALUE:
                return 3
            r = indices[k]
            sq = x * x  # in the data's dtype, as scanpy squares
            fixed = np.int64(np.rint(np.float64(x) * scale))
            w = np.float64(sq) * scale
            top = np.floor(w / split)
            rest = np.int64(np.rint(w - top * split))
            for c in range(codes.shape[0]):
                a = acc[codes[c, r], g - g0]
                a[0] += fixed >> 31
                a[1] += fixed & _MASK31
                a[2] += np.int64(top)
                a[3] += rest >> 31
                a[4] += rest & _MASK31
                a[5] += 1
    return 0


def accumulate_block(
    block: sp.spmatrix | np.ndarray, codes: np.ndarray, genes: tuple[int, int], acc: np.ndarray, offset: int = 0
) -> int:
    """Add a block of rows (dense, CSR or CSC; its gene ``j`` is gene ``offset + j``) to ``acc`` (genes ``genes``).

    ``codes`` is columns x the block's rows of global cluster indices. Returns 0, or a code of BAD_VALUES.
    """
    csc = sp.csc_matrix(block if sp.issparse(block) else np.asarray(block))
    data = csc.data if csc.data.dtype in (np.float32, np.float64) else csc.data.astype(np.float32)
    return int(
        _accumulate(csc.indptr.astype(np.int64), csc.indices.astype(np.int64), data, codes, offset, genes[0], genes[1], acc)
    )


def normalise_counts(block: sp.csr_matrix | sp.csc_matrix, totals: np.ndarray | None = None) -> sp.spmatrix:
    """``normalize_total(target_sum=1e4)`` then ``log1p`` of a CSR or CSC block of count rows, in scanpy's arithmetic.

    ``totals``: each row's total count, when the block holds only some of the genes (float64 sums of integers are
    exact, so they equal the block's own sums of a whole row).
    """
    dtype = np.dtype(block.dtype if block.dtype in (np.float32, np.float64) else np.float32)
    m = (sp.csc_matrix if block.format == "csc" else sp.csr_matrix)(block, dtype=dtype, copy=True)
    if totals is None:
        totals = np.asarray(m.sum(axis=1, dtype=np.float64)).ravel()
    per_cell = totals.astype(dtype) / dtype.type(1e4)
    rows = m.indices if m.format == "csc" else np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    m.data = np.log1p(m.data / per_cell[rows])
    return m


def gene_batches(n_clusters: int, n_genes: int, budget_bytes: int) -> list[tuple[int, int]]:
    """Gene ranges whose accumulators (``n_clusters x genes x 48`` bytes) fit ``budget_bytes``; one pass each."""
    per_gene = max(1, n_clusters * N_SLOTS * 8)
    width = max(1, min(n_genes, budget_bytes // per_gene))
    return [(g, min(g + width, n_genes)) for g in range(0, n_genes, width)]


def _combine(limbs: np.ndarray) -> np.ndarray:
    """Float64 value of int64 31-bit limbs (most significant first), carries normalised first so it is deterministic."""
    limbs = limbs.copy()
    for i in range(limbs.shape[-1] - 1, 0, -1):
        limbs[..., i - 1] += limbs[..., i] >> 31
        limbs[..., i] &= _MASK31
    value = limbs[..., 0].astype(np.float64)
    for i in range(1, limbs.shape[-1]):
        value = value * 2.0**31 + limbs[..., i].astype(np.float64)
    return value * 2.0**-FIX_BITS


@dataclass
class Moments:
    """Count, mean, variance (ddof 1, scanpy's formula) and non-zero fraction per group (rows) and gene."""

    n: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    pts: np.ndarray

    @classmethod
    def from_sums(cls, n: np.ndarray, acc: np.ndarray) -> Moments:
        """From counts (groups) and exact limb sums (groups x genes x slots)."""
        nn = n.astype(np.float64)[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = _combine(acc[..., 0:2]) / nn
            var = _combine(acc[..., 2:5]) / nn - mean**2
            # scanpy's _get_mean_var: the unbiased correction except for a single cell
            var = np.where(nn != 1, var * (nn / (nn - 1)), var)
            pts = acc[..., 5] / nn
        return cls(n=n, mean=mean, var=var, pts=pts)


def benjamini_hochberg(pvals: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg as statsmodels' ``multipletests(method='fdr_bh')`` (scanpy's call) computes it.

    The same operations in the same order, without importing statsmodels (a second of every MARKERS task).
    """
    order = np.argsort(pvals)
    ranked = pvals[order] / (np.arange(1, len(pvals) + 1) / float(len(pvals)))
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    adjusted[adjusted > 1] = 1
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return out


def select_top_n(scores: np.ndarray, n_top: int) -> np.ndarray:
    """Scanpy's ``_select_top_n``: the same partition and sort, so that ties come out in scanpy's order."""
    partition = np.argpartition(scores, -n_top)[-n_top:]
    return partition[np.argsort(scores[partition])[::-1]]


@dataclass
class Ranking:
    """One test of several groups (scanpy's ``rank_genes_groups`` of one column): all genes, groups as rows."""

    groups: list[str]
    scores: np.ndarray
    pvals: np.ndarray
    pvals_adj: np.ndarray
    logfoldchanges: np.ndarray
    pts: np.ndarray
    pts_rest: np.ndarray
    means: np.ndarray

    def top(self, n_genes: int) -> np.ndarray:
        """Gene indices of each group's top ``n_genes`` by score (groups x n_genes)."""
        n = min(n_genes, self.scores.shape[1])
        return np.stack([select_top_n(s, n) for s in self.scores]) if len(self.groups) else np.empty((0, n), int)


def t_test(group: Moments, rest: Moments, groups: Sequence[str], *, log_base: float | None = None) -> Ranking:
    """Scanpy 1.11.5's t-test of each group against its rest, from moments: Welch, BH, logFC, pts.

    A group or a rest of fewer than two cells has no variance estimate: its scores are 0 and p-values 1 (scanpy
    refuses a column with such a group, which a clustering cannot avoid).
    """
    scores = np.zeros(group.mean.shape)
    pvals = np.ones(group.mean.shape)
    pvals_adj = np.ones(group.mean.shape)
    for i in range(len(groups)):
        if group.n[i] < 2 or rest.n[i] < 2:
            continue
        with np.errstate(invalid="ignore"):
            s, p = stats.ttest_ind_from_stats(
                mean1=group.mean[i],
                std1=np.sqrt(group.var[i]),
                nobs1=group.n[i],
                mean2=rest.mean[i],
                std2=np.sqrt(rest.var[i]),
                nobs2=rest.n[i],
                equal_var=False,
            )
        s[np.isnan(s)] = 0
        p[np.isnan(p)] = 1
        scores[i], pvals[i] = s, p
        pvals_adj[i] = benjamini_hochberg(p)
    expm1 = np.expm1 if log_base is None else (lambda v: np.expm1(v * np.log(log_base)))
    with np.errstate(invalid="ignore", divide="ignore"):
        lfc = np.log2((expm1(group.mean) + 1e-9) / (expm1(rest.mean) + 1e-9))
    return Ranking(list(groups), scores, pvals, pvals_adj, lfc, group.pts, rest.pts, group.mean)


@dataclass
class Column:
    """A cluster column to find markers for; ``parent`` names the column one level up (levels >= 2)."""

    name: str
    labels: pd.Categorical
    level: int = 1
    parent: str | None = None


class Layout:
    """Where each cluster of each column sits in the accumulators (global cluster index = offset + code)."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = list(columns)
        self.offsets: dict[str, int] = {}
        total = 0
        for col in self.columns:
            if (np.asarray(col.labels.codes) < 0).any():
                raise ValueError(f"column {col.name} leaves cells without a cluster")
            self.offsets[col.name] = total
            total += len(col.labels.categories)
        self.n_clusters = total
        self.counts = np.concatenate(
            [np.bincount(c.labels.codes, minlength=len(c.labels.categories)) for c in self.columns]
        ).astype(np.int64)

    def digest(self) -> str:
        """sha256 of the columns' names, categories and labels: which row adds to which accumulator."""
        h = hashlib.sha256()
        for col in self.columns:
            h.update(json.dumps([col.name, [str(c) for c in col.labels.categories]]).encode())
            h.update(np.asarray(col.labels.codes, dtype=np.int64).tobytes())
        return h.hexdigest()

    def codes(self, start: int, stop: int) -> np.ndarray:
        """Global cluster index of rows ``start:stop``, one row per column."""
        return np.stack([np.asarray(c.labels.codes[start:stop], dtype=np.int64) + self.offsets[c.name] for c in self.columns])

    def new_sums(self, genes: tuple[int, int]) -> np.ndarray:
        """Zeroed accumulators for a gene range."""
        return np.zeros((self.n_clusters, genes[1] - genes[0], N_SLOTS), dtype=np.int64)

    def rankings(self, acc: np.ndarray, *, log_base: float | None = None) -> dict[str, tuple[Ranking, Ranking | None]]:
        """Per column: each cluster against the rest, and (levels >= 2) each split cluster against its siblings."""
        by_name = {c.name: c for c in self.columns}
        first = self.columns[0]
        lo = self.offsets[first.name]
        total = acc[lo : lo + len(first.labels.categories)].sum(axis=0)
        n_total = int(self.counts[lo : lo + len(first.labels.categories)].sum())
        out: dict[str, tuple[Ranking, Ranking | None]] = {}
        for col in self.columns:
            k = len(col.labels.categories)
            sl = slice(self.offsets[col.name], self.offsets[col.name] + k)
            present = np.flatnonzero(self.counts[sl] > 0)
            names = [str(col.labels.categories[i]) for i in present]
            n_g, acc_g = self.counts[sl][present], acc[sl][present]
            group = Moments.from_sums(n_g, acc_g)
            rest = Moments.from_sums(n_total - n_g, total[None] - acc_g)
            within = None
            if col.parent is not None and col.parent in by_name:
                within = self._within(col, by_name[col.parent], present, names, acc, log_base)
            out[col.name] = (t_test(group, rest, names, log_base=log_base), within)
        return out

    def _within(
        self, col: Column, parent: Column, present: np.ndarray, names: list[str], acc: np.ndarray, log_base: float | None
    ) -> Ranking | None:
        """Each sub-cluster against the other cells of its parent; clusters whose parent did not split are left out."""
        parent_of = np.zeros(len(col.labels.categories), dtype=np.int64)
        parent_of[col.labels.codes] = parent.labels.codes
        g = self.offsets[col.name] + present
        p = self.offsets[parent.name] + parent_of[present]
        split = self.counts[g] < self.counts[p]
        if not split.any():
            return None
        g, p = g[split], p[split]
        group = Moments.from_sums(self.counts[g], acc[g])
        rest = Moments.from_sums(self.counts[p] - self.counts[g], acc[p] - acc[g])
        return t_test(group, rest, [n for n, s in zip(names, split, strict=True) if s], log_base=log_base)

    def parent_labels(self, col: Column) -> dict[str, str]:
        """The parent cluster of each cluster of a level >= 2 column."""
        parent = next(c for c in self.columns if c.name == col.parent)
        codes = np.zeros(len(col.labels.categories), dtype=np.int64)
        codes[col.labels.codes] = parent.labels.codes
        return {str(c): str(parent.labels.categories[codes[i]]) for i, c in enumerate(col.labels.categories)}
