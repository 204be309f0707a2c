"""GPU backend (rapids-singlecell) with a CPU fallback that reproduces the CPU run exactly.

The decision per clustering is:

1. ``--use_gpu`` off, fewer than ``--n_cell_cpu`` cells, no usable GPU/rapids-singlecell, or clustering
   arguments the GPU cannot honour: the CPU path, i.e. :meth:`GraphClusterer.labels` with exactly the CPU
   arguments (so a small data set or sub-cluster gives the same labels on any host).
2. Otherwise rapids-singlecell (cuGraph), called with an explicit ``random_state`` and a float64 graph.
3. A GPU result that over-clusters (see :func:`overclustering`) or a GPU call that raises (e.g. CUDA out of
   memory) is recomputed on the CPU; the reason is kept in the provenance returned by
   :func:`cluster_with_backend`.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scclust.clustering import ClusterSpec, GraphClusterer, format_resolution, labels_from_membership

log = logging.getLogger(__name__)

GPU_KEY = "scclust_gpu"
_MAX_REASON = 200
# clustering_args whose meaning cuGraph reproduces; values are the ones it can honour (None: any value)
_GPU_EXTRAS: dict[str, tuple[Any, ...] | None] = {
    "use_weights": None,
    # cuGraph's graph is undirected; the kNN connectivities are symmetric, so the direction carries nothing
    "directed": None,
    "objective_function": ("modularity",),
    "partition_type": (None, "RBConfigurationVertexPartition"),
}


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


def gpu_unsupported(spec: ClusterSpec) -> str | None:
    """Why rapids-singlecell cannot reproduce ``spec``'s clustering arguments, or ``None`` when it can."""
    bad = []
    for key, value in spec.extra.items():
        allowed = _GPU_EXTRAS.get(key, ())
        if allowed is not None and value not in allowed:
            bad.append(key)
    if not bad:
        return None
    return f"clustering_args {', '.join(sorted(bad))} not supported by rapids-singlecell"


def _parameters(func: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return set()


def gpu_membership(adjacency: sp.csr_matrix, spec: ClusterSpec) -> np.ndarray:
    """Cluster ``adjacency`` on the GPU with rapids-singlecell; cluster ids (0..k-1) per cell.

    The graph is stored as float64 in ``obsp['connectivities']`` of a bare AnnData (with
    ``uns['neighbors']`` pointing at it) and passed as ``dtype=np.float64`` where the installed version
    accepts ``dtype`` (recent versions default to float32). Keywords are chosen from the installed
    function's signature so that old and new rapids-singlecell versions work:

    - ``random_state=spec.seed`` for Leiden, explicitly. Versions that renamed it to ``rng`` still accept
      ``random_state`` (and then pass the integer seed to cuGraph unchanged); a version with ``rng`` only
      gets ``rng=spec.seed``. Louvain gets it only if its signature has it (cuGraph's Louvain is unseeded in
      the versions we know).
    - ``n_iterations``: in rapids/cuGraph this is the *maximum* number of levels, not igraph's exact number
      of iterations, and ``-1`` (until stable) has no equivalent. So ``spec.n_iterations`` is passed to Leiden
      only when it is > 0; otherwise rapids' default applies. Louvain ignores ``n_iterations`` on the CPU
      and is left at rapids' default here too.
    - ``use_weights`` from the clustering arguments (default ``True``).

    Parameters
    ----------
    adjacency
        Square sparse kNN graph.
    spec
        The clustering to run (``algorithm``, ``resolution``, ``seed``, ``n_iterations``, ``extra``).

    Returns
    -------
    Integer membership per cell.

    """
    import anndata as ad
    import rapids_singlecell as rsc

    graph = sp.csr_matrix(adjacency, dtype=np.float64)
    n = graph.shape[0]
    adata = ad.AnnData(obs=pd.DataFrame(index=pd.RangeIndex(n).astype(str)))
    adata.obsp["connectivities"] = graph
    adata.uns["neighbors"] = {"connectivities_key": "connectivities", "params": {}}

    func = rsc.tl.leiden if spec.algorithm == "leiden" else rsc.tl.louvain
    params = _parameters(func)
    kwargs: dict[str, Any] = {
        "resolution": spec.resolution,
        "key_added": GPU_KEY,
        "use_weights": bool(spec.extra.get("use_weights", True)),
    }
    if "random_state" in params or ("rng" in params and hasattr(func, "__wrapped__")):
        kwargs["random_state"] = spec.seed  # a decorated rng-function still takes the legacy keyword
    elif "rng" in params:
        kwargs["rng"] = spec.seed
    elif spec.algorithm == "leiden":
        log.warning("rapids_singlecell.tl.leiden takes no random_state; the GPU result is not seeded")
    if spec.algorithm == "leiden" and spec.n_iterations > 0:
        kwargs["n_iterations"] = spec.n_iterations
    if "dtype" in params:
        kwargs["dtype"] = np.float64
    if params:  # drop what this version does not know (random_state may come through a legacy decorator)
        kwargs = {k: v for k, v in kwargs.items() if k in params or k == "random_state"}
    func(adata, **kwargs)
    return adata.obs[GPU_KEY].to_numpy().astype(np.int64)


def _one_line(text: str, limit: int = _MAX_REASON) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def cluster_with_backend(
    clusterer: GraphClusterer,
    spec: ClusterSpec,
    *,
    use_gpu: bool,
    n_cell_cpu: int,
    max_cluster_factor: float,
    max_singleton_fraction: float,
    gpu_fn: Callable[[sp.csr_matrix, ClusterSpec], np.ndarray] = gpu_membership,
    available: bool | None = None,
) -> tuple[pd.Categorical, dict[str, Any]]:
    """Cluster one graph on the chosen backend, falling back to the CPU where the GPU result is unusable.

    Parameters
    ----------
    clusterer
        The graph (CPU path: ``clusterer.labels(spec)``, exactly the CPU arguments).
    spec
        The clustering.
    use_gpu, n_cell_cpu
        Backend choice, see :func:`choose_backend`.
    max_cluster_factor, max_singleton_fraction
        Over-clustering guard, see :func:`overclustering`.
    gpu_fn
        The GPU call (replaced by a test double in tests); receives a float64 CSR graph and ``spec``.
    available
        Whether a GPU backend is usable; ``None`` asks :func:`gpu_available`.

    Returns
    -------
    The labels and the provenance ``{'backend': 'cpu' | 'gpu', 'backend_reason': str,
    'requested_gpu': bool}``, plus ``'fallback'``: the reason a GPU result was replaced by the CPU one, only
    where that happened.

    """
    backend, reason = choose_backend(clusterer.n_obs, use_gpu=use_gpu, n_cell_cpu=n_cell_cpu, available=available)
    if backend == "gpu":
        unsupported = gpu_unsupported(spec)
        if unsupported is not None:
            backend, reason = "cpu", unsupported
    # no key holds None: anndata 0.11 cannot read a None in the merged store
    info: dict[str, Any] = {"backend": backend, "backend_reason": reason, "requested_gpu": bool(use_gpu)}
    if backend == "cpu":
        return clusterer.labels(spec), info

    try:
        membership = np.asarray(gpu_fn(sp.csr_matrix(clusterer.adjacency, dtype=np.float64), spec))
        if membership.shape != (clusterer.n_obs,):
            raise ValueError(f"GPU returned {membership.shape} labels for {clusterer.n_obs} cells")
        labels = labels_from_membership(membership)
    except Exception as err:
        fallback = _one_line(f"GPU error: {type(err).__name__}: {err}")
    else:
        fallback = overclustering(
            labels,
            spec.resolution,
            max_cluster_factor=max_cluster_factor,
            max_singleton_fraction=max_singleton_fraction,
        )
        if fallback is None:
            return labels, info
    log.warning("%s %s: recomputing on CPU (%s)", spec.algorithm, format_resolution(spec.resolution), fallback)
    info.update(backend="cpu", fallback=fallback)
    return clusterer.labels(spec), info


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
