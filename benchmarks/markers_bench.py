#!/usr/bin/env python
"""MARKERS (issue 19): one streaming pass against a loop of scanpy's t-test, on stores of ``make_expression.py``.

Subcommands (every timing is a subprocess under ``/usr/bin/time``: imports and reads included, peak RSS of that
process; the 1-minute load average is recorded before each run):

* ``columns``  10 cluster columns for a store, cached next to it as ``<store>.columns.tsv``: from the pipeline
  (``nextflow run main.nf --use_rep X_pca --resolutions 0.2,...,2.0 --stability_bootstraps 0 --markers false``,
  its ``clusters.tsv``), or with ``--like TSV`` from ``bulk_labels`` split at random (seeded) into as many clusters
  as each column of TSV has (for stores too large to cluster in the time at hand).
* ``compare``  alternating pairs (ours, scanpy loop): wall, peak RSS, speedup; the last pair's results compared
  (top-100 order, p-values, scores, logFC, pts) and the planted markers' ranks in the clusters of their type.
* ``scale``    our pass alone on several stores (alternating sizes), wall and peak RSS against the number of cells.

    PY=.venv/bin/python; B=benchmarks/markers_bench.py; D=benchmarks/data
    $PY $B columns --input $D/expr_100k.zarr
    $PY $B compare --input $D/expr_100k.zarr --pairs 3
    $PY $B columns --input $D/expr_1m.zarr --like $D/expr_100k.zarr.columns.tsv
    $PY $B scale --input $D/expr_100k.zarr --input $D/expr_300k.zarr --input $D/expr_1m.zarr --repeats 2
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
PYTHON = os.environ.get("SCCLUST_BENCH_PYTHON", str(ROOT / ".venv" / "bin" / "python"))
RESOLUTIONS = ",".join(f"{0.2 * i:.1f}" for i in range(1, 11))  # 0.2,0.4,...,2.0
N_TOP = 100
FIELDS = ("scores", "pvals", "pvals_adj", "logfoldchanges")


def loadavg() -> str:
    """The 1-, 5- and 15-minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def loads(run: dict[str, Any]) -> str:
    """1-minute load average before/after a run."""
    return f"{run['load'].split()[0]}/{run['load_after'].split()[0]}"


def columns_path(store: Path) -> Path:
    """Where the columns of a store are cached."""
    return store.with_name(store.name + ".columns.tsv")


def read_columns(path: Path) -> pd.DataFrame:
    """A columns TSV (cell id + one column per clustering) with every label as text."""
    return pd.read_csv(path, sep="\t", index_col=0, dtype=str, keep_default_na=False)


def read_labels(path: Path) -> pd.DataFrame:
    """A columns TSV as categoricals (parsed as such: a million cells' labels as text would take ~0.5 GB), categories
    in numeric order when they are numbers (as the pipeline's)."""
    table = pd.read_csv(path, sep="\t", index_col=0, dtype="category", keep_default_na=False)
    table.index = table.index.astype(str)
    for c in table.columns:
        cats = [str(x) for x in table[c].cat.categories]
        table[c] = table[c].cat.rename_categories(cats)
        order = sorted(cats, key=lambda x: (0, int(x), "") if x.isdigit() else (1, 0, x))
        table[c] = table[c].cat.reorder_categories(order)
    return table


def timed(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run cmd under /usr/bin/time; wall and CPU (user + system) seconds, peak RSS (GiB), load averages before and
    after, and its JSON result line."""
    with tempfile.NamedTemporaryFile(suffix=".time") as tf:
        load = loadavg()
        t0 = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M %U %S", "-o", tf.name, *cmd],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wall = time.perf_counter() - t0
        rss_kb, user, system = Path(tf.name).read_text().strip().splitlines()[-1].split()
    if proc.returncode != 0:
        raise click.ClickException(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{proc.stdout[-4000:]}")
    result = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
    cpu = float(user) + float(system)
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_gib": int(rss_kb) / 2**20, "load": load, "load_after": loadavg(), **result}


# ----------------------------------------------------------------------------------------------------------- workers


@click.group()
def cli() -> None:
    """MARKERS benchmarks (issue 19)."""


@cli.command("_ours", hidden=True)
@click.option("--input", "store", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--columns", "cols_tsv", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--out", type=click.Path(path_type=Path), default=None)
def worker_ours(store: Path, cols_tsv: Path, out: Path | None) -> None:
    """check_markers_input + plan_markers + compute on all columns; time split into read, normalise, accumulate."""
    t0 = time.perf_counter()
    import scclust.markers_io as mio
    from scclust import io
    from scclust.markers import Column

    try:  # the pass moved to markers_pass; older trees (A/B runs) have it in markers_io
        import scclust.markers_pass as mpass
    except ImportError:
        mpass = mio

    t_import = time.perf_counter()
    spent = {"read_rows": 0.0, "normalise_counts": 0.0, "accumulate_block": 0.0}

    def timer(name: str, fn: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - t

        return wrapped

    for name in spent:
        setattr(mpass, name, timer(name, getattr(mpass, name)))
    table = read_labels(cols_tsv)
    with io.open_store(store) as root:
        n_obs = io.n_obs(root)
        if not np.array_equal(io.read_obs_names(root, store).astype(str), table.index.astype(str)):
            raise click.ClickException(f"{cols_tsv}: cell ids differ from {store}'s")
        info = mio.check_markers_input(root, store, layer=None, gene_symbols=None, n_obs=n_obs)
    columns = [Column(name=c, labels=table[c].array, level=1, parent=None) for c in table.columns]
    info |= mio.plan_markers(info, n_obs=n_obs, n_columns=len(columns))
    t_setup = time.perf_counter()
    _, rankings = mio.compute(store, info, columns)
    t_compute = time.perf_counter()
    if out is not None:
        arrays: dict[str, np.ndarray] = {}
        for c in columns:
            r = rankings[c.name][0]
            top = r.top(N_TOP)
            rows = np.arange(len(r.groups))[:, None]
            arrays[f"{c.name}/groups"] = np.asarray(r.groups, dtype=str)
            arrays[f"{c.name}/top"] = top
            for f in FIELDS:
                arrays[f"{c.name}/{f}"] = getattr(r, f)[rows, top]
            arrays[f"{c.name}/pts"] = r.pts
            arrays[f"{c.name}/pts_rest"] = r.pts_rest
        np.savez(out, **arrays)
    result = {
        "import_s": t_import - t0,
        "setup_s": t_setup - t_import,
        "compute_s": t_compute - t_setup,
        **{f"{k}_s": v for k, v in spent.items()},
        "n_obs": n_obs,
        "n_vars": info["n_vars"],
        "stored_entries": info["stored_entries"],
        "n_clusters": int(sum(table[c].nunique() for c in table.columns)),
        "sums_budget": info["sums_budget"],
        "memory_bytes_planned": info["memory_bytes"],
        "chunk_rows": mio.chunk_rows(info, n_obs) if hasattr(mio, "chunk_rows") else None,
    }
    print("RESULT " + json.dumps(result))


@cli.command("_scanpy", hidden=True)
@click.option("--input", "store", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--columns", "cols_tsv", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--out", type=click.Path(path_type=Path), default=None)
def worker_scanpy(store: Path, cols_tsv: Path, out: Path | None) -> None:
    """read_zarr, normalize_total(1e4) + log1p, then sc.tl.rank_genes_groups(t-test, pts) per column."""
    t0 = time.perf_counter()
    import warnings

    import anndata as ad
    import scanpy as sc

    t_import = time.perf_counter()
    adata = ad.read_zarr(store)
    t_read = time.perf_counter()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    t_norm = time.perf_counter()
    table = read_labels(cols_tsv)
    if not np.array_equal(adata.obs_names.astype(str), table.index.astype(str)):
        raise click.ClickException(f"{cols_tsv}: cell ids differ from {store}'s")
    per_col = []
    arrays: dict[str, np.ndarray] = {}
    for c in table.columns:
        t = time.perf_counter()
        adata.obs[c] = table[c].array
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc.tl.rank_genes_groups(adata, c, method="t-test", pts=True, key_added=f"rgg_{c}")
        per_col.append(time.perf_counter() - t)
        entry = adata.uns[f"rgg_{c}"]
        groups = list(entry["names"].dtype.names)
        arrays[f"{c}/groups"] = np.asarray(groups, dtype=str)
        # scanpy lists every gene (n_genes=None); the top N_TOP are compared
        arrays[f"{c}/names"] = np.stack([np.asarray(entry["names"][g][:N_TOP], dtype=str) for g in groups])
        for f in FIELDS:
            arrays[f"{c}/{f}"] = np.stack([np.asarray(entry[f][g][:N_TOP]) for g in groups])
        arrays[f"{c}/pts"] = entry["pts"].loc[adata.var_names, groups].to_numpy().T
        arrays[f"{c}/pts_rest"] = entry["pts_rest"].loc[adata.var_names, groups].to_numpy().T
    t_end = time.perf_counter()
    if out is not None:
        np.savez(out, **arrays)
    result = {
        "import_s": t_import - t0,
        "read_s": t_read - t_import,
        "normalise_s": t_norm - t_read,
        "rank_s": t_end - t_norm,
        "per_column_s": per_col,
    }
    print("RESULT " + json.dumps(result))


# ------------------------------------------------------------------------------------------------------------ columns


def pipeline_columns(store: Path, workdir: Path, resolutions: str) -> tuple[pd.DataFrame, float]:
    """The pipeline's clusters.tsv (level 1, one column per resolution) and the wall time of the run."""
    workdir.mkdir(parents=True, exist_ok=True)
    outdir = workdir / "out"
    cmd = ["nextflow", "run", str(ROOT / "main.nf"), "-ansi-log", "false", "-w", str(workdir / "work"),
           "--input", str(store.resolve()), "--outdir", str(outdir), "--use_rep", "X_pca", "--resolutions", resolutions,
           "--stability_bootstraps", "0", "--markers", "false"]  # fmt: skip
    env = dict(os.environ)
    env["PATH"] = f"{Path(PYTHON).parent}:{env['PATH']}"
    env.setdefault("NXF_HOME", str(ROOT / ".nextflow-home"))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    (workdir / "nextflow.stdout").write_text(proc.stdout)
    if proc.returncode != 0:
        raise click.ClickException(f"pipeline failed ({proc.returncode}), see {workdir}\n{proc.stdout[-4000:]}")
    tsv = next(outdir.glob("*/clusters.tsv"))
    return read_columns(tsv), wall


def split_columns(store: Path, like: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Columns from bulk_labels, each split at random (seeded) into as many clusters as the matching column of LIKE.

    A column of K >= 10 clusters gives each of the 10 types ``1 + extra`` random parts, the K - 10 extra parts going
    to the types by size (largest remainder); a column of K < 10 merges types ``i`` and ``i + K``.
    """
    from scclust import io

    with io.open_store(store) as root:
        names = io.read_obs_names(root, store).astype(str)
        bulk = pd.Series(np.asarray(io.read_obs_column(root, "bulk_labels", store)).astype(str), index=names)
    types = sorted(bulk.unique())
    code = bulk.map({t: i for i, t in enumerate(types)}).to_numpy()
    sizes = np.bincount(code, minlength=len(types))
    out = {}
    for k, name in enumerate(like.columns):
        n_clusters = like[name].nunique()
        rng = np.random.default_rng([seed, k])
        if n_clusters <= len(types):
            labels = code % n_clusters
        else:
            share = sizes / sizes.sum() * (n_clusters - len(types))
            parts = np.floor(share).astype(int)
            parts[np.argsort(share - parts)[::-1][: n_clusters - len(types) - parts.sum()]] += 1
            parts += 1
            offset = np.concatenate([[0], np.cumsum(parts)[:-1]])
            labels = offset[code] + (rng.random(len(code)) * parts[code]).astype(int)
        out[name] = labels.astype(str)
    return pd.DataFrame(out, index=pd.Index(names, name="cell_id"))


@cli.command()
@click.option("--input", "store", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--resolutions", default=RESOLUTIONS, show_default=True)
@click.option("--like", type=click.Path(exists=True, path_type=Path), default=None, help="Split bulk_labels like these columns.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("/tmp/markers-bench"), show_default=True)
@click.option("--force", is_flag=True, help="Recompute even if the cached TSV exists.")
def columns(store: Path, resolutions: str, like: Path | None, seed: int, workdir: Path, force: bool) -> None:
    """10 cluster columns for STORE, cached as <store>.columns.tsv."""
    target = columns_path(store)
    if target.exists() and not force:
        click.echo(f"{target} exists; reusing it (--force to recompute)")
        table = read_columns(target)
    else:
        load = loadavg()
        if like is None:
            table, wall = pipeline_columns(store, workdir / f"columns-{store.stem}", resolutions)
            how = f"pipeline, {wall:.0f} s, load before {load}"
        else:
            table = split_columns(store, read_columns(like), seed)
            how = f"bulk_labels split like {like}"
        table.to_csv(target, sep="\t")
        click.echo(f"wrote {target} ({how})")
    click.echo("clusters per column: " + ", ".join(f"{c} {table[c].nunique()}" for c in table.columns))


# ------------------------------------------------------------------------------------------------------------ compare


def equality_table(ours: Path, theirs: Path, genes: np.ndarray) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per column: same top-100 order (exact ties allowed), max rel. diff of p-values, float32 equality, pts equal."""
    rows = []
    with np.load(ours) as a, np.load(theirs) as b:
        for key in sorted({k.split("/")[0] for k in a.files}):
            groups = list(a[f"{key}/groups"])
            if groups != list(b[f"{key}/groups"]):
                raise click.ClickException(f"{key}: groups differ")
            mine_names = genes[a[f"{key}/top"]]
            names = b[f"{key}/names"]
            same = mine_names == names
            # a differing position is fine when scanpy's scores there are exact ties (same order up to ties)
            tied = 0
            for i, j in zip(*np.nonzero(~same), strict=True):
                s = b[f"{key}/scores"][i]
                if np.sum(s == s[j]) > 1:
                    tied += 1
            rel = {}
            for f in ("pvals", "pvals_adj"):
                x, y = a[f"{key}/{f}"], b[f"{key}/{f}"]
                with np.errstate(invalid="ignore", divide="ignore"):
                    d = np.where(x == y, 0.0, np.abs(x - y) / np.maximum(np.abs(y), np.finfo(float).tiny))
                rel[f] = float(np.max(d))
            eq32 = {
                f: float(np.mean(a[f"{key}/{f}"].astype(np.float32) == b[f"{key}/{f}"])) for f in ("scores", "logfoldchanges")
            }
            rows.append(
                {
                    "column": key,
                    "clusters": len(groups),
                    "top-100 positions differing": int((~same).sum()),
                    "of them exact ties": tied,
                    "max rel diff pvals": rel["pvals"],
                    "max rel diff pvals_adj": rel["pvals_adj"],
                    "scores equal (float32)": eq32["scores"],
                    "logFC equal (float32)": eq32["logfoldchanges"],
                    "pts equal": bool(np.array_equal(a[f"{key}/pts"], b[f"{key}/pts"])),
                    "pts_rest equal": bool(np.array_equal(a[f"{key}/pts_rest"], b[f"{key}/pts_rest"])),
                }
            )
    table = pd.DataFrame(rows)
    summary = {
        "max_rel_pvals": float(table["max rel diff pvals"].max()),
        "max_rel_pvals_adj": float(table["max rel diff pvals_adj"].max()),
        "order_differences_not_ties": int((table["top-100 positions differing"] - table["of them exact ties"]).sum()),
        "scores_equal_fraction": float(table["scores equal (float32)"].min()),
        "lfc_equal_fraction": float(table["logFC equal (float32)"].min()),
        "pts_all_equal": bool(table["pts equal"].all() and table["pts_rest equal"].all()),
    }
    return table, summary


def planted_tables(store: Path, cols_tsv: Path, ours: Path, genes: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per column, how well clusters match bulk_labels (ARI, majority purity); per type, its markers' ranks there."""
    from sklearn.metrics import adjusted_rand_score

    from scclust import io

    with io.open_store(store) as root:
        bulk = np.asarray(io.read_obs_column(root, "bulk_labels", store)).astype(str)
        planted = io.read_uns_entry(root, "planted_markers")
    table = read_columns(cols_tsv)
    rank_of = {g: i for i, g in enumerate(genes)}
    summary, ranks = [], []
    with np.load(ours) as a:
        for c in table.columns:
            labels = table[c].to_numpy()
            crosstab = pd.crosstab(labels, bulk)
            majority = crosstab.idxmax(axis=1)
            purity = crosstab.max(axis=1) / crosstab.sum(axis=1)
            groups = list(a[f"{c}/groups"])
            top = a[f"{c}/top"]
            in_top10 = n_pairs = 0
            for i, g in enumerate(groups):
                t = majority[g]
                order = list(top[i])
                mk = sorted(m for m, tt in planted.items() if tt == t)
                r = [order.index(rank_of[m]) + 1 if rank_of[m] in order else None for m in mk]
                n_pairs += len(r)
                in_top10 += sum(1 for x in r if x is not None and x <= 10)
                ranks.append(
                    {"column": c, "cluster": g, "cells": int(crosstab.loc[g].sum()), "majority type": t,
                     "purity": float(purity[g]), "ranks of its planted markers": r}
                )  # fmt: skip
            summary.append(
                {"column": c, "clusters": len(groups), "ARI vs bulk_labels": adjusted_rand_score(bulk, labels),
                 "types with a majority cluster": int(majority.nunique()), "planted markers in top 10": f"{in_top10}/{n_pairs}"}
            )  # fmt: skip
    return pd.DataFrame(summary), pd.DataFrame(ranks)


def md(df: pd.DataFrame, floatfmt: str = ".3g") -> str:
    """A markdown table."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            cells.append(format(v, floatfmt) if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@cli.command()
@click.option("--input", "store", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--pairs", type=int, default=3, show_default=True)
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("/tmp/markers-bench"), show_default=True)
@click.option("--report-only", is_flag=True, help="Only report the runs saved in WORKDIR (complete pairs).")
def compare(store: Path, pairs: int, workdir: Path, report_only: bool) -> None:
    """Alternate (ours, scanpy loop) PAIRS times on STORE's 10 columns; speed, memory, equality, planted markers."""
    cols_tsv = columns_path(store)
    if not cols_tsv.exists():
        raise click.ClickException(f"{cols_tsv} missing: run `columns --input {store}` first")
    workdir.mkdir(parents=True, exist_ok=True)
    script = str(Path(__file__).resolve())
    log = workdir / f"compare_{store.stem}.json"
    runs = json.loads(log.read_text()) if report_only else []
    for i in range(0 if report_only else pairs):
        for kind in ("ours", "scanpy"):
            out = workdir / f"{kind}_{store.stem}_{i}.npz"
            r = timed([PYTHON, script, f"_{kind}", "--input", str(store), "--columns", str(cols_tsv), "--out", str(out)])
            r |= {"pair": i, "kind": kind, "out": str(out)}
            runs.append(r)
            log.write_text(json.dumps(runs, indent=1))  # after every run, so that --report-only can use a partial series
            click.echo(f"pair {i} {kind}: {r['wall_s']:.1f} s, peak RSS {r['peak_rss_gib']:.2f} GiB, load {r['load']}")
    ours = [r for r in runs if r["kind"] == "ours"]
    theirs = [r for r in runs if r["kind"] == "scanpy"]
    ours = ours[: len(theirs)] if theirs else ours
    if not theirs:
        raise click.ClickException(f"{log}: no complete pair yet")
    speedups = [b["wall_s"] / a["wall_s"] for a, b in zip(ours, theirs, strict=True)]
    timing = pd.DataFrame(
        [
            {"pair": a["pair"], "load before/after (ours)": loads(a),
             "ours wall (s)": a["wall_s"], "ours CPU (s)": a["cpu_s"], "ours peak RSS (GiB)": a["peak_rss_gib"],
             "load before/after (scanpy)": loads(b),
             "scanpy wall (s)": b["wall_s"], "scanpy CPU (s)": b["cpu_s"], "scanpy peak RSS (GiB)": b["peak_rss_gib"],
             "speedup (wall)": s, "speedup (CPU)": b["cpu_s"] / a["cpu_s"]}
            for a, b, s in zip(ours, theirs, speedups, strict=True)
        ]
    )  # fmt: skip
    click.echo("\n" + md(timing))
    cpu_speedups = [b["cpu_s"] / a["cpu_s"] for a, b in zip(ours, theirs, strict=True)]
    click.echo(
        f"\nmedian speedup {np.median(speedups):.1f}x wall (min {min(speedups):.1f}x, max {max(speedups):.1f}x), "
        f"{np.median(cpu_speedups):.1f}x CPU"
    )
    keys = ("pair", "import_s", "setup_s", "read_rows_s", "normalise_counts_s", "accumulate_block_s", "compute_s")
    split = pd.DataFrame([{k: r[k] for k in keys} for r in ours])
    click.echo("\nours, inside the process (s):\n" + md(split))
    split_s = pd.DataFrame([{k: r[k] for k in ("pair", "import_s", "read_s", "normalise_s", "rank_s")} for r in theirs])
    click.echo("\nscanpy, inside the process (s):\n" + md(split_s))
    click.echo("scanpy per column (s), last pair: " + ", ".join(f"{x:.1f}" for x in theirs[-1]["per_column_s"]))

    from scclust import io

    with io.open_store(store) as root:
        genes = np.asarray(read_var_names(root), dtype=str)
    same_runs = all(
        all(np.array_equal(x[k], y[k]) for k in x.files)
        for x, y in ((np.load(ours[0]["out"]), np.load(o["out"])) for o in ours[1:])
    )
    click.echo(f"\nour runs give the same bits every time: {same_runs}")
    eq, summary = equality_table(Path(ours[-1]["out"]), Path(theirs[-1]["out"]), genes)
    click.echo("\nsame numbers (last pair, top 100 genes of every cluster):\n" + md(eq))
    click.echo("summary: " + json.dumps(summary))
    cols, ranks = planted_tables(store, cols_tsv, Path(ours[-1]["out"]), genes)
    click.echo("\nplanted markers per column:\n" + md(cols))
    best = cols.sort_values("ARI vs bulk_labels", ascending=False)["column"].iloc[0]
    click.echo(f"\nbest-matching column {best}: clusters, majority type, ranks of the type's planted markers:\n")
    click.echo(md(ranks[ranks["column"] == best].sort_values(["majority type", "cells"], ascending=[True, False])))
    ranks.to_csv(workdir / f"planted_ranks_{store.stem}.tsv", sep="\t", index=False)


@cli.command()
@click.option("--input", "store", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("/tmp/markers-bench"), show_default=True)
def planted(store: Path, workdir: Path) -> None:
    """The known answer: our pass on the cell types themselves (bulk_labels); each type's planted markers' ranks."""
    from scclust import io

    workdir.mkdir(parents=True, exist_ok=True)
    with io.open_store(store) as root:
        names = io.read_obs_names(root, store).astype(str)
        bulk = np.asarray(io.read_obs_column(root, "bulk_labels", store)).astype(str)
        genes = np.asarray(read_var_names(root), dtype=str)
        markers = io.read_uns_entry(root, "planted_markers")
    tsv = workdir / f"bulk_labels_{store.stem}.tsv"
    pd.DataFrame({"bulk_labels": bulk}, index=pd.Index(names, name="cell_id")).to_csv(tsv, sep="\t")
    out = workdir / f"bulk_labels_{store.stem}.npz"
    r = timed([PYTHON, str(Path(__file__).resolve()), "_ours", "--input", str(store), "--columns", str(tsv), "--out", str(out)])
    click.echo(f"our pass on bulk_labels: {r['wall_s']:.1f} s, peak RSS {r['peak_rss_gib']:.2f} GiB, load {loads(r)}")
    rows = []
    with np.load(out) as a:
        for i, t in enumerate(a["bulk_labels/groups"]):
            order = list(genes[a["bulk_labels/top"][i]])
            mk = sorted(m for m, tt in markers.items() if tt == t)
            ranks = [order.index(m) + 1 if m in order else None for m in mk]
            rows.append({"type": t, "cells": int((bulk == t).sum()), "ranks of its planted markers": ranks,
                         "top 10 genes not planted": ", ".join(g for g in order[:10] if g not in mk)})  # fmt: skip
    click.echo("\n" + md(pd.DataFrame(rows)))


def read_var_names(root: Any) -> pd.Index:
    """The store's var names."""
    from anndata.io import read_elem

    var = root["var"]
    return pd.Index(np.asarray(read_elem(var[var.attrs.get("_index", "_index")]), dtype=object))


# -------------------------------------------------------------------------------------------------------------- scale


@cli.command()
@click.option("--input", "stores", type=click.Path(exists=True, path_type=Path), multiple=True, required=True)
@click.option("--repeats", type=int, default=2, show_default=True)
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("/tmp/markers-bench"), show_default=True)
def scale(stores: tuple[Path, ...], repeats: int, workdir: Path) -> None:
    """Our pass alone on each store (its cached columns), sizes alternating, REPEATS times."""
    workdir.mkdir(parents=True, exist_ok=True)
    script = str(Path(__file__).resolve())
    runs = []
    for i in range(repeats):
        for store in stores:
            cols_tsv = columns_path(store)
            r = timed([PYTHON, script, "_ours", "--input", str(store), "--columns", str(cols_tsv)])
            r |= {"repeat": i, "store": store.name}
            runs.append(r)
            click.echo(f"{store.name} #{i}: {r['wall_s']:.1f} s, peak RSS {r['peak_rss_gib']:.2f} GiB, load {r['load']}")
    (workdir / "scale.json").write_text(json.dumps(runs, indent=1))
    table = pd.DataFrame(
        [
            {"store": r["store"], "repeat": r["repeat"], "load before/after": loads(r), "cells": r["n_obs"],
             "stored entries": r["stored_entries"], "clusters": r["n_clusters"], "chunk rows": r["chunk_rows"],
             "wall (s)": r["wall_s"], "CPU (s)": r["cpu_s"], "read (s)": r["read_rows_s"],
             "normalise (s)": r["normalise_counts_s"], "accumulate (s)": r["accumulate_block_s"],
             "peak RSS (GiB)": r["peak_rss_gib"], "planned (GiB)": r["memory_bytes_planned"] / 2**30,
             "us per stored entry": 1e6 * r["wall_s"] / r["stored_entries"]}
            for r in runs
        ]
    )  # fmt: skip
    click.echo("\n" + md(table))


if __name__ == "__main__":
    cli()
