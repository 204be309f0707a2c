#!/usr/bin/env python3
"""A dataset's stability from all its bootstrap files, once: stability.json for MERGE and REPORT."""

import click

from scclust.cli import config_option, dataset_option, read_json, user_errors, versions_option, write_versions
from scclust.config import load_config
from scclust.stability_summary import level1_labels, summarise, write_summary


@click.command()
@config_option
@dataset_option
@click.option("--result", "results", multiple=True, required=True, type=click.Path(exists=True), help="a CLUSTER file (repeat)")
@click.option("--out", required=True, type=click.Path())
@versions_option
@click.argument("bootstraps", nargs=-1, required=True, type=click.Path(exists=True))
@user_errors
def main(
    config_path: str, dataset_path: str, results: tuple[str, ...], out: str, versions: str, bootstraps: tuple[str, ...]
) -> None:
    """Write the stability of every level-1 column, with standard errors, from the BOOTSTRAPS files."""
    cfg = load_config(config_path)
    fingerprint = read_json(dataset_path)["obs_fingerprint"]
    labels = level1_labels(list(results), fingerprint)
    doc = summarise(list(bootstraps), labels, n_bootstraps=cfg.stability_bootstraps, fingerprint=fingerprint)
    write_summary(doc, out)
    write_versions(versions, "scclust_stability_summary.py")


if __name__ == "__main__":
    main()
