#!/usr/bin/env python3
"""A dataset's stability after a round of bootstraps: stability.json (and, for the next round, stability.npz)."""

import click

from scclust.cli import config_option, dataset_option, read_json, user_errors, versions_option, write_json, write_versions
from scclust.config import load_config
from scclust.stability_summary import level1_labels, read_summary, save_state, summarise


@click.command()
@config_option
@dataset_option
@click.option("--result", "results", multiple=True, required=True, type=click.Path(exists=True), help="a CLUSTER file (repeat)")
@click.option("--round", "round_number", default=1, show_default=True, type=click.IntRange(min=1), help="the round (1-based)")
@click.option("--previous", nargs=2, type=click.Path(exists=True), help="the previous round's stability.json and .npz")
@click.option("--out", required=True, type=click.Path(), help="stability.json; the comparisons go beside it as .npz")
@versions_option
@click.argument("bootstraps", nargs=-1, required=True, type=click.Path(exists=True))
@user_errors
def main(
    config_path: str,
    dataset_path: str,
    results: tuple[str, ...],
    round_number: int,
    previous: tuple[str, str] | None,
    out: str,
    versions: str,
    bootstraps: tuple[str, ...],
) -> None:
    """Add the round's BOOTSTRAPS files to the earlier rounds'; every level-1 column's stability, and which get more."""
    cfg = load_config(config_path)
    fingerprint = read_json(dataset_path)["obs_fingerprint"]
    labels = level1_labels(list(results), fingerprint)
    earlier = (read_summary(previous[0], fingerprint), previous[1]) if previous else None
    doc, state = summarise(cfg, labels, list(bootstraps), fingerprint=fingerprint, round_number=round_number, previous=earlier)
    save_state(state, out.removesuffix(".json") + ".npz")
    write_json(out, doc)
    write_versions(versions, "scclust_stability_summary.py")


if __name__ == "__main__":
    main()
