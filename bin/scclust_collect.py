#!/usr/bin/env python3
"""Join the batches of one level into that level's column."""

import click

from scclust.cli import config_option, dataset_option, read_json, user_errors
from scclust.config import load_config
from scclust.hierarchy import collect_level
from scclust.results import read_column, write_results


@click.command()
@click.option("--parent", required=True, type=click.Path(exists=True), help="result file holding the parent column")
@click.option("--column", required=True, help="parent column name")
@click.option("--level", required=True, type=click.IntRange(min=2))
@config_option
@dataset_option
@click.option("--out", required=True, type=click.Path())
@click.argument("partials", nargs=-1, required=True, type=click.Path(exists=True))
@user_errors
def main(
    parent: str,
    column: str,
    level: int,
    config_path: str,
    dataset_path: str,
    out: str,
    partials: tuple[str, ...],
) -> None:
    """Write a result file with the level's column."""
    dataset = read_json(dataset_path)
    meta, parent_column = read_column(parent, column)
    result = collect_level(parent_column, list(partials), level=level, cfg=load_config(config_path), dataset=dataset)
    write_results(out, [result], n_obs=meta["n_obs"], fingerprint=meta["obs_fingerprint"])


if __name__ == "__main__":
    main()
