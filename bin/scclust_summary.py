#!/usr/bin/env python3
"""The run's report across datasets, from each dataset's summary.json."""

import click

from scclust.cli import read_json, user_errors
from scclust.summary import build_summary


@click.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.argument("summaries", nargs=-1, required=True, type=click.Path(exists=True))
@user_errors
def main(out: str, summaries: tuple[str, ...]) -> None:
    """Write OUT (report.html) from the SUMMARIES of every dataset."""
    build_summary([read_json(s) for s in summaries], out)


if __name__ == "__main__":
    main()
