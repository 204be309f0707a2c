"""A stand-in for rapids-singlecell 0.18.1 (``tl.leiden``, ``tl.louvain``), with cuGraph replaced by a recording stub.

It has the real signatures and does with its arguments what the real functions do (``rapids_singlecell/tools/
_clustering.py`` and ``_utils/_random.py`` of the wheel): the decorator that turns a legacy ``random_state`` into
``rng``, one seed drawn per resolution, a list of resolutions in one call with ``{key_added}_{resolution}`` columns,
``n_iterations`` handed to cuGraph as ``max_iter`` (Leiden) or ``max_level`` (Louvain), the dtype check.
``tests/test_rsc_contract.py`` checks it against the wheel's source. Options scclust does not use raise
``NotImplementedError``, so that a new use is not tested against behaviour nobody copied.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from natsort import natsorted
from scipy.sparse.csgraph import connected_components
from sklearn.utils import check_random_state

# cuGraph's stand-in: the graph as cuGraph gets it (weights cast to dtype, or all 1), resolution, seed -> membership
Partition = Callable[[sp.csr_matrix, float, "int | None"], np.ndarray]
SEED_BOUND = 2**32


def components(graph: sp.csr_matrix, resolution: float, seed: int | None) -> np.ndarray:
    """A partition that is right for any resolution and seed on a graph of cliques: its connected components."""
    return connected_components(graph)[1]


class LegacyRng:
    """rapids' ``_LegacyRng`` as far as seeds go: the legacy argument and the ``RandomState`` it makes."""

    def __init__(self, arg: Any) -> None:
        self.arg = arg
        self.state = check_random_state(arg)


def accepts_legacy_random_state(random_state_default: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """rapids' ``_accepts_legacy_random_state``: ``random_state=x`` becomes ``rng=LegacyRng(x)``."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if "random_state" in kwargs and "rng" in kwargs:
                raise TypeError("Specify at most one of `rng` and `random_state`.")
            if "random_state" in kwargs:
                kwargs["rng"] = LegacyRng(kwargs.pop("random_state"))
            elif "rng" not in kwargs:
                kwargs["rng"] = LegacyRng(random_state_default)
            return func(*args, **kwargs)

        return wrapper

    return decorator


def as_generator(rng: Any) -> Any:
    """``np.random.default_rng(rng)`` as rapids' leiden calls it first (a ``_LegacyRng`` is a Generator there)."""
    return rng if isinstance(rng, LegacyRng) else np.random.default_rng(rng)


def seed_from_rng(rng: Any) -> int | None:
    """rapids' ``_seed_from_rng``: the seed one cuGraph call gets."""
    if isinstance(rng, LegacyRng):
        if rng.arg is None:
            return None
        if isinstance(rng.arg, int | np.integer):
            return int(rng.arg)
        return int(rng.arg.randint(0, SEED_BOUND))
    return int(np.random.default_rng(rng).integers(0, SEED_BOUND))


def check_dtype(dtype: Any) -> Any:
    """rapids' ``_check_dtype``."""
    if (isinstance(dtype, str) and dtype in ("float32", "float64")) or dtype is np.float32 or dtype is np.float64:
        return dtype
    raise ValueError("dtype must be one of ['float32', 'float64']")


class FakeRsc(types.ModuleType):
    """A ``rapids_singlecell`` module: ``tl.leiden`` and ``tl.louvain`` as in 0.18.1, recording every call.

    Parameters
    ----------
    partition
        What cuGraph returns, see :data:`Partition`; may raise, like a GPU out of memory.
    version
        ``__version__``.
    """

    def __init__(self, partition: Partition = components, version: str = "0.18.1") -> None:
        super().__init__("rapids_singlecell")
        self.__version__ = version
        self.partition = partition
        self.calls: list[dict[str, Any]] = []  # per tl.* call: the arguments the function body got
        self.cugraph_calls: list[dict[str, Any]] = []  # per cuGraph call
        self.tl = types.SimpleNamespace(leiden=_leiden(self), louvain=_louvain(self))

    def cluster(self, adata: Any, adjacency: Any, resolution: Any, key_added: str, cugraph: dict[str, Any]) -> None:
        """The shared body: one cuGraph call per resolution, labels written as rapids writes them."""
        if adjacency is None:
            raise NotImplementedError("the double reads the graph from `adjacency` only")
        dtype = check_dtype(cugraph["dtype"])
        graph = sp.csr_matrix(adjacency, dtype=dtype)
        if not cugraph["use_weights"]:
            graph.data[:] = 1
        resolutions = [resolution] if isinstance(resolution, float | int) else resolution
        seeds = cugraph.pop("rng", None)
        for value in resolutions:
            seed = None if seeds is None else seed_from_rng(seeds)
            self.cugraph_calls.append({"resolution": value, **({} if seeds is None else {"random_state": seed}), **cugraph})
            groups = np.asarray(self.partition(graph, value, seed))
            key = f"{key_added}_{value}" if len(resolutions) > 1 else key_added
            adata.obs[key] = pd.Categorical(values=groups.astype("U"), categories=natsorted(map(str, np.unique(groups))))


def _not_emulated(**options: Any) -> None:
    used = sorted(k for k, v in options.items() if v)
    if used:
        raise NotImplementedError(f"the double does not emulate {', '.join(used)}")


def _leiden(fake: FakeRsc) -> Callable[..., Any]:
    @accepts_legacy_random_state(0)
    def leiden(
        adata,
        resolution=1.0,
        *,
        rng=None,
        theta=1.0,
        restrict_to=None,
        key_added="leiden",
        adjacency=None,
        n_iterations=100,
        use_weights=True,
        neighbors_key=None,
        obsp=None,
        dtype=np.float32,
        use_dask=False,
        copy=False,
    ):
        rng = as_generator(rng)
        fake.calls.append(
            {"function": "leiden", "resolution": resolution, "rng": rng, "theta": theta, "key_added": key_added}
            | {"n_iterations": n_iterations, "use_weights": use_weights, "dtype": dtype}
        )
        _not_emulated(restrict_to=restrict_to, neighbors_key=neighbors_key, obsp=obsp, use_dask=use_dask, copy=copy)
        cugraph = {"rng": rng, "theta": theta, "max_iter": n_iterations, "dtype": dtype, "use_weights": use_weights}
        fake.cluster(adata, adjacency, resolution, key_added, cugraph)

    return leiden


def _louvain(fake: FakeRsc) -> Callable[..., Any]:
    def louvain(
        adata,
        resolution=1.0,
        *,
        restrict_to=None,
        key_added="louvain",
        adjacency=None,
        n_iterations=100,
        threshold=1e-7,
        use_weights=True,
        neighbors_key=None,
        obsp=None,
        dtype=np.float32,
        use_dask=False,
        copy=False,
    ):
        fake.calls.append(
            {"function": "louvain", "resolution": resolution, "key_added": key_added, "n_iterations": n_iterations}
            | {"threshold": threshold, "use_weights": use_weights, "dtype": dtype}
        )
        _not_emulated(restrict_to=restrict_to, neighbors_key=neighbors_key, obsp=obsp, use_dask=use_dask, copy=copy)
        cugraph = {"max_level": n_iterations, "threshold": threshold, "dtype": dtype, "use_weights": use_weights}
        fake.cluster(adata, adjacency, resolution, key_added, cugraph)

    return louvain
