"""Adaptive stability (scclust.stability_rounds, scclust.stability_summary): schedule, decision, rounds = fixed run."""

from __future__ import annotations

import pytest

from scclust.cli import write_json
from scclust.clustering import GraphClusterer, column_name
from scclust.config import config_from_params
from scclust.errors import UserError
from scclust.stability import cluster_bootstrap, recommend, write_bootstrap
from scclust.stability_rounds import certainty, outcome, pending, round_targets
from scclust.stability_summary import read_summary, save_state, summarise
from scclust.testdata import pbmc


@pytest.mark.parametrize(
    ("cap", "adaptive", "targets"),
    [
        (0, True, []),
        (2, True, [2]),
        (3, True, [3]),
        (5, True, [3, 5]),
        (10, True, [3, 6, 10]),
        (12, True, [3, 6, 12]),
        (50, True, [3, 6, 12, 50]),
        (10, False, [10]),
    ],
)
def test_round_targets(cap, adaptive, targets):
    assert round_targets(cap, adaptive) == targets


def entry(median, median_se, lowest, lowest_se, weighted=0.5, weighted_se=0.01):
    """With 10 bootstraps; intervals of +- 1.96 (widened) standard errors."""
    return {
        "n_bootstraps": 10,
        "stability": median,
        "stability_se": median_se,
        "stability_min": lowest,
        "stability_min_se": lowest_se,
        "stability_weighted": weighted,
        "stability_weighted_se": weighted_se,
    }


def test_outcome_and_which_columns_get_more():
    assert outcome(entry(0.90, 0.02, 0.60, 0.03)) == "pass"
    assert outcome(entry(0.90, 0.02, 0.40, 0.03)) == "fail"  # one cluster surely dissolves
    assert outcome(entry(0.70, 0.02, 0.60, 0.03)) == "fail"
    assert outcome(entry(0.76, 0.02, 0.60, 0.03)) == "uncertain"
    assert outcome(entry(0.90, 0.02, 0.55, 0.03)) == "uncertain"
    assert outcome(entry(0.90, 0.02, 0.52, 0.011)) == "uncertain"
    assert outcome(entry(0.90, 0.02, 0.52, 0.010)) == "pass"
    columns = {
        "a_0.2": entry(0.76, 0.02, 0.60, 0.01),  # uncertain, but below a surely passing resolution: settled
        "a_0.4": entry(0.95, 0.01, 0.80, 0.02),  # surely passes
        "a_0.8": entry(0.77, 0.02, 0.60, 0.01),  # uncertain above it: could become the recommendation
        "a_1.6": entry(0.50, 0.02, 0.10, 0.01),  # surely fails
        # no column of b surely passes: the fallback may decide, so weighted stabilities that overlap compete
        "b_0.2": entry(0.70, 0.01, 0.40, 0.01, weighted=0.80, weighted_se=0.01),
        "b_0.4": entry(0.60, 0.01, 0.40, 0.01, weighted=0.79, weighted_se=0.01),
        "b_0.8": entry(0.50, 0.01, 0.40, 0.01, weighted=0.60, weighted_se=0.01),
    }
    placement = {n: (n[0], float(n[2:])) for n in columns}
    more = pending(columns, placement)
    assert sorted(more) == ["a_0.8", "b_0.2", "b_0.4"]
    assert "0.75 median" in more["a_0.8"] and "weighted stability" in more["b_0.4"] and "weighted" in more["b_0.2"]
    sure = certainty(columns, placement)
    assert sure["a"].startswith("uncertain") and "a_0.8" in sure["a"] and sure["b"].startswith("uncertain")
    columns["a_0.8"] = entry(0.95, 0.01, 0.70, 0.01)
    columns["b_0.4"]["stability_weighted"] = 0.70
    assert pending(columns, placement) == {} and all(c.startswith("sure") for c in certainty(columns, placement).values())


PARAMS = {"resolutions": "0.4,1.0,2.0", "algorithm": "leiden,louvain", "stability_bootstraps": 10, "stability_adaptive": True}


def fixed(bootstraps: int):
    return config_from_params({**PARAMS, "stability_bootstraps": bootstraps, "stability_adaptive": False})


@pytest.fixture(scope="module")
def boots(tmp_path_factory):
    """pbmc68k_reduced, 6 level-1 columns, and their first 10 bootstraps, one file per (column, bootstrap)."""
    adata = pbmc()
    tmp = tmp_path_factory.mktemp("boots")
    cfg = config_from_params(PARAMS)
    clusterer = GraphClusterer(adata.obsp["connectivities"])
    labels = {column_name(a, r, 1): clusterer.labels(cfg.spec(a, r)) for a in cfg.algorithms for r in cfg.resolutions}
    files = {}
    for b in range(10):
        for a in cfg.algorithms:
            for r in cfg.resolutions:
                path = tmp / f"{a}_{r}_{b}.npz"
                write_bootstrap(path, cluster_bootstrap(adata.obsp["connectivities"], cfg, a, [r], b), fingerprint="fp")
                files[column_name(a, r, 1), b] = path
    return cfg, labels, files, tmp


def round_files(cfg, files, doc, target):
    """The files of a later round's STABILITY tasks, as subworkflows/local/stability_round.nf makes them from the
    previous summary's ``pending_batches``: each group from its columns' count up to the round's target."""
    return [
        files[column_name(alg, cfg.resolutions[i], 1), b]
        for alg, groups in doc["pending_batches"].items()
        for start, indices in groups
        for i in indices
        for b in range(start, target)
    ]


def run_rounds(cfg, labels, files, tmp):
    previous, rounds = None, []
    for number, target in enumerate(round_targets(10, adaptive=True), 1):
        first = [files[name, b] for name in labels for b in range(3)]
        given = first if number == 1 else round_files(cfg, files, rounds[-1], target)
        doc, state = summarise(cfg, labels, given, fingerprint="fp", round_number=number, previous=previous)
        # through the files the workflow passes on, as the next round's task reads them
        write_json(tmp / f"r{number}.json", doc)
        save_state(state, tmp / f"r{number}.npz")
        previous = (read_summary(tmp / f"r{number}.json", "fp"), tmp / f"r{number}.npz")
        rounds.append(doc)
        if not doc["pending"]:
            break
    return rounds


def test_rounds_give_each_column_the_first_bootstraps_of_a_fixed_run(boots):
    cfg, labels, files, tmp = boots
    rounds = run_rounds(cfg, labels, files, tmp)
    final = rounds[-1]
    assert rounds[0]["pending"], "pbmc at these resolutions has unsettled columns after 3 bootstraps"
    assert set(rounds[0]["pending"]) != set(labels), "and settled ones"
    for name, got in final["columns"].items():
        k = got["n_bootstraps"]
        assert k in (3, 6, 10)
        alone = summarise(
            fixed(k),
            {name: labels[name]},
            [files[name, b] for b in range(k)],
            fingerprint="fp",
        )[0]
        # the same bits as a fixed run with the bootstraps the column got
        assert {key: v for key, v in got.items() if key != "n_bootstraps_reason"} == alone["columns"][name]
        assert final["ari"][name] == alone["ari"][name]
        assert got["n_bootstraps_reason"].startswith("round 1: 3, ")
        assert (k == 3) == got["n_bootstraps_reason"].endswith("round 1: 3, settled")
    placement = {n: (n.split("_")[0], float(n.split("_")[1])) for n in labels}
    full = summarise(fixed(10), labels, [files[name, b] for name in labels for b in range(10)], fingerprint="fp")[0]

    def entries(doc):
        return {
            n: {**e, "level": 1, "algorithm": placement[n][0], "run_resolution": placement[n][1], "column": n}
            for n, e in doc["columns"].items()
        }

    assert recommend(entries(final)) == recommend(entries(full))


def test_a_settled_column_that_opens_again_gets_the_bootstraps_it_skipped(boots, monkeypatch, tmp_path):
    """A column settled after round 1 that a later decision opens again (another column's interval moved) gets
    bootstraps from its count, not from the round's start: found with 20 resolutions, where round 3 gave such a
    column bootstraps 6-9 on top of 0-2 and the summary refused it."""
    import scclust.stability_summary as summary

    cfg, labels, files, _ = boots
    real = summary.pending
    calls = []

    def reopen(columns, placement):
        more = real(columns, placement)
        calls.append(set(more))
        if len(calls) == 2:  # after round 2: open a column settled after round 1
            settled = sorted(n for n in columns if columns[n]["n_bootstraps"] == 3)[0]
            more[settled] = "opened again for the test"
        return more

    monkeypatch.setattr(summary, "pending", reopen)
    rounds = run_rounds(cfg, labels, files, tmp_path)
    reopened = sorted(set(rounds[1]["pending"]) - calls[0])[0]
    alg, res = reopened.split("_")[0], float(reopened.split("_")[1])
    groups = dict((start, indices) for start, indices in rounds[1]["pending_batches"][alg])
    assert cfg.resolutions.index(res) in groups[3]  # from its 3 bootstraps, where the others start at 6
    final = rounds[-1]["columns"][reopened]
    assert final["n_bootstraps"] == 10
    assert final["n_bootstraps_reason"].startswith("round 1: 3, settled; after round 2, more again: opened again")


def test_a_round_refuses_bootstraps_it_was_not_given(boots):
    cfg, labels, files, tmp = boots
    first = [files[name, b] for name in labels for b in range(3)]
    doc, state = summarise(cfg, labels, first, fingerprint="fp")
    save_state(state, tmp / "first.npz")
    settled = sorted(set(labels) - set(doc["pending"]))[0]
    with pytest.raises(UserError, match=f"column '{settled}' has 6 of 3 bootstraps"):
        summarise(
            cfg,
            labels,
            [files[settled, b] for b in range(3, 6)],
            fingerprint="fp",
            round_number=2,
            previous=(doc, tmp / "first.npz"),
        )
    # a bootstrap given twice (a file staged twice, or a round's file for a bootstrap kept from before) is refused
    with pytest.raises(UserError, match="bootstrap 0 was given twice"):
        summarise(cfg, labels, [*first, files[settled, 0]], fingerprint="fp")
