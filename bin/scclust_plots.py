#!/usr/bin/env python3
"""PNG plots of the UMAP per cluster column and per --umap_colors column."""

import click

from scclust import io
from scclust.cli import read_json, user_errors
from scclust.config import load_config
from scclust.merge import gather_columns
from scclust.neighbors import read_umap
from scclust.plots import plot_all


@click.command()
@click.option("--input", "input_path", required=True, type=click.Path(exists=True))
@click.option("--config", "config_path", required=True, type=click.Path(exists=True))
@click.option("--dataset", "dataset_path", required=True, type=click.Path(exists=True))
@click.option("--umap", "umap_path", type=click.Path(exists=True), help="umap.npz; else obsm/X_umap of the input")
@click.option("--outdir", required=True, type=click.Path())
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True))
@user_errors
def main(
    input_path: str,
    config_path: str,
    dataset_path: str,
    umap_path: str | None,
    outdir: str,
    results: tuple[str, ...],
) -> None:
    """Write plots/umap_<column>.png."""
    cfg = load_config(config_path)
    dataset = read_json(dataset_path)
    with io.open_store(input_path) as root:
        obs = io.read_obs(root, input_path)
        coords = read_umap(umap_path)[0] if umap_path else io.read_rep(root, "X_umap", input_path)
        earlier = io.read_uns_entry(root, "scclust") or {}
    columns = gather_columns(list(results), dataset, cfg)
    for col in columns:
        obs[col.name] = col.labels
    # a result store fed back in keeps its earlier columns, so its folder shows their plots too
    names = [c for c in earlier.get("columns", []) if c in obs.columns and c not in cfg.columns()]
    plot_all(coords, obs, [*names, *(c.name for c in columns), *cfg.umap_colors], outdir)


if __name__ == "__main__":
    main()
