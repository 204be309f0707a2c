import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp

from scclust.clustering import (
    ClusterSpec,
    GraphClusterer,
    column_name,
    igraph_from_adjacency,
    parse_resolutions,
)
from scclust.errors import UserError


@pytest.fixture(scope="module")
def pbmc():
    return sc.datasets.pbmc68k_reduced()


@pytest.mark.parametrize("flavor", ["igraph", "leidenalg"])
def test_leiden_labels_equal_scanpy_for_every_resolution_on_one_graph(pbmc, flavor):
    clusterer = GraphClusterer(pbmc.obsp["connectivities"])
    for r in (0.3, 1.0, 1.7):
        sc.tl.leiden(pbmc, resolution=r, flavor=flavor, n_iterations=2, random_state=4)
        mine = clusterer.labels(ClusterSpec("leiden", r, flavor=flavor, seed=4))
        assert (np.asarray(mine) == pbmc.obs["leiden"].to_numpy()).all()
        assert list(mine.categories) == list(pbmc.obs["leiden"].cat.categories)


@pytest.mark.parametrize("slice_rows", [8192, 7])
def test_graph_matches_scanpys_edges_and_weights(pbmc, monkeypatch, slice_rows):
    """Same edges in the same order, also across the edge stream's slices and with explicit zeros stored."""
    from scanpy._utils import get_igraph_from_adjacency

    import scclust.clustering

    monkeypatch.setattr(scclust.clustering, "_EDGE_SLICE_ROWS", slice_rows)
    adj = pbmc.obsp["connectivities"].astype(np.float32)
    adj.data[::5] = 0  # stored zeros are not edges, for scanpy either
    (ours, weights), theirs = igraph_from_adjacency(adj, directed=False), get_igraph_from_adjacency(adj, directed=False)
    assert ours.get_edgelist() == theirs.get_edgelist()
    # float32 as stored (half the memory of float64), equal to scanpy's weights once igraph reads them as doubles
    assert weights.dtype == np.float32 and (weights.astype(np.float64) == np.asarray(theirs.es["weight"], dtype=np.float64)).all()
    assert "weight" not in ours.es.attributes()  # a Python list per edge: kept as an array instead


@pytest.mark.parametrize("seed", [0, 4, 2**32 - 1])
def test_igraph_rng_draws_what_scanpys_rng_draws(monkeypatch, seed):
    """Every number igraph can ask for equals scanpy's: runs of one kind cross several blocks, kinds interleave."""
    import random

    from scanpy._utils.random import _RNGIgraph

    from scclust.clustering import _IgraphRNG

    monkeypatch.setattr(_IgraphRNG, "BLOCK", 97)
    ours, ref = _IgraphRNG(seed), _RNGIgraph(seed)
    mix = random.Random(seed)
    for _ in range(400):
        kind, run = mix.random(), mix.choice([1, 3, 50, 500])
        for _ in range(run):
            if kind < 0.5:
                assert ours.getrandbits(32) == ref.getrandbits(32)
            elif kind < 0.98:
                assert ours.random() == ref.random()
            else:
                assert ours.gauss(0, 1) == ref.gauss(0, 1)
    with pytest.raises(NotImplementedError):
        ours.randint(0, 10)


def test_non_canonical_matrix_sums_duplicates_like_scanpy():
    adj = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([1, 1, 0]), np.array([0, 2, 3])), shape=(2, 2))
    assert not adj.has_canonical_format
    g, weights = igraph_from_adjacency(adj, directed=False)
    assert g.ecount() == 3 and weights[0] == 3.0


def test_louvain_honours_resolution_and_seed(pbmc):
    clusterer = GraphClusterer(pbmc.obsp["connectivities"])
    counts = [len(clusterer.labels(ClusterSpec("louvain", r)).categories) for r in (0.1, 0.5, 2.0)]
    assert counts[0] < counts[1] < counts[2]
    a = clusterer.membership(ClusterSpec("louvain", 1.0, seed=1))
    assert (a == clusterer.membership(ClusterSpec("louvain", 1.0, seed=1))).all()


def test_resolution_naming_rule():
    assert column_name("leiden", "1", 1) == column_name("leiden", 1.0, 1) == "leiden_1.0_1"
    assert column_name("louvain", "0.50", 2) == "louvain_0.5_2"
    assert parse_resolutions("0.2, 0.5,1") == [0.2, 0.5, 1.0]
    for bad, message in (
        ("0", "positive"),
        ("abc", "not a number"),
        ("1,1.0", "repeats"),
        ("-1", "positive"),
    ):
        with pytest.raises(UserError, match=message):
            parse_resolutions(bad)


def test_spec_rejects_unknown_arguments_and_flavors():
    with pytest.raises(UserError, match="beta"):
        ClusterSpec("leiden", 1.0, flavor="leidenalg", extra={"beta": 0.1})
    with pytest.raises(UserError, match="flavor"):
        ClusterSpec("louvain", 1.0, flavor="leidenalg")
    with pytest.raises(UserError, match="algorithm"):
        ClusterSpec("kmeans", 1.0)


def test_labels_are_natural_sorted_strings():
    clusterer = GraphClusterer(sp.identity(12, format="csr"))
    labels = clusterer.labels(ClusterSpec("leiden", 1.0))
    assert isinstance(labels, pd.Categorical)
    assert list(labels.categories) == sorted(labels.categories, key=int)
