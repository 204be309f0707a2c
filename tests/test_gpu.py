"""GPU backend: selection, over-clustering guard, CPU fallback and the rapids-singlecell call, against a double of
rapids-singlecell 0.18.1 (``tests/rsc_double.py``, checked against the real source by ``tests/test_rsc_contract.py``),
plus the real GPU where there is one."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp

from rsc_double import FakeRsc, Partition, components
from scclust import gpu
from scclust.clustering import ClusterSpec, GraphClusterer, labels_from_membership
from scclust.config import config_from_params
from scclust.multires import cluster_resolutions

GPU_REASON = "GPU (rapids-singlecell 0.18.1)"


@pytest.fixture(scope="module")
def adjacency() -> sp.csr_matrix:
    return sp.csr_matrix(sc.datasets.pbmc68k_reduced().obsp["connectivities"])


@pytest.fixture
def clusterer(adjacency: sp.csr_matrix) -> GraphClusterer:
    return GraphClusterer(adjacency)


def fake(monkeypatch: pytest.MonkeyPatch, partition: Partition = components, version: str = "0.18.1") -> FakeRsc:
    module = FakeRsc(partition, version)
    monkeypatch.setitem(sys.modules, "rapids_singlecell", module)
    return module


def run(clusterer: GraphClusterer, specs: list[ClusterSpec], **kwargs: Any) -> list[tuple[pd.Categorical, dict]]:
    args: dict[str, Any] = {
        "use_gpu": True,
        "n_cell_cpu": 0,
        "max_cluster_factor": 50.0,
        "max_singleton_fraction": 0.5,
        "available": True,
        **kwargs,
    }
    return gpu.cluster_with_backend(clusterer, specs, **args)


def modulo(k: int) -> Partition:
    return lambda graph, resolution, seed: np.arange(graph.shape[0]) % k


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

    def fake_available() -> bool:
        asked.append(True)
        return True

    monkeypatch.setattr(gpu, "gpu_available", fake_available)
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


def test_below_n_cell_cpu_runs_cpu_with_cpu_arguments(
    monkeypatch: pytest.MonkeyPatch, clusterer: GraphClusterer, adjacency: sp.csr_matrix
) -> None:
    rsc = fake(monkeypatch)
    spec = ClusterSpec("leiden", 0.7, n_iterations=-1, seed=3, extra={"beta": 0.05})
    [(labels, info)] = run(clusterer, [spec], n_cell_cpu=clusterer.n_obs + 1)
    assert rsc.calls == []
    expected = GraphClusterer(adjacency).labels(spec)
    assert list(labels) == list(expected)
    assert list(labels.categories) == list(expected.categories)
    assert info == {
        "backend": "cpu",
        "backend_reason": f"{clusterer.n_obs} cells < n_cell_cpu {clusterer.n_obs + 1}",
        "requested_gpu": True,
    }


@pytest.mark.parametrize(("use_gpu", "available"), [(False, True), (True, False)])
def test_no_gpu_runs_cpu(monkeypatch: pytest.MonkeyPatch, clusterer: GraphClusterer, use_gpu: bool, available: bool) -> None:
    rsc = fake(monkeypatch)
    spec = ClusterSpec("leiden", 1.0, seed=1)
    [(labels, info)] = run(clusterer, [spec], use_gpu=use_gpu, available=available)
    assert rsc.calls == []
    assert list(labels) == list(clusterer.labels(spec))
    assert info["backend"] == "cpu"
    assert info["requested_gpu"] is use_gpu
    assert "fallback" not in info and "gpu_call" not in info


@pytest.mark.parametrize("version", ["0.17.3", "0.19.0", "unknown"])
def test_release_scclust_has_not_read_runs_cpu(monkeypatch: pytest.MonkeyPatch, clusterer: GraphClusterer, version: str) -> None:
    rsc = fake(monkeypatch, version=version)
    spec = ClusterSpec("leiden", 1.0)
    [(labels, info)] = run(clusterer, [spec])
    assert rsc.calls == []
    assert list(labels) == list(clusterer.labels(spec))
    assert info["backend"] == "cpu"
    assert info["backend_reason"] == f"rapids-singlecell {version} is not one scclust supports (0.18)"


def test_unsupported_clustering_args_run_cpu(monkeypatch: pytest.MonkeyPatch, clusterer: GraphClusterer) -> None:
    rsc = fake(monkeypatch)
    spec = ClusterSpec("leiden", 1.0, extra={"beta": 0.05, "use_weights": True})
    [(labels, info)] = run(clusterer, [spec])
    assert rsc.calls == []
    assert info["backend"] == "cpu"
    assert "beta" in info["backend_reason"]
    assert "use_weights" not in info["backend_reason"]
    assert list(labels) == list(clusterer.labels(spec))
    release = gpu.rsc.RELEASES["0.18"]
    assert release.unsupported(ClusterSpec("leiden", 1.0, extra={"objective_function": "modularity"})) is None
    assert release.unsupported(ClusterSpec("leiden", 1.0, extra={"objective_function": "CPM"})) is not None


# --- the rapids-singlecell call -------------------------------------------------------------------


def test_one_call_for_all_resolutions_with_one_seed(monkeypatch: pytest.MonkeyPatch, clusterer: GraphClusterer) -> None:
    rsc = fake(monkeypatch, lambda graph, resolution, seed: np.arange(graph.shape[0]) % int(4 * resolution))
    specs = [ClusterSpec("leiden", r, n_iterations=2, seed=11, extra={"use_weights": False}) for r in (0.5, 1.0, 2.0)]
    results = run(clusterer, specs)
    assert len(rsc.calls) == 1
    assert rsc.calls[0]["resolution"] == [0.5, 1.0, 2.0]
    assert [c["random_state"] for c in rsc.cugraph_calls] == [11, 11, 11]
    # igraph's n_iterations is not cuGraph's level cap: rapids' default goes to cuGraph whatever --n_iterations says
    assert [c["max_iter"] for c in rsc.cugraph_calls] == [100, 100, 100]
    assert {c["use_weights"] for c in rsc.cugraph_calls} == {False}
    call = {
        "function": "rapids_singlecell.tl.leiden",
        "resolution": [0.5, 1.0, 2.0],
        "random_state": 11,
        "n_iterations": 100,
        "use_weights": False,
        "dtype": "float64",
    }
    for (labels, info), k in zip(results, (2, 4, 8), strict=True):
        assert list(labels) == [str(x) for x in np.arange(clusterer.n_obs) % k]
        assert info == {"backend": "gpu", "backend_reason": GPU_REASON, "requested_gpu": True, "gpu_call": call}


def test_labels_do_not_depend_on_which_resolutions_share_a_call(
    monkeypatch: pytest.MonkeyPatch, clusterer: GraphClusterer
) -> None:
    def seeded(graph: sp.csr_matrix, resolution: float, seed: int | None) -> np.ndarray:
        return np.random.RandomState(seed).randint(0, 3 + int(resolution), graph.shape[0])

    fake(monkeypatch, seeded)
    specs = [ClusterSpec("leiden", r, seed=5) for r in (0.5, 1.0, 2.0)]
    together = [list(labels) for labels, _ in run(clusterer, specs)]
    alone = [list(run(clusterer, [spec])[0][0]) for spec in specs]
    assert together == alone
    other_seed = [list(labels) for labels, _ in run(clusterer, [ClusterSpec("leiden", r, seed=6) for r in (0.5, 1.0, 2.0)])]
    assert other_seed != together


def test_gpu_gets_a_float64_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    adjacency32 = sp.csr_matrix(sc.datasets.pbmc68k_reduced().obsp["connectivities"], dtype=np.float32)
    graphs: list[sp.csr_matrix] = []

    def record(graph: sp.csr_matrix, resolution: float, seed: int | None) -> np.ndarray:
        graphs.append(graph)
        return np.arange(graph.shape[0]) % 3

    rsc = fake(monkeypatch, record)
    run(GraphClusterer(adjacency32), [ClusterSpec("leiden", 0.5, seed=7)])
    [graph] = graphs
    assert rsc.calls[0]["dtype"] == "float64"
    assert graph.dtype == np.float64
    assert abs(graph - adjacency32).max() == 0


def test_louvain_runs_on_cpu_because_cugraph_takes_no_seed(monkeypatch: pytest.MonkeyPatch, clusterer: GraphClusterer) -> None:
    rsc = fake(monkeypatch, modulo(4))
    specs = [ClusterSpec("louvain", 1.0, seed=7), ClusterSpec("leiden", 1.0, seed=7), ClusterSpec("louvain", 0.5, seed=7)]
    (louvain1, info1), (leiden, info2), (louvain05, info3) = run(clusterer, specs)
    assert [c["function"] for c in rsc.calls] == ["leiden"]
    assert list(louvain1) == list(clusterer.labels(specs[0]))
    assert list(louvain05) == list(clusterer.labels(specs[2]))
    assert (
        info1
        == info3
        == {
            "backend": "cpu",
            "backend_reason": "rapids-singlecell 0.18 louvain takes no seed (cuGraph issue 5516): run on the CPU so that "
            "the seed determines the labels",
            "requested_gpu": True,
        }
    )
    assert info2["backend"] == "gpu"
    assert list(leiden) == [str(x) for x in np.arange(clusterer.n_obs) % 4]


def test_task_makes_one_call_and_records_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    store = tmp_path / "pbmc.zarr"
    pbmc = sc.datasets.pbmc68k_reduced()
    ad.AnnData(
        obs=pd.DataFrame(index=pbmc.obs_names),
        obsm={"X_pca": pbmc.obsm["X_pca"]},
        obsp=pbmc.obsp,
        uns={"neighbors": pbmc.uns["neighbors"]},
    ).write_zarr(store)
    rsc = fake(monkeypatch, modulo(5))
    monkeypatch.setattr(gpu, "gpu_available", lambda: True)
    cfg = config_from_params({"resolutions": "0.5,1.0", "algorithm": "leiden,louvain", "use_gpu": True, "n_cell_cpu": 0})
    dataset = {"n_obs": pbmc.n_obs, "graph": {"recomputed": False}, "input": str(store)}
    leiden = cluster_resolutions(store, cfg, dataset, "leiden", [0.5, 1.0], store)
    louvain = cluster_resolutions(store, cfg, dataset, "louvain", [0.5, 1.0], store)
    assert len(rsc.calls) == 1
    for column in leiden:
        assert column.params["backend"] == "gpu"
        assert column.params["gpu_call"]["resolution"] == [0.5, 1.0]
        assert column.params["gpu_call"]["n_iterations"] == 100
        assert column.params["n_iterations"] == 2  # the run's setting, which the GPU call did not get
    assert {c.params["backend"] for c in louvain} == {"cpu"}
    assert all("takes no seed" in c.params["backend_reason"] for c in louvain)


# --- over-clustering guard and fallback -----------------------------------------------------------


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


def test_one_cluster_per_cell_falls_back_to_cpu_for_that_column_only(
    monkeypatch: pytest.MonkeyPatch, clusterer: GraphClusterer
) -> None:
    def at_two_one_per_cell(graph: sp.csr_matrix, resolution: float, seed: int | None) -> np.ndarray:
        return np.arange(graph.shape[0]) % (graph.shape[0] if resolution == 2.0 else 4)

    fake(monkeypatch, at_two_one_per_cell)
    specs = [ClusterSpec("leiden", 1.0, seed=2), ClusterSpec("leiden", 2.0, seed=2)]
    (kept, kept_info), (labels, info) = run(clusterer, specs)
    assert kept_info["backend"] == "gpu" and "fallback" not in kept_info
    assert len(kept.categories) == 4
    expected = clusterer.labels(specs[1])
    assert list(labels) == list(expected)
    assert len(labels.categories) < 50
    assert info["backend"] == "cpu"
    assert info["backend_reason"] == GPU_REASON
    assert info["requested_gpu"] is True
    assert info["gpu_call"] == kept_info["gpu_call"]
    assert info["fallback"] == f"{clusterer.n_obs} clusters > 50 x resolution 2.0 and 100% singletons (> 50%)"


def test_fallback_thresholds_are_parameters(monkeypatch: pytest.MonkeyPatch, clusterer: GraphClusterer) -> None:
    fake(monkeypatch, modulo(clusterer.n_obs))
    spec = ClusterSpec("leiden", 1.0)
    # a generous factor keeps the one-cluster-per-cell result
    [(labels, info)] = run(clusterer, [spec], max_cluster_factor=float(clusterer.n_obs))
    assert info["backend"] == "gpu"
    assert "fallback" not in info
    assert len(labels.categories) == clusterer.n_obs
    # and so does a singleton rule of 100%
    [(_, info)] = run(clusterer, [spec], max_singleton_fraction=1.0)
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
def test_gpu_error_falls_back_to_cpu(
    monkeypatch: pytest.MonkeyPatch, clusterer: GraphClusterer, error: Exception, expected: str | None
) -> None:
    def fail(graph: sp.csr_matrix, resolution: float, seed: int | None) -> np.ndarray:
        raise error

    fake(monkeypatch, fail)
    specs = [ClusterSpec("leiden", 0.5, seed=4), ClusterSpec("leiden", 1.5, seed=4)]
    for spec, (labels, info) in zip(specs, run(clusterer, specs), strict=True):
        assert list(labels) == list(clusterer.labels(spec))
        assert info["backend"] == "cpu"
        reason = info["fallback"]
        assert "\n" not in reason
        assert len(reason) <= 200
        if expected is not None:
            assert reason == expected
        else:
            assert reason.startswith("GPU error: MemoryError: xxx")


def test_gpu_versions_without_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("rapids_singlecell", "cupy", "cugraph"):
        monkeypatch.setitem(sys.modules, name, None)
    assert gpu.gpu_versions() == {}
    module = types.ModuleType("cupy")
    module.__version__ = "13.0.0"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cupy", module)
    assert gpu.gpu_versions() == {"cupy": "13.0.0"}


# --- the real GPU ---------------------------------------------------------------------------------


def _real_gpu() -> bool:
    gpu.gpu_available.cache_clear()
    return gpu.gpu_available()


@pytest.mark.skipif(not _real_gpu(), reason="needs rapids_singlecell, cupy and a CUDA device")
def test_real_gpu_clustering_is_sane(clusterer: GraphClusterer) -> None:
    from sklearn.metrics import adjusted_rand_score

    resolutions = (0.5, 1.0, 2.0)
    specs = [ClusterSpec("leiden", r, seed=0) for r in resolutions]
    results = run(clusterer, [*specs, ClusterSpec("louvain", 1.0)], available=None)
    for spec, (labels, info) in zip(specs, results, strict=True):
        assert info["backend"] == "gpu", info
        assert info["gpu_call"]["resolution"] == list(resolutions)
        cpu = clusterer.labels(spec)
        # another implementation on the same graph and resolution: about as many clusters, a similar partition (a
        # Leiden cut short after a few levels leaves many more, smaller clusters)
        assert abs(len(labels.categories) - len(cpu.categories)) <= max(2, 0.3 * len(cpu.categories)), spec
        assert adjusted_rand_score(cpu, labels) > 0.4
    assert results[-1][1]["backend"] == "cpu"
    # the same seed gives the same labels, whichever resolutions share the call
    alone = run(clusterer, [specs[1]], available=None)[0][0]
    assert list(alone) == list(results[1][0])
    assert gpu.gpu_versions().keys() >= {"rapids_singlecell", "cupy"}
