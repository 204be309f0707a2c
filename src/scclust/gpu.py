"""GPU backend (rapids-singlecell) with a CPU fallback that reproduces the CPU run exactly.

The decision per clustering is:

1. ``--use_gpu`` off, fewer than ``--n_cell_cpu`` cells, no usable GPU, a rapids-singlecell release scclust has not
   read (:mod:`scclust.rsc`), or a clustering that release cannot reproduce (Louvain, which cuGraph does not seed, and
   some clustering arguments): the CPU path, i.e. :meth:`GraphClusterer.labels` with exactly the CPU arguments (so a
   small data set or sub-cluster gives the same labels on any host).
2. Otherwise one rapids-singlecell call clusters the graph at all the resolutions of a task (:func:`scclust.rsc.gpu_memberships`).
3. A GPU column that over-clusters (see :func:`overclustering`) or a GPU call that raises (e.g. CUDA out of memory)
   is recomputed on the CPU; the reason is kept in the provenance returned by :func:`cluster_with_backend`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from scclust import rsc
from scclust.clustering import ClusterSpec, GraphClusterer, format_resolution, labels_from_membership

log = logging.getLogger(__name__)

_MAX_REASON = 200


@functools.cache
def gpu_available() -> bool:
    """Whether rapids-singlecell and CuPy import and CuPy sees at least one CUDA device.

    Never raises. The answer is cached for the process; ``gpu_available.cache_clear()`` resets it.
    """
    try:
        import cupy
        import rapids_singlecell  # noqa: F401

        return int(cupy.cuda.runtime.getDeviceCount()) > 0
    except Exception:  # ImportError, CUDA driver/runtime errors, broken installs: all mean "no GPU"
        return False


def choose_backend(n_cells: int, *, use_gpu: bool, n_cell_cpu: int, available: bool | None = None) -> tuple[str, str]:
    """Pick the backend for one clustering.

    Parameters
    ----------
    n_cells
        Cells in the graph (the data set or the sub-cluster).
    use_gpu
        ``--use_gpu``.
    n_cell_cpu
        ``--n_cell_cpu``: graphs with fewer cells run on the CPU.
    available
        Whether a GPU backend is usable; ``None`` asks :func:`gpu_available` (only when it matters).

    Returns
    -------
    ``("gpu" | "cpu", reason)`` with a short human-readable reason.

    """
    if not use_gpu:
        return "cpu", "use_gpu is false"
    if n_cells < n_cell_cpu:
        return "cpu", f"{n_cells} cells < n_cell_cpu {n_cell_cpu}"
    if not (gpu_available() if available is None else available):
        return "cpu", "no GPU or rapids-singlecell"
    return "gpu", "GPU"


def overclustering(
    labels: pd.Categorical, resolution: float, *, max_cluster_factor: float, max_singleton_fraction: float
) -> str | None:
    """Detect the degenerate "one cluster per cell" GPU result.

    A result over-clusters when it has more than ``max_cluster_factor * resolution`` clusters **and** its
    sizes are degenerate: the fraction of clusters that are singletons (size 1) exceeds
    ``max_singleton_fraction``. Both comparisons are strict.

    Parameters
    ----------
    labels
        Cluster labels per cell.
    resolution
        Resolution the labels were computed at.
    max_cluster_factor
        ``--max_cluster_factor``.
    max_singleton_fraction
        ``--max_singleton_fraction``.

    Returns
    -------
    ``None`` when the result is acceptable, else a one-line reason.

    """
    sizes = pd.Series(np.asarray(labels)).value_counts()
    n_clusters = len(sizes)
    limit = max_cluster_factor * resolution
    if n_clusters == 0 or not n_clusters > limit:
        return None
    singletons = float((sizes == 1).sum()) / n_clusters
    if not singletons > max_singleton_fraction:
        return None
    return (
        f"{n_clusters} clusters > {max_cluster_factor:g} x resolution {format_resolution(resolution)} "
        f"and {singletons:.0%} singletons (> {max_singleton_fraction:.0%})"
    )


def _one_line(text: str, limit: int = _MAX_REASON) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def cluster_with_backend(
    clusterer: GraphClusterer,
    specs: Sequence[ClusterSpec],
    *,
    use_gpu: bool,
    n_cell_cpu: int,
    max_cluster_factor: float,
    max_singleton_fraction: float,
    available: bool | None = None,
) -> list[tuple[pd.Categorical, dict[str, Any]]]:
    """Cluster one graph at each of ``specs`` on the chosen backend, falling back to the CPU where a GPU result is unusable.

    The GPU clusters the specs that differ only in their resolution in one call, which builds the graph once and
    gives every resolution the same seed, so a column's labels do not depend on which resolutions share its call.

    Parameters
    ----------
    clusterer
        The graph (CPU path: ``clusterer.labels(spec)``, exactly the CPU arguments).
    specs
        The clusterings.
    use_gpu, n_cell_cpu
        Backend choice, see :func:`choose_backend`.
    max_cluster_factor, max_singleton_fraction
        Over-clustering guard, see :func:`overclustering`.
    available
        Whether a GPU backend is usable; ``None`` asks :func:`gpu_available`.

    Returns
    -------
    Per spec, its labels and provenance ``{'backend': 'cpu' | 'gpu', 'backend_reason': str, 'requested_gpu': bool}``,
    plus ``'gpu_call'`` (the keywords rapids-singlecell got) where a GPU call was made for it and ``'fallback'`` (why
    its GPU result was replaced by the CPU one) where that happened.

    """
    backend, reason = choose_backend(clusterer.n_obs, use_gpu=use_gpu, n_cell_cpu=n_cell_cpu, available=available)
    release = None
    if backend == "gpu":
        release, reason = rsc.installed_release()
    out: list[tuple[pd.Categorical, dict[str, Any]] | None] = [None] * len(specs)
    batches: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        why = reason if release is None else release.unsupported(spec)
        if why is None:
            batches.setdefault(_batch_key(spec), []).append(i)
        else:
            # no key holds None: anndata 0.11 cannot read a None in the merged store
            out[i] = clusterer.labels(spec), {"backend": "cpu", "backend_reason": why, "requested_gpu": bool(use_gpu)}
    for batch in batches.values() if release is not None else ():
        results = _gpu_batch(clusterer, [specs[i] for i in batch], release, reason, max_cluster_factor, max_singleton_fraction)
        for i, result in zip(batch, results, strict=True):
            out[i] = result
    return [result for result in out if result is not None]


def _batch_key(spec: ClusterSpec) -> str:
    return repr({**spec.params(), "resolution": None})


def _gpu_batch(
    clusterer: GraphClusterer,
    specs: list[ClusterSpec],
    release: rsc.RscRelease,
    reason: str,
    max_cluster_factor: float,
    max_singleton_fraction: float,
) -> list[tuple[pd.Categorical, dict[str, Any]]]:
    call = release.leiden_call(specs)
    info: dict[str, Any] = {"backend": "gpu", "backend_reason": reason, "requested_gpu": True, "gpu_call": call}
    try:
        memberships = rsc.gpu_memberships(clusterer.adjacency, call, release)
        labels = []
        for spec in specs:
            membership = memberships[float(spec.resolution)]
            if membership.shape != (clusterer.n_obs,):
                raise ValueError(f"GPU returned {membership.shape} labels for {clusterer.n_obs} cells")
            labels.append(labels_from_membership(membership))
    except Exception as err:
        error = _one_line(f"GPU error: {type(err).__name__}: {err}")
        return [_on_cpu(clusterer, spec, info, error) for spec in specs]
    out = []
    for spec, column in zip(specs, labels, strict=True):
        fallback = overclustering(
            column, spec.resolution, max_cluster_factor=max_cluster_factor, max_singleton_fraction=max_singleton_fraction
        )
        out.append((column, dict(info)) if fallback is None else _on_cpu(clusterer, spec, info, fallback))
    return out


def _on_cpu(
    clusterer: GraphClusterer, spec: ClusterSpec, info: dict[str, Any], fallback: str
) -> tuple[pd.Categorical, dict[str, Any]]:
    log.warning("%s %s: recomputing on CPU (%s)", spec.algorithm, format_resolution(spec.resolution), fallback)
    return clusterer.labels(spec), {**info, "backend": "cpu", "fallback": fallback}


def gpu_versions() -> dict[str, str]:
    """Versions of rapids_singlecell, cupy and cugraph that import (``{}`` when none does); never raises."""
    out: dict[str, str] = {}
    for name in ("rapids_singlecell", "cupy", "cugraph"):
        try:
            module = __import__(name)
            out[name] = str(module.__version__)
        except Exception:
            continue
    return out
