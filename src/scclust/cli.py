"""Shared plumbing of the bin/ commands: one-line errors, JSON in and out, versions.yml."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from scclust.errors import UserError
from scclust.provenance import package_versions
from scclust.results import atomic_path

F = TypeVar("F", bound=Callable[..., Any])

# Staged path -> the path the user gave. Tasks read inputs through Nextflow's staging links (input/pbmc.h5ad), but
# a message must name the file as the user wrote it.
DISPLAY_PATHS: dict[str, str] = {}


# Options the task commands share: PREFLIGHT's config.json and dataset.json, and where versions.yml goes.
config_option = click.option(
    "--config", "config_path", required=True, type=click.Path(exists=True), help="config.json written by PREFLIGHT"
)
dataset_option = click.option(
    "--dataset", "dataset_path", required=True, type=click.Path(exists=True), help="dataset.json written by PREFLIGHT"
)
versions_option = click.option("--versions", default="versions.yml", show_default=True, help="where versions.yml goes")


def user_errors(fn: F) -> F:
    """Print a :class:`UserError` as one ``ERROR:`` line on stderr and exit with its code; no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            message = str(err)
            for staged, given in DISPLAY_PATHS.items():
                message = message.replace(staged, given)
            click.echo(f"ERROR: {message}", err=True)
            sys.exit(err.exit_code)

    return wrapper  # type: ignore[return-value]


def read_json(path: str | Path) -> Any:
    """Load a JSON file."""
    with Path(path).open() as fh:
        return json.load(fh)


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically, keys sorted so that reruns give identical bytes."""
    tmp = atomic_path(path)
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def write_versions(path: str | Path, process: str, extra: tuple[str, ...] = ()) -> None:
    """nf-core style ``versions.yml``: the process name, then package: version lines (plus ``extra`` packages)."""
    lines = [f'"{process}":'] + [f"    {k}: {v}" for k, v in package_versions(extra).items()]
    Path(path).write_text("\n".join(lines) + "\n")
