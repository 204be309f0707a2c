"""GPU backend: selection, over-clustering guard and CPU fallback (test doubles), plus the real GPU path."""

from __future__ import annotations

import functools
import sys
import types
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from scclust import gpu
from scclust.clustering import ClusterSpec, GraphClusterer, labels_from_membership


@pytest.fixture(scope="module")
def adjacency() -> sp.csr_matrix:
    return sp.csr_matrix(sc.datasets.pbmc68k_reduced().obsp["connectivities"])


@pytest.fixture
def clusterer(adjacency: sp.csr_matrix) -> GraphClusterer:
    return GraphClusterer(adjacency)


def run(clusterer: GraphClusterer, spec: ClusterSpec, gpu_fn: Any, **kwargs: Any) -> tuple[pd.Categorical, dict]:
    args: dict[str, Any] = {
        "use_gpu": True,
        "n_cell_cpu": 0,
        "max_cluster_factor": 50.0,
        "max_singleton_fraction": 0.5,
        "available": True,
        **kwargs,
    }
    return gpu.cluster_with_backend(clusterer, spec, gpu_fn=gpu_fn, **args)


class Double:
    """Stands in for the GPU call: records its arguments and returns (or raises) what it is told."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.calls: list[tuple[sp.csr_matrix, ClusterSpec]] = []

    def __call__(self, adjacency: sp.csr_matrix, spec: ClusterSpec) -> np.ndarray:
        self.calls.append((adjacency, spec))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result(adjacency.shape[0]) if callable(self.result) else self.result


def labels_of(sizes: list[int]) -> pd.Categorical:
    return labels_from_membership(np.repeat(np.arange(len(sizes)), sizes))


# --- backend selection ----------------------------------------------------------------------------


def test_choose_backend_branches() -> None:
    assert gpu.choose_backend(10**6, use_gpu=False, n_cell_cpu=0, available=True) == (
        "cpu",
        "use_gpu is false",
    )
    assert gpu.choose_backend(10**6, use_gpu=True, n_cell_cpu=0, available=False) == (
        "cpu",
        "no GPU or rapids-singlecell",
    )
    assert gpu.choose_backend(512, use_gpu=True, n_cell_cpu=100_000, available=True) == (
        "cpu",
        "512 cells < n_cell_cpu 100000",
    )
    assert gpu.choose_backend(100_000, use_gpu=True, n_cell_cpu=100_000, available=True) == ("gpu", "GPU")
    assert gpu.choose_backend(100_001, use_gpu=True, n_cell_cpu=100_000, available=True)[0] == "gpu"


def test_choose_backend_asks_gpu_available_only_when_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[bool] = []

    def fake() -> bool:
        asked.append(True)
        return True

    monkeypatch.setattr(gpu, "gpu_available", fake)
    assert gpu.choose_backend(5, use_gpu=True, n_cell_cpu=10)[0] == "cpu"
    assert gpu.choose_backend(5, use_gpu=False, n_cell_cpu=0)[0] == "cpu"
    assert asked == []
    assert gpu.choose_backend(50, use_gpu=True, n_cell_cpu=10) == ("gpu", "GPU")
    assert asked == [True]


def test_gpu_available_false_without_rapids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rapids_singlecell", None)  # makes the import raise ImportError
    gpu.gpu_available.cache_clear()
    try:
        assert gpu.gpu_available() is False
    finally:
        gpu.gpu_available.cache_clear()


def test_below_n_cell_cpu_runs_cpu_with_cpu_arguments(clusterer: GraphClusterer, adjacency: sp.csr_matrix) -> None:
    spec = ClusterSpec("leiden", 0.7, n_iterations=-1, seed=3, extra={"beta": 0.05})
    double = Double(lambda n: np.zeros(n, dtype=int))
    labels, info = run(clusterer, spec, double, n_cell_cpu=clusterer.n_obs + 1)
    assert double.calls == []
    expected = GraphClusterer(adjacency).labels(spec)
    assert list(labels) == list(expected)
    assert list(labels.categories) == list(expected.categories)
    assert info == {
        "backend": "cpu",
        "backend_reason": f"{clusterer.n_obs} cells < n_cell_cpu {clusterer.n_obs + 1}",
        "requested_gpu": True,
    }


@pytest.mark.parametrize(("use_gpu", "available"), [(False, True), (True, False)])
def test_no_gpu_runs_cpu(clusterer: GraphClusterer, use_gpu: bool, available: bool) -> None:
    spec = ClusterSpec("louvain", 1.0, seed=1)
    double = Double(lambda n: np.zeros(n, dtype=int))
    labels, info = run(clusterer, spec, double, use_gpu=use_gpu, available=available)
    assert double.calls == []
    assert list(labels) == list(clusterer.labels(spec))
    assert info["backend"] == "cpu"
    assert info["requested_gpu"] is use_gpu
    assert "fallback" not in info


def test_above_n_cell_cpu_uses_gpu_result(clusterer: GraphClusterer) -> None:
    membership = np.arange(clusterer.n_obs) % 7
    double = Double(membership)
    spec = ClusterSpec("leiden", 1.0)
    labels, info = run(clusterer, spec, double, n_cell_cpu=clusterer.n_obs)
    assert len(double.calls) == 1
    assert list(labels) == [str(x) for x in membership]
    assert list(labels.categories) == [str(x) for x in range(7)]
    assert info == {"backend": "gpu", "backend_reason": "GPU", "requested_gpu": True}


def test_double_gets_float64_csr_and_seed() -> None:
    adjacency32 = sp.csr_matrix(sc.datasets.pbmc68k_reduced().obsp["connectivities"], dtype=np.float32)
    double = Double(lambda n: np.arange(n) % 3)
    spec = ClusterSpec("leiden", 0.5, seed=7)
    run(GraphClusterer(adjacency32), spec, double)
    [(graph, got)] = double.calls
    assert isinstance(graph, sp.csr_matrix)
    assert graph.dtype == np.float64
    assert got.seed == 7
    assert got == spec
    assert abs(graph - adjacency32).max() == 0


def test_unsupported_clustering_args_run_cpu(clusterer: GraphClusterer) -> None:
    spec = ClusterSpec("leiden", 1.0, extra={"beta": 0.05, "use_weights": True})
    double = Double(lambda n: np.arange(n) % 3)
    labels, info = run(clusterer, spec, double)
    assert double.calls == []
    assert info["backend"] == "cpu"
    assert "beta" in info["backend_reason"]
    assert "use_weights" not in info["backend_reason"]
    assert list(labels) == list(clusterer.labels(spec))
    assert gpu.gpu_unsupported(ClusterSpec("leiden", 1.0, extra={"objective_function": "modularity"})) is None
    assert gpu.gpu_unsupported(ClusterSpec("leiden", 1.0, extra={"objective_function": "CPM"})) is not None


# --- over-clustering guard ------------------------------------------------------------------------


def test_overclustering_cluster_count_threshold() -> None:
    # 50 x resolution 1.0 = 50: exactly at the factor is fine, one more cluster is not
    at = labels_of([1] * 50)
    above = labels_of([1] * 51)
    kwargs = {"max_cluster_factor": 50.0, "max_singleton_fraction": 0.5}
    assert gpu.overclustering(at, 1.0, **kwargs) is None
    reason = gpu.overclustering(above, 1.0, **kwargs)
    assert reason == "51 clusters > 50 x resolution 1.0 and 100% singletons (> 50%)"
    # the limit scales with the resolution and the factor
    assert gpu.overclustering(above, 1.1, **kwargs) is None
    assert gpu.overclustering(at, 1.0, max_cluster_factor=49.0, max_singleton_fraction=0.5) is not None


def test_overclustering_singleton_rule() -> None:
    kwargs = {"max_cluster_factor": 1.0, "max_singleton_fraction": 0.5}
    # 10 clusters > 1 x 1.0; 5 of 10 singletons is exactly at the rule -> fine; 6 of 10 -> degenerate
    assert gpu.overclustering(labels_of([1] * 5 + [20] * 5), 1.0, **kwargs) is None
    reason = gpu.overclustering(labels_of([1] * 6 + [20] * 4), 1.0, **kwargs)
    assert reason is not None
    assert reason.startswith("10 clusters > 1 x resolution 1.0 and 60% singletons")
    # many clusters but none of size 1 is not degenerate
    assert gpu.overclustering(labels_of([2] * 500), 1.0, **kwargs) is None
    # the rule is a parameter
    assert gpu.overclustering(labels_of([1] * 5 + [20] * 5), 1.0, max_cluster_factor=1.0, max_singleton_fraction=0.4)
    assert gpu.overclustering(pd.Categorical([]), 1.0, **kwargs) is None


def test_one_cluster_per_cell_falls_back_to_cpu(clusterer: GraphClusterer) -> None:
    double = Double(np.arange)
    spec = ClusterSpec("leiden", 1.0, seed=2)
    labels, info = run(clusterer, spec, double)
    assert len(double.calls) == 1
    expected = clusterer.labels(spec)
    assert list(labels) == list(expected)
    assert len(labels.categories) < 50
    assert info["backend"] == "cpu"
    assert info["backend_reason"] == "GPU"
    assert info["requested_gpu"] is True
    assert info["fallback"] == f"{clusterer.n_obs} clusters > 50 x resolution 1.0 and 100% singletons (> 50%)"


def test_fallback_thresholds_are_parameters(clusterer: GraphClusterer) -> None:
    spec = ClusterSpec("leiden", 1.0)
    # a generous factor keeps the one-cluster-per-cell result
    labels, info = run(clusterer, spec, Double(np.arange), max_cluster_factor=float(clusterer.n_obs))
    assert info["backend"] == "gpu"
    assert "fallback" not in info
    assert len(labels.categories) == clusterer.n_obs
    # and so does a singleton rule of 100%
    _, info = run(clusterer, spec, Double(np.arange), max_singleton_fraction=1.0)
    assert "fallback" not in info


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            RuntimeError("CUDA out of memory\n  at line 2"),
            "GPU error: RuntimeError: CUDA out of memory at line 2",
        ),
        (MemoryError("x" * 500), None),
    ],
)
def test_gpu_error_falls_back_to_cpu(clusterer: GraphClusterer, error: Exception, expected: str | None) -> None:
    spec = ClusterSpec("louvain", 0.5, seed=4)
    labels, info = run(clusterer, spec, Double(error))
    assert list(labels) == list(clusterer.labels(spec))
    assert info["backend"] == "cpu"
    reason = info["fallback"]
    assert "\n" not in reason
    assert len(reason) <= 200
    if expected is not None:
        assert reason == expected
    else:
        assert reason.startswith("GPU error: MemoryError: xxx")


def test_wrong_length_gpu_result_falls_back(clusterer: GraphClusterer) -> None:
    spec = ClusterSpec("leiden", 1.0)
    labels, info = run(clusterer, spec, Double(np.zeros(3, dtype=int)))
    assert info["backend"] == "cpu"
    assert info["fallback"].startswith("GPU error: ValueError")
    assert list(labels) == list(clusterer.labels(spec))


# --- gpu_membership against a fake rapids_singlecell ----------------------------------------------


def _fake_rsc(monkeypatch: pytest.MonkeyPatch, leiden: Any, louvain: Any) -> None:
    module = types.ModuleType("rapids_singlecell")
    module.tl = types.SimpleNamespace(leiden=leiden, louvain=louvain)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "rapids_singlecell", module)


def _write(adata: Any, key_added: str) -> None:
    graph = adata.obsp[adata.uns["neighbors"]["connectivities_key"]]
    _, membership = connected_components(graph)
    adata.obs[key_added] = pd.Categorical(membership.astype(str))


def test_gpu_membership_new_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[str, dict[str, Any]] = {}

    def leiden(
        adata,
        resolution=1.0,
        *,
        random_state=0,
        theta=1.0,
        key_added="leiden",
        n_iterations=100,
        use_weights=True,
        neighbors_key=None,
        dtype=np.float32,
        copy=False,
    ):
        calls["leiden"] = {
            "resolution": resolution,
            "random_state": random_state,
            "n_iterations": n_iterations,
            "use_weights": use_weights,
            "dtype": dtype,
            "graph": adata.obsp["connectivities"],
        }
        _write(adata, key_added)

    def louvain(
        adata,
        resolution=1.0,
        *,
        key_added="louvain",
        n_iterations=100,
        threshold=1e-7,
        use_weights=True,
        dtype=np.float32,
        copy=False,
    ):
        calls["louvain"] = {"resolution": resolution, "n_iterations": n_iterations, "dtype": dtype}
        _write(adata, key_added)

    _fake_rsc(monkeypatch, leiden, louvain)
    graph = sp.csr_matrix(sp.block_diag([np.ones((3, 3)), np.ones((2, 2))]), dtype=np.float32)
    out = gpu.gpu_membership(graph, ClusterSpec("leiden", 0.3, n_iterations=5, seed=11, extra={"use_weights": False}))
    assert out.dtype == np.int64
    assert out.tolist() == [0, 0, 0, 1, 1]
    got = calls["leiden"]
    assert got["resolution"] == 0.3
    assert got["random_state"] == 11
    assert got["n_iterations"] == 5
    assert got["use_weights"] is False
    assert got["dtype"] is np.float64
    assert got["graph"].dtype == np.float64
    # n_iterations -1 (until stable) has no rapids equivalent: rapids' default is kept
    gpu.gpu_membership(graph, ClusterSpec("leiden", 1.0, n_iterations=-1))
    assert calls["leiden"]["n_iterations"] == 100
    # Louvain: no random_state in the signature, n_iterations left at the default, float64
    gpu.gpu_membership(graph, ClusterSpec("louvain", 2.0, seed=5))
    assert calls["louvain"] == {"resolution": 2.0, "n_iterations": 100, "dtype": np.float64}


def test_gpu_membership_old_and_rng_signatures(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[str, dict[str, Any]] = {}

    # oldest: no dtype, no random_state
    def leiden_old(adata, resolution=1.0, *, key_added="leiden", n_iterations=100, use_weights=True, copy=False):
        calls["old"] = {"n_iterations": n_iterations}
        _write(adata, key_added)

    # newest: `rng` in the signature, legacy `random_state` accepted by a decorator
    def legacy(func: Any) -> Any:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if "random_state" in kwargs:
                kwargs["rng"] = ("legacy", kwargs.pop("random_state"))
            return func(*args, **kwargs)

        return wrapper

    @legacy
    def leiden_rng(
        adata,
        resolution=1.0,
        *,
        rng=None,
        key_added="leiden",
        n_iterations=100,
        use_weights=True,
        dtype=np.float32,
        copy=False,
    ):
        calls["rng"] = {"rng": rng, "dtype": dtype}
        _write(adata, key_added)

    graph = sp.csr_matrix(np.ones((4, 4)))
    _fake_rsc(monkeypatch, leiden_old, leiden_old)
    assert gpu.gpu_membership(graph, ClusterSpec("leiden", 1.0, seed=9, n_iterations=3)).tolist() == [0] * 4
    assert calls["old"] == {"n_iterations": 3}
    _fake_rsc(monkeypatch, leiden_rng, leiden_old)
    gpu.gpu_membership(graph, ClusterSpec("leiden", 1.0, seed=9))
    assert calls["rng"] == {"rng": ("legacy", 9), "dtype": np.float64}


def test_gpu_versions_without_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("rapids_singlecell", "cupy", "cugraph"):
        monkeypatch.setitem(sys.modules, name, None)
    assert gpu.gpu_versions() == {}
    fake = types.ModuleType("cupy")
    fake.__version__ = "13.0.0"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cupy", fake)
    assert gpu.gpu_versions() == {"cupy": "13.0.0"}


# --- the real GPU ---------------------------------------------------------------------------------


def _real_gpu() -> bool:
    gpu.gpu_available.cache_clear()
    return gpu.gpu_available()


@pytest.mark.skipif(not _real_gpu(), reason="needs rapids_singlecell, cupy and a CUDA device")
@pytest.mark.parametrize("algorithm", ["leiden", "louvain"])
def test_real_gpu_clustering_is_sane(clusterer: GraphClusterer, algorithm: str) -> None:
    from sklearn.metrics import adjusted_rand_score

    spec = ClusterSpec(algorithm, 1.0, seed=0)
    membership = gpu.gpu_membership(clusterer.adjacency, spec)
    assert membership.shape == (clusterer.n_obs,)
    n_clusters = len(np.unique(membership))
    assert 2 <= n_clusters <= 50
    labels, info = run(clusterer, spec, gpu.gpu_membership, available=None)
    assert info == {"backend": "gpu", "backend_reason": "GPU", "requested_gpu": True}
    assert gpu.overclustering(labels, 1.0, max_cluster_factor=50, max_singleton_fraction=0.5) is None
    # a different implementation, but the same graph and resolution: close to the CPU partition
    assert adjusted_rand_score(clusterer.membership(spec), membership) > 0.4
    assert gpu.gpu_versions().keys() >= {"rapids_singlecell", "cupy"}
