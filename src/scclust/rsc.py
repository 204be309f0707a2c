"""rapids-singlecell's clustering as each supported release means it: every version-dependent GPU choice is here.

Read from the source of rapids-singlecell-cu12 0.18.1 (the CUDA image's pin, ``rapids_singlecell/tools/_clustering.py``
and ``_utils/_random.py``) and of cuGraph 26.10 (``cugraph/community/leiden.py``, ``louvain.py``);
``tests/test_rsc_contract.py`` checks each point below against those wheels:

- ``tl.leiden(adata, resolution: float | list[float], *, rng, ..., n_iterations=100, use_weights, dtype)`` builds the
  cuGraph graph once and calls ``cugraph.leiden(g, resolution=r, random_state=_seed_from_rng(rng), theta=theta,
  max_iter=n_iterations)`` per resolution, writing ``obs[f"{key_added}_{r}"]`` when given several.
- ``n_iterations`` becomes cuGraph's ``max_level``: the most *levels* of the Leiden hierarchy, after which cuGraph
  returns the last level's partition. igraph's ``n_iterations`` counts full iterations, so no value means the same in
  both; scclust passes rapids' own level cap (its default) and never the user's ``--n_iterations``.
- The decorator ``_accepts_legacy_random_state`` turns a ``random_state`` integer into an ``rng`` that yields that
  integer at every draw: every resolution of a call gets the seed, however resolutions are batched. A seed or
  ``Generator`` passed as ``rng`` draws a new seed per resolution, so batching would change the labels.
- ``tl.louvain`` takes no seed (cuGraph's Louvain has none; repeated runs differ, cuGraph issue 5516). A GPU Louvain
  column would not be reproducible, so Louvain stays on the CPU.

Supporting another release (e.g. one with its own Leiden, where ``n_iterations`` has igraph's meaning) is one entry
of :data:`RELEASES`, chosen by the installed version, plus its reading in the contract test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from packaging.version import InvalidVersion, Version

from scclust.clustering import ClusterSpec

GPU_KEY = "scclust_gpu"
# clustering_args whose meaning cuGraph reproduces; values are the ones it can honour (None: any value)
CUGRAPH_EXTRAS: Mapping[str, tuple[Any, ...] | None] = {
    "use_weights": None,
    # cuGraph's graph is undirected; the kNN connectivities are symmetric, so the direction carries nothing
    "directed": None,
    "objective_function": ("modularity",),
    "partition_type": (None, "RBConfigurationVertexPartition"),
}


@dataclass(frozen=True)
class RscRelease:
    """How scclust calls one rapids-singlecell release series.

    Parameters
    ----------
    series
        ``major.minor`` of the releases this describes.
    level_cap
        What Leiden's ``n_iterations`` gets: cuGraph's most levels, rapids' default.
    seeded
        Algorithms whose GPU result the seed determines; the others run on the CPU.
    """

    series: str
    level_cap: int
    seeded: frozenset[str]

    def unsupported(self, spec: ClusterSpec) -> str | None:
        """Why this release cannot reproduce ``spec`` on the GPU, or ``None`` when it can."""
        if spec.algorithm not in self.seeded:
            return (
                f"rapids-singlecell {self.series} {spec.algorithm} takes no seed (cuGraph issue 5516): "
                "run on the CPU so that the seed determines the labels"
            )
        bad = []
        for key, value in spec.extra.items():
            allowed = CUGRAPH_EXTRAS.get(key, ())  # a keyword not listed is not honoured at all
            if allowed is not None and value not in allowed:
                bad.append(key)
        return f"clustering_args {', '.join(sorted(bad))} not supported by rapids-singlecell" if bad else None

    def leiden_call(self, specs: Sequence[ClusterSpec]) -> dict[str, Any]:
        """The one ``tl.leiden`` call for ``specs`` (equal but for the resolution): function and keywords, JSON-friendly."""
        first = specs[0]
        return {
            "function": "rapids_singlecell.tl.leiden",
            "resolution": list(dict.fromkeys(float(s.resolution) for s in specs)),
            "random_state": int(first.seed),
            "n_iterations": self.level_cap,
            "use_weights": bool(first.extra.get("use_weights", True)),
            "dtype": "float64",
        }

    def obs_key(self, resolution: float, n_resolutions: int) -> str:
        """The obs column ``tl.leiden`` writes for ``resolution`` (rapids' own naming)."""
        return f"{GPU_KEY}_{resolution}" if n_resolutions > 1 else GPU_KEY


RELEASES = {"0.18": RscRelease("0.18", level_cap=100, seeded=frozenset({"leiden"}))}


def release_for(version: str) -> RscRelease | None:
    """The :class:`RscRelease` of rapids-singlecell ``version``, or ``None`` where scclust has not read that series."""
    try:
        major, minor = Version(version).release[:2]
    except (InvalidVersion, ValueError):
        return None
    return RELEASES.get(f"{major}.{minor}")


def installed_release() -> tuple[RscRelease | None, str]:
    """The installed rapids-singlecell's :class:`RscRelease` (``None`` when unsupported) and a one-line reason."""
    import rapids_singlecell

    version = str(getattr(rapids_singlecell, "__version__", "unknown"))
    release = release_for(version)
    if release is None:
        return None, f"rapids-singlecell {version} is not one scclust supports ({', '.join(sorted(RELEASES))})"
    return release, f"GPU (rapids-singlecell {version})"


def gpu_memberships(adjacency: sp.csr_matrix, call: dict[str, Any], release: RscRelease) -> dict[float, np.ndarray]:
    """Run one :meth:`RscRelease.leiden_call` on ``adjacency`` (as float64); integer memberships per resolution."""
    import anndata as ad
    import rapids_singlecell as rsc

    kwargs = {k: v for k, v in call.items() if k != "function"}
    graph = sp.csr_matrix(adjacency, dtype=np.float64)
    adata = ad.AnnData(obs=pd.DataFrame(index=pd.RangeIndex(graph.shape[0]).astype(str)))
    rsc.tl.leiden(adata, adjacency=graph, key_added=GPU_KEY, **kwargs)
    resolutions = kwargs["resolution"]
    return {r: adata.obs[release.obs_key(r, len(resolutions))].to_numpy().astype(np.int64) for r in resolutions}
