import numpy as np
import pandas as pd
import pytest

from scclust.config import config_from_params, parse_hierarchy
from scclust.errors import UserError
from scclust.hierarchy import TOO_SMALL, label_key, plan_batches, sorted_categories


def test_hierarchy_forms():
    assert parse_hierarchy(None) == (1, {})
    assert parse_hierarchy(3)[0] == 3
    assert parse_hierarchy("2")[0] == 2
    depth, levels = parse_hierarchy("{1: 0.1, 3: {resolution: 0.2, n_iterations: 5, beta: 0.01}}")
    assert depth == 3
    assert levels[1].resolution == 0.1
    assert levels[3].n_iterations == 5 and levels[3].extra == {"beta": 0.01}
    with pytest.raises(UserError, match="unknown argument"):
        parse_hierarchy({2: {"resolutoin": 0.3}})
    with pytest.raises(UserError, match="level"):
        parse_hierarchy({0: 0.3})


def test_level_arguments_overlay_the_run():
    cfg = config_from_params({"resolutions": "0.5", "hierarchy": {1: 0.3, 2: {"flavor": "leidenalg", "seed": 3}}})
    assert cfg.resolutions == [0.3]
    assert cfg.columns() == ["leiden_0.3_1", "leiden_0.3_2"]
    spec2 = cfg.spec("leiden", 0.3, 2)
    assert (spec2.flavor, spec2.seed, spec2.resolution) == ("leidenalg", 3, 0.3)
    assert cfg.spec("leiden", 0.3, 1).flavor == "igraph"
    assert cfg.level_min_cluster_size(2) == 30
    with pytest.raises(UserError, match="--resolutions"):
        config_from_params({"resolutions": "0.5,1.0", "hierarchy": {1: 0.3}})


def test_numeric_path_order():
    assert sorted_categories(["10_0", "2_0", "2", "1_10", "1_9"]) == ["1_9", "1_10", "2", "2_0", "10_0"]
    assert label_key("3_0_2") == (3, 0, 2)


def test_batches_pack_clusters_and_skip_small_ones():
    labels = pd.Categorical(np.repeat(["0", "1", "2", "3"], [50, 40, 5, 30]))
    batches, unsplit = plan_batches(labels, min_cluster_size=10, batch_cells=80)
    assert batches == [["0"], ["1", "3"]]
    assert unsplit == {"2": TOO_SMALL}
    batches, unsplit = plan_batches(pd.Categorical(["0"] * 3), min_cluster_size=10, batch_cells=80)
    assert batches == [[]] and unsplit == {"0": TOO_SMALL}


def test_large_subcluster_uses_exact_knn_and_matches_scanpy(tmp_path):
    import anndata as ad
    import scanpy as sc

    from scclust.hierarchy import knn_transformer, subcluster_batch
    from scclust.results import ColumnResult

    assert knn_transformer(50_000, 50_000) == "sklearn"
    assert knn_transformer(50_001, 50_000) is None
    rng = np.random.default_rng(0)
    n = 9000  # above scanpy's own exact-kNN limit of 8192 cells
    rep = np.concatenate([rng.normal(0, 1, (n // 2, 10)), rng.normal(6, 1, (n // 2, 10))]).astype(np.float32)
    store = tmp_path / "big.zarr"
    ad.AnnData(obs=pd.DataFrame(index=[f"c{i}" for i in range(n)]), obsm={"X_pca": rep}).write_zarr(store)
    cfg = config_from_params({"resolutions": "0.5", "hierarchy": 2})
    parent = ColumnResult("leiden_0.5_1", pd.Categorical(["0"] * n), {"algorithm": "leiden", "run_resolution": 0.5})
    part = subcluster_batch(parent, ["0"], level=2, cfg=cfg, rep_store=store, graph_store=store)
    assert part["clusters"]["0"]["knn_transformer"] == "sklearn"
    ref = ad.AnnData(obsm={"X_pca": rep})
    sc.pp.neighbors(ref, n_neighbors=15, use_rep="X_pca", random_state=0, transformer="sklearn")
    sc.tl.leiden(ref, resolution=0.5, flavor="igraph", n_iterations=2, random_state=0)
    order = np.argsort(part["cells"])
    assert (part["labels"][order] == ("0_" + ref.obs["leiden"].astype(str)).to_numpy()).all()
