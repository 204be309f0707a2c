"""Memory a CLUSTER task asks for, as a function of the graph it clusters.

Measured (docs/benchmarks.md): a task's peak RSS is the Python start-up with its libraries (~0.2 GB) plus, per
stored entry of the connectivities matrix, the CSR matrix read from disk (8 bytes), igraph's edge structures
(32 bytes), the weights in the matrix's dtype (4 bytes for scanpy's float32) and what igraph's Leiden and Louvain
allocate while they run (a float64 copy of the weights and incidence lists; Louvain copies the graph once more).
``BYTES_PER_ENTRY`` covers the largest of these with a margin, and ``BASE_BYTES`` the start-up and I/O buffers.
Nextflow doubles the request on every retry after a kill for memory, up to ``--max_memory`` (conf/base.config).
"""

from __future__ import annotations

BASE_BYTES = 1 << 30
BYTES_PER_ENTRY = 128


def graph_entries_estimate(n_obs: int, n_neighbors: int) -> int:
    """Stored entries of the kNN graph scanpy will compute: at most ``2 (k - 1)`` per cell after symmetrising."""
    return 2 * n_obs * max(n_neighbors - 1, 1)


def cluster_memory_bytes(n_entries: int) -> int:
    """Memory to request for one CLUSTER task on a graph with ``n_entries`` stored entries (first attempt)."""
    return BASE_BYTES + BYTES_PER_ENTRY * n_entries
