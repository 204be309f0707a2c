import json

import numpy as np
import pandas as pd
import pytest

from scclust.config import config_from_params, load_config, parse_hierarchy
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
    # the level-1 entry changes level 1 only: the run's resolution names the tree and is used at level 2
    assert cfg.resolutions == [0.5]
    assert cfg.columns() == ["leiden_0.5_1", "leiden_0.5_2"]
    assert cfg.spec("leiden", 0.5, 1).resolution == 0.3
    spec2 = cfg.spec("leiden", 0.5, 2)
    assert (spec2.flavor, spec2.seed, spec2.resolution) == ("leidenalg", 3, 0.5)
    assert cfg.spec("leiden", 0.5, 1).flavor == "igraph"
    assert cfg.level_min_cluster_size(2) == 30


def test_reference_hierarchy_meaning():
    cfg = config_from_params({"resolutions": [0.5], "hierarchy": "{1: 0.1, 3: 0.2}"})
    assert cfg.columns() == ["leiden_0.5_1", "leiden_0.5_2", "leiden_0.5_3"]
    assert cfg.level_resolutions(0.5) == [0.1, 0.5, 0.2]
    assert [cfg.spec("leiden", 0.5, level).resolution for level in (1, 2, 3)] == [0.1, 0.5, 0.2]
    assert cfg.level_log() == ["leiden_0.5_{1..3}: resolution 0.1 at level 1, 0.5 at level 2, 0.2 at level 3"]
    assert cfg.plan()["level_log"] == cfg.level_log()
    assert config_from_params({"resolutions": "0.5"}).level_log() == []


def test_several_resolutions_with_a_level1_override_share_level1():
    cfg = config_from_params({"resolutions": "0.5,1.0", "algorithm": "leiden,louvain", "hierarchy": {1: 0.3, 2: None}})
    assert cfg.columns() == [f"{a}_{r}_{level}" for a in ("leiden", "louvain") for r in ("0.5", "1.0") for level in (1, 2)]
    assert cfg.level_resolutions(0.5) == [0.3, 0.5] and cfg.level_resolutions(1.0) == [0.3, 1.0]
    assert cfg.level_log()[1] == "leiden_1.0_{1..2}, louvain_1.0_{1..2}: resolution 0.3 at level 1, 1.0 at level 2"


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


@pytest.mark.parametrize(
    ("params", "batches"),
    [
        ({"resolutions": "0.2,0.4,0.6,0.8"}, [[0, 2], [1, 3]]),  # auto, 2 cores: two tasks, round-robin
        ({"resolutions": "0.2,0.4,0.6,0.8", "algorithm": "leiden,louvain"}, [[0, 1, 2, 3]]),  # one per algorithm
        ({"resolutions": "0.2,0.4,0.6", "max_cpus": 16}, [[0], [1], [2]]),  # never more tasks than resolutions
        ({"resolutions": "0.2,0.4,0.6,0.8,1.0", "max_cpus": 3, "algorithm": "leiden,louvain"}, [[0, 2, 4], [1, 3]]),
        ({"resolutions": "0.2,0.4,0.6,0.8,1.0", "resolutions_per_task": 2, "max_cpus": 16}, [[0, 3], [1, 4], [2]]),
        ({"resolutions": "0.5", "resolutions_per_task": "auto"}, [[0]]),
    ],
)
def test_resolution_batches(params, batches, tmp_path):
    cfg = config_from_params(params)
    assert cfg.resolution_batches() == batches
    assert sorted(i for batch in batches for i in batch) == list(range(len(cfg.resolutions)))
    # plan.json gives the Nextflow side the batches; config.json reads back into the same Config
    assert cfg.plan()["batches"] == [",".join(map(str, b)) for b in batches]
    (tmp_path / "config.json").write_text(json.dumps(cfg.to_json()))
    assert load_config(tmp_path / "config.json") == cfg


def test_reference_argument_idiom():
    cfg = config_from_params({"clustering_args": '{"n_iterations": 5, "flavor": "leidenalg", "random_state": 3}'})
    spec = cfg.spec("leiden", 1.0)
    assert (spec.n_iterations, spec.flavor, spec.seed, dict(spec.extra)) == (5, "leidenalg", 3, {})
    # the same value twice, or the parameter at its default, is no conflict
    assert config_from_params({"clustering_args": {"n_iterations": 5}, "n_iterations": 5}).n_iterations == 5
    assert config_from_params({"clustering_args": {"seed": 4}, "seed": 0}).seed == 4
    level = config_from_params({"hierarchy": {2: {"random_state": 7, "max_comm_size": 50.0, "flavor": "leidenalg"}}})
    assert level.spec("leiden", 1.0, 2).seed == 7 and level.spec("leiden", 1.0, 2).extra == {"max_comm_size": 50}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"clustering_args": {"n_iterations": 5}, "n_iterations": 3}, "--clustering_args n_iterations 5 and --n_iterations 3"),
        ({"clustering_args": {"random_state": 4}, "seed": 3}, "--clustering_args random_state 4 and --seed 3"),
        ({"clustering_args": {"flavor": "leidenalg"}, "flavor": "igraph", "n_iterations": 3}, None),
        ({"clustering_args": {"seed": 1, "random_state": 2}}, "sets seed 1 and random_state 2"),
        (
            {"clustering_args": {"resolution": 0.3}},
            "--clustering_args must not set 'resolution': list resolutions in --resolutions",
        ),
        (
            {"clustering_args": {"beta": "0.01"}},
            """--clustering_args beta must be a number > 0, got '0.01'; pass e.g. --clustering_args '{"beta": 0.01}'""",
        ),
        ({"clustering_args": {"objective_function": "cpn"}}, "--clustering_args objective_function must be modularity or CPM"),
        ({"clustering_args": {"use_weights": "yes"}}, "--clustering_args use_weights must be true or false"),
        (
            {"clustering_args": {"partition_type": "ModularityVertexPartition"}, "flavor": "leidenalg"},
            "partition_type must be one of RBConfigurationVertexPartition",
        ),
        ({"clustering_args": {"max_comm_size": -1}, "flavor": "leidenalg"}, "max_comm_size must be an integer >= 0"),
        ({"clustering_args": {"n_iterations": 0}}, "--clustering_args n_iterations must be positive or -1"),
        ({"clustering_args": {"flavor": "rapids"}}, "--clustering_args flavor must be igraph or leidenalg"),
        ({"clustering_args": {"seed": 2**32}}, "--clustering_args seed must be an integer from 0 to 4294967295"),
        ({"seed": 2**32}, "--seed must be at most 4294967295"),
        ({"hierarchy": {2: {"seed": 2**32}}}, "--hierarchy level 2 seed must be an integer from 0 to 4294967295"),
        (
            {"hierarchy": {2: {"beta": "x"}}},
            "--hierarchy level 2 beta must be a number > 0, got 'x'; pass e.g. --hierarchy '{2: {beta: 0.01}}'",
        ),
        ({"hierarchy": {3: {"n_neighbors": "5"}}}, "--hierarchy level 3 n_neighbors must be an integer from 2"),
        ({"hierarchy": {2: {"n_iterations": 0}}}, "--hierarchy level 2 n_iterations must be positive or -1"),
        ({"resolutions_per_task": 0}, "--resolutions_per_task must be at least 1"),
    ],
)
def test_clustering_arguments_are_checked_at_preflight(params, message):
    if message is None:  # a differing value against a parameter left at its default is the reference's idiom
        assert config_from_params(params).flavor == "leidenalg"
        return
    with pytest.raises(UserError) as err:
        config_from_params(params)
    assert message in str(err.value)
