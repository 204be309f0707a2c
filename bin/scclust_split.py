#!/usr/bin/env python3
"""Plan the next level: write one batch file per group of parent clusters to re-cluster."""

import click

from scclust.cli import config_option, user_errors
from scclust.config import load_config
from scclust.hierarchy import write_batches
from scclust.results import read_results


@click.command()
@click.option("--result", required=True, type=click.Path(exists=True), help="result file of the parent level")
@config_option
@click.option("--outdir", required=True, type=click.Path())
@user_errors
def main(result: str, config_path: str, outdir: str) -> None:
    """Write <column>.<batch>.json files for every column that has a next level."""
    cfg = load_config(config_path)
    _, columns = read_results(result)
    for column in columns:
        level = int(column.params["level"]) + 1
        if level <= cfg.depth:
            write_batches(column, cfg, level, outdir)


if __name__ == "__main__":
    main()
