"""Leiden and Louvain on a kNN graph, label-for-label identical to scanpy's calls, with the graph built once.

The reference calls (what a user would type) are::

    sc.tl.leiden(adata, resolution=r, flavor="igraph", n_iterations=n, random_state=seed, neighbors_key=key)
    sc.tl.leiden(adata, resolution=r, flavor="leidenalg", n_iterations=n, random_state=seed, neighbors_key=key)

and, for Louvain (scanpy's own ``flavor="igraph"`` ignores the resolution), igraph's multilevel algorithm on the
graph scanpy builds, with igraph's RNG seeded the way scanpy seeds it::

    g = scanpy._utils.get_igraph_from_adjacency(adjacency, directed=False)
    with scanpy._utils.random.set_igraph_random_state(seed):
        g.community_multilevel(weights="weight", resolution=r)
"""

from __future__ import annotations

import functools
import itertools
import math
import random
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from natsort import natsorted

from scclust.errors import UserError

if TYPE_CHECKING:
    import igraph as ig

ALGORITHMS = ("leiden", "louvain")
FLAVORS = {"leiden": ("igraph", "leidenalg"), "louvain": ("igraph",)}
# Extra keywords accepted per (algorithm, flavor); anything else is a typo we reject before running.
EXTRA_ARGS: dict[tuple[str, str], frozenset[str]] = {
    ("leiden", "igraph"): frozenset({"beta", "objective_function", "use_weights"}),
    ("leiden", "leidenalg"): frozenset({"partition_type", "use_weights", "directed", "max_comm_size"}),
    ("louvain", "igraph"): frozenset({"use_weights"}),
}

# leidenalg partition types that take the resolution_parameter every scclust call (and scanpy's) passes
PARTITION_TYPES = ("RBConfigurationVertexPartition", "RBERVertexPartition", "CPMVertexPartition")
SEED_MAX = 2**32 - 1  # numpy's RandomState, which seeds igraph (scanpy's way), takes 0 .. 2**32 - 1


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return _is_number(value) and float(value).is_integer()


# Per keyword: (what the clustering call accepts, check, a valid value). Checked when the config is read, so a
# wrong value stops the run before any task instead of failing inside igraph or leidenalg.
EXTRA_RULES: dict[str, tuple[str, Callable[[Any], bool], Any]] = {
    "beta": ("a number > 0", lambda v: _is_number(v) and v > 0, 0.01),
    "objective_function": (
        "modularity or CPM",
        lambda v: isinstance(v, str) and v.lower() in {"modularity", "cpm"},
        "modularity",
    ),
    "use_weights": ("true or false", lambda v: isinstance(v, bool), True),
    "directed": ("true or false", lambda v: isinstance(v, bool), False),
    "partition_type": (f"one of {', '.join(PARTITION_TYPES)}", lambda v: v in PARTITION_TYPES, PARTITION_TYPES[0]),
    "max_comm_size": ("an integer >= 0 (0: no limit)", lambda v: _is_int(v) and v >= 0, 100),
}


def check_extra(key: str, value: Any, where: str, example: Callable[[str, Any], str]) -> Any:
    """Check one clustering keyword's value by the rules of the call it goes to.

    Parameters
    ----------
    key, value
        The keyword and its value as the user gave it (parsed JSON/YAML).
    where
        The parameter it came from, for the message (``--clustering_args``, ``--hierarchy level 2``).
    example
        Spells a valid setting of ``key`` in that parameter's syntax.

    Returns
    -------
    The value (integers given as ``5.0`` become ``5``).
    """
    rule, ok, valid = EXTRA_RULES[key]
    if not ok(value):
        raise UserError(f"{where} {key} must be {rule}, got {value!r}; pass e.g. {example(key, valid)}")
    return int(value) if key == "max_comm_size" else value


@dataclass(frozen=True)
class ClusterSpec:
    """Everything that determines one clustering of one graph.

    Parameters
    ----------
    algorithm
        ``leiden`` or ``louvain``.
    resolution
        Resolution parameter (> 0).
    flavor
        Implementation: ``igraph`` (leiden, louvain) or ``leidenalg`` (leiden).
    n_iterations
        Leiden iterations; ``-1`` runs until the partition is stable. Ignored by Louvain.
    seed
        Random seed.
    extra
        Further keywords for the clustering call (see :data:`EXTRA_ARGS`).
    """

    algorithm: str
    resolution: float
    flavor: str = "igraph"
    n_iterations: int = 2
    seed: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise UserError(f"--algorithm {self.algorithm!r} is not supported; use one of: {', '.join(ALGORITHMS)}")
        if self.flavor not in FLAVORS[self.algorithm]:
            raise UserError(
                f"--flavor {self.flavor!r} is not available for {self.algorithm}; "
                f"use one of: {', '.join(FLAVORS[self.algorithm])}"
            )
        if not np.isfinite(self.resolution) or self.resolution <= 0:
            raise UserError(f"resolution {self.resolution!r} must be a positive number; fix --resolutions")
        unknown = set(self.extra) - EXTRA_ARGS[(self.algorithm, self.flavor)]
        if unknown:
            allowed = ", ".join(sorted(EXTRA_ARGS[(self.algorithm, self.flavor)]))
            raise UserError(
                f"--clustering_args key(s) {', '.join(sorted(unknown))} not accepted by {self.algorithm} "
                f"(flavor {self.flavor}); allowed: {allowed}"
            )

    @property
    def directed(self) -> bool:
        """Whether scanpy would build a directed graph for this call."""
        if self.algorithm == "leiden" and self.flavor == "leidenalg":
            return bool(self.extra.get("directed", True))
        return False

    def params(self) -> dict[str, Any]:
        """The arguments as a JSON-friendly dict, for provenance."""
        out: dict[str, Any] = {
            "algorithm": self.algorithm,
            "flavor": self.flavor,
            "resolution": self.resolution,
            "seed": self.seed,
            "random_state": self.seed,
        }
        if self.algorithm == "leiden":
            out["n_iterations"] = self.n_iterations
        out["clustering_args"] = dict(self.extra)
        return out


class _IgraphRNG:
    """The random numbers scanpy's ``set_igraph_random_state`` gives igraph, without a Python call per number.

    scanpy hands igraph an object whose ``getrandbits(k)`` is ``RandomState(seed).tomaxint() & (2**k - 1)`` and
    whose ``random()`` and ``gauss(mu, sigma)`` are ``RandomState.random()`` and ``.normal(mu, sigma)``.
    python-igraph only ever calls ``getrandbits(32)``, ``random()`` and ``gauss(0, 1)`` (``randint`` only when
    ``getrandbits`` is missing), and each ``tomaxint()`` or ``random()`` consumes exactly two 32-bit words of the
    same MT19937 stream. So the stream is drawn in blocks with numpy, both readings of every word pair are
    precomputed, and igraph gets C-level callables: ``next`` on a chain of per-block ``map`` objects whose two
    readings share one position counter per block. Same numbers as scanpy's object (tested draw for draw).
    """

    BLOCK = 1 << 16

    def __init__(self, seed: int) -> None:
        self._bitgen = np.random.MT19937()
        self._bitgen.state = np.random.RandomState(seed).get_state(legacy=False)
        self._newest = -1  # number of the newest block; only it can have unread positions
        self._block: tuple[Iterator[int], Iterator[float]] = (iter(()), iter(()))
        # getrandbits(32) becomes next(chain, 32): the argument is the unused default, igraph always passes 32
        self.getrandbits = functools.partial(next, itertools.chain.from_iterable(self._readings(0)))
        self.random = functools.partial(next, itertools.chain.from_iterable(self._readings(1)))
        self._gauss_next: float | None = None

    def _readings(self, which: int) -> Iterator[Iterator[Any]]:
        """Per block, one reading (0: ``tomaxint() & 0xFFFFFFFF``, 1: ``random()``) of its word pairs.

        A reading asks for a block when the one it had is used up: if that was the newest, a new one is drawn,
        else the other reading has drawn it already and this one joins it at the shared position.
        """
        had = -1
        while True:
            if had == self._newest:
                self._draw_block()
            had = self._newest
            yield self._block[which]

    def _draw_block(self) -> None:
        words = self._bitgen.random_raw(2 * self.BLOCK)
        hi, lo = words[0::2], words[1::2]
        maxint = ((hi << np.uint64(32)) | lo) >> np.uint64(1)  # RandomState.tomaxint()
        uniform = ((hi >> np.uint64(5)) * 67108864.0 + (lo >> np.uint64(6))) / 9007199254740992.0  # .random()
        position = iter(range(self.BLOCK))
        bits32 = (maxint & np.uint64(0xFFFFFFFF)).tolist()
        self._block = (map(bits32.__getitem__, position), map(uniform.tolist().__getitem__, position))
        self._newest += 1

    def gauss(self, mu: float, sigma: float) -> float:
        """``RandomState.normal(mu, sigma)``: numpy's legacy polar method, which keeps its second value."""
        if self._gauss_next is not None:
            value, self._gauss_next = self._gauss_next, None
            return mu + sigma * value
        while True:
            x1, x2 = 2.0 * self.random() - 1.0, 2.0 * self.random() - 1.0
            r2 = x1 * x1 + x2 * x2
            if 0.0 < r2 < 1.0:
                break
        f = math.sqrt(-2.0 * math.log(r2) / r2)
        self._gauss_next = f * x1
        return mu + sigma * f * x2

    def randint(self, a: int, b: int) -> int:
        """Required by igraph's interface but unused: it calls ``getrandbits`` whenever that exists."""
        raise NotImplementedError("scclust's igraph RNG serves getrandbits(32), random() and gauss() only")


def import_igraph() -> Any:
    """Import igraph without the ~0.7 s of ``matplotlib.pyplot`` it loads for plotting, which we never use.

    igraph falls back to a stub when ``import matplotlib`` fails; a ``None`` entry in ``sys.modules`` makes it
    fail for this one import only. Where matplotlib is already loaded (scanpy imports it) nothing changes.
    """
    if "igraph" in sys.modules or "matplotlib" in sys.modules:
        import igraph

        return igraph
    sys.modules["matplotlib"] = None  # type: ignore[assignment]
    try:
        import igraph
    finally:
        del sys.modules["matplotlib"]
    return igraph


@contextmanager
def igraph_seed(seed: int) -> Iterator[None]:
    """Seed igraph's RNG for the duration of the block, then restore Python's ``random``."""
    ig = import_igraph()
    ig.set_random_number_generator(_IgraphRNG(seed))
    try:
        yield
    finally:
        ig.set_random_number_generator(random)


# cells per slice of the edge stream: large enough that the per-slice numpy calls cost nothing, small enough
# that its Python ints (~36 bytes per entry) stay a few MB
_EDGE_SLICE_ROWS = 8192


def igraph_from_adjacency(adjacency: sp.spmatrix | sp.sparray, *, directed: bool) -> tuple[ig.Graph, np.ndarray]:
    """Build the igraph graph scanpy builds (same edges, same order, same weights), but without Python loops.

    Every stored non-zero ``(i, j)`` becomes an edge, so an undirected graph from a symmetric matrix holds each
    pair twice, exactly as in scanpy.

    Returns
    -------
    The graph and its edge weights (in edge order; float32 when the matrix is, as scanpy's graphs are: igraph
    reads them as the same doubles). The weights are not stored as igraph's ``weight`` edge attribute: that is a
    Python list of floats, ~32 bytes per edge where the array takes 4 or 8, and igraph's clustering calls take
    the array as well.
    """
    csr = sp.csr_matrix(adjacency)
    keep = csr.data != 0
    g = import_igraph().Graph(n=csr.shape[0], directed=directed)
    # python-igraph's stable ABI reads an edge list item by item, and pairs of Python ints go twice as fast as
    # the rows of an (m, 2) numpy array; streamed by slices of cells, no full copy of the edges exists here
    g.add_edges(itertools.chain.from_iterable(_edge_slices(csr, keep)))
    weights = csr.data[keep]
    if not csr.has_canonical_format:  # duplicates are summed by fancy indexing, as in scanpy
        rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))[keep]
        weights = np.asarray(csr[rows, csr.indices[keep]]).ravel()
    return g, weights if np.issubdtype(weights.dtype, np.floating) else weights.astype(np.float64)


def _edge_slices(csr: sp.csr_matrix, keep: np.ndarray) -> Iterator[Iterator[tuple[int, int]]]:
    """The kept entries of ``csr`` as (row, column) pairs of Python ints, in storage order, a slice at a time."""
    indptr, n = csr.indptr, csr.shape[0]
    for start in range(0, n, _EDGE_SLICE_ROWS):
        stop = min(n, start + _EDGE_SLICE_ROWS)
        lo, hi = indptr[start], indptr[stop]
        rows = np.repeat(np.arange(start, stop), np.diff(indptr[start : stop + 1]))
        cols, kept = csr.indices[lo:hi], keep[lo:hi]
        yield zip(rows[kept].tolist(), cols[kept].tolist(), strict=True)


class GraphClusterer:
    """Clusters one graph many times, building each igraph representation only once."""

    def __init__(self, adjacency: sp.spmatrix | sp.sparray) -> None:
        self.adjacency = sp.csr_matrix(adjacency)
        if self.adjacency.shape[0] != self.adjacency.shape[1]:
            raise UserError(f"the kNN graph is not square ({self.adjacency.shape}); recompute it with --recompute_neighbors")
        self._graphs: dict[bool, tuple[ig.Graph, np.ndarray]] = {}

    @property
    def n_obs(self) -> int:
        """Number of vertices (cells)."""
        return int(self.adjacency.shape[0])

    def graph(self, directed: bool) -> tuple[ig.Graph, np.ndarray]:
        """The igraph graph and its edge weights, built on first use."""
        if directed not in self._graphs:
            self._graphs[directed] = igraph_from_adjacency(self.adjacency, directed=directed)
        return self._graphs[directed]

    def membership(self, spec: ClusterSpec) -> np.ndarray:
        """Cluster ids (0..k-1) per cell for one spec."""
        if self.n_obs == 0:
            return np.zeros(0, dtype=np.int64)
        g, edge_weights = self.graph(spec.directed)
        weights = edge_weights if spec.extra.get("use_weights", True) else None
        if spec.algorithm == "louvain":
            with igraph_seed(spec.seed):
                part = g.community_multilevel(weights=weights, resolution=spec.resolution)
        elif spec.flavor == "leidenalg":
            import leidenalg

            partition_type = _leidenalg_partition(spec.extra.get("partition_type"))
            kwargs: dict[str, Any] = {"n_iterations": spec.n_iterations, "seed": spec.seed}
            if "max_comm_size" in spec.extra:
                kwargs["max_comm_size"] = spec.extra["max_comm_size"]
            if weights is not None:
                kwargs["weights"] = weights
            kwargs["resolution_parameter"] = spec.resolution
            part = leidenalg.find_partition(g, partition_type, **kwargs)
        else:
            kwargs = {
                "objective_function": spec.extra.get("objective_function", "modularity"),
                "resolution": spec.resolution,
                "n_iterations": spec.n_iterations,
                "weights": weights,
            }
            if "beta" in spec.extra:
                kwargs["beta"] = spec.extra["beta"]
            with igraph_seed(spec.seed):
                part = g.community_leiden(**kwargs)
        return np.asarray(part.membership, dtype=np.int64)

    def labels(self, spec: ClusterSpec) -> pd.Categorical:
        """Cluster labels as scanpy writes them: strings, categories in natural numeric order."""
        return labels_from_membership(self.membership(spec))


def _leidenalg_partition(name: str | None) -> Any:
    import leidenalg

    return getattr(leidenalg, name or PARTITION_TYPES[0])  # the name was checked by check_extra


def labels_from_membership(membership: np.ndarray) -> pd.Categorical:
    """Turn integer memberships into scanpy-style categorical string labels."""
    groups = np.asarray(membership)
    return pd.Categorical(values=groups.astype("U"), categories=natsorted(map(str, np.unique(groups))))


def format_resolution(value: float | str) -> str:
    """The one naming rule for resolutions: Python's shortest decimal of the float (``1`` and ``1.0`` -> ``1.0``)."""
    return repr(float(value))


def column_name(algorithm: str, resolution: float | str, level: int) -> str:
    """Column name ``{algorithm}_{resolution}_{level}``."""
    return f"{algorithm}_{format_resolution(resolution)}_{level}"


def parse_resolutions(text: str | float | Sequence[Any]) -> list[float]:
    """Parse ``--resolutions`` (comma list, number or list) into positive floats, rejecting duplicates."""
    items = [str(x) for x in text] if isinstance(text, list | tuple) else str(text).split(",")
    out: list[float] = []
    for item in (x.strip() for x in items):
        try:
            value = float(item)
        except ValueError:
            raise UserError(f"--resolutions: {item!r} is not a number; pass a comma list such as 0.2,0.5,1.0") from None
        if not np.isfinite(value) or value <= 0:
            raise UserError(f"--resolutions: {item!r} must be a positive number; pass values > 0 such as 0.5")
        if value in out:
            raise UserError(
                f"--resolutions: {item!r} repeats resolution {format_resolution(value)} and would write the same "
                "column twice; remove the duplicate"
            )
        out.append(value)
    if not out:
        raise UserError("--resolutions is empty; pass a comma list such as 0.2,0.5,1.0")
    return out


def parse_algorithms(text: str | Sequence[str]) -> list[str]:
    """Parse ``--algorithm`` (``leiden``, ``louvain`` or a comma list of both)."""
    items = list(text) if isinstance(text, list | tuple) else str(text).split(",")
    out: list[str] = []
    for item in (x.strip().lower() for x in items):
        if item not in ALGORITHMS:
            raise UserError(f"--algorithm {item!r} is not supported; use leiden, louvain or leiden,louvain")
        if item in out:
            raise UserError(f"--algorithm lists {item!r} twice; list each algorithm once")
        out.append(item)
    return out
