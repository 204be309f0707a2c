"""Typed, validated view of the pipeline parameters that the Python steps use."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from scclust.clustering import EXTRA_ARGS, ClusterSpec, column_name, parse_algorithms, parse_resolutions
from scclust.errors import UserError
from scclust.integrate import INTEGRATIONS, OBSM_KEYS, validate_integration_args

# Keys a --hierarchy level may set besides the clustering extras of EXTRA_ARGS.
LEVEL_KEYS = frozenset({"resolution", "flavor", "n_iterations", "seed", "n_neighbors", "min_cluster_size"})
SUBCLUSTER_GRAPHS = ("recompute", "induced")


@dataclass(frozen=True)
class LevelArgs:
    """Arguments of one hierarchy level; ``None`` means "as the run" (the level-1 value)."""

    resolution: float | None = None
    flavor: str | None = None
    n_iterations: int | None = None
    seed: int | None = None
    n_neighbors: int | None = None
    min_cluster_size: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    """Parameters of one run, validated."""

    algorithms: list[str]
    resolutions: list[float]
    neighbors_key: str = "neighbors"
    recompute_neighbors: bool = False
    n_neighbors: int = 15
    use_rep: str = "X_pca"
    n_pcs: int = 50
    pca_layer: str | None = None
    seed: int = 0
    flavor: str = "igraph"
    n_iterations: int = 2
    clustering_args: Mapping[str, Any] = field(default_factory=dict)
    depth: int = 1
    levels: Mapping[int, LevelArgs] = field(default_factory=dict)
    resolutions_per_task: int = 5
    subcluster_graph: str = "recompute"
    min_cluster_size: int | None = None
    subcluster_batch_cells: int = 20_000
    exact_knn_max_cells: int = 50_000
    overwrite: bool = False
    recompute_umap: bool = False
    umap_colors: list[str] = field(default_factory=list)
    use_gpu: bool = False
    n_cell_cpu: int = 100_000
    max_cluster_factor: float = 50.0
    max_singleton_fraction: float = 0.5
    integration: str = "none"
    batch_key: str | None = None
    n_top_genes: int = 2000
    counts_layer: str = "counts"
    n_latent: int = 30
    scvi_max_epochs: int | None = None
    integration_args: Mapping[str, Any] = field(default_factory=dict)

    def level_args(self, level: int) -> LevelArgs:
        """Arguments of ``level`` (empty when the level only inherits)."""
        return self.levels.get(level, LevelArgs())

    def spec(self, algorithm: str, resolution: float, level: int = 1) -> ClusterSpec:
        """The clustering spec of one column at one level: run arguments overlaid with the level's."""
        args = self.level_args(level)
        flavor = args.flavor or self.flavor
        if algorithm == "louvain":
            flavor = "igraph"
        extra = {**self.clustering_args, **args.extra}
        allowed = EXTRA_ARGS[(algorithm, flavor)]
        # clustering_args that only make sense for the other algorithm are not an error in a both-algorithm run
        if len(self.algorithms) > 1:
            extra = {k: v for k, v in extra.items() if k in allowed or k in args.extra}
        return ClusterSpec(
            algorithm=algorithm,
            resolution=args.resolution if args.resolution is not None else resolution,
            flavor=flavor,
            n_iterations=args.n_iterations if args.n_iterations is not None else self.n_iterations,
            seed=args.seed if args.seed is not None else self.seed,
            extra=extra,
        )

    def level_n_neighbors(self, level: int) -> int:
        """KNN size used to re-cluster at ``level``."""
        value = self.level_args(level).n_neighbors
        return value if value is not None else self.n_neighbors

    def level_min_cluster_size(self, level: int) -> int:
        """Clusters smaller than this are not split at ``level`` (default 2 x n_neighbors)."""
        value = self.level_args(level).min_cluster_size
        if value is None:
            value = self.min_cluster_size
        return value if value is not None else 2 * self.level_n_neighbors(level)

    def columns(self) -> list[str]:
        """Every column the run writes, all levels."""
        return [column_name(a, r, level) for a in self.algorithms for r in self.resolutions for level in range(1, self.depth + 1)]

    def resolution_batches(self) -> list[list[int]]:
        """Positions in ``resolutions`` clustered per level-1 task, dealt round-robin (``0,2,4`` / ``1,3,5``).

        Low resolutions take longer than high ones, so dealing them out gives every task a similar mix.
        """
        n_batches = math.ceil(len(self.resolutions) / self.resolutions_per_task)
        return [list(range(b, len(self.resolutions), n_batches)) for b in range(n_batches)]

    def plan(self) -> dict[str, Any]:
        """What the Nextflow side fans out, derived from validated values only (it never parses raw params)."""
        n_level_results = len(self.algorithms) * len(self.resolutions) * (self.depth - 1)
        batches = [",".join(map(str, b)) for b in self.resolution_batches()]
        return {
            "algorithms": self.algorithms,
            "batches": batches,
            "depth": self.depth,
            "n_level_results": n_level_results,
            "n_results": len(self.algorithms) * len(batches) + n_level_results,
        }

    def to_json(self) -> dict[str, Any]:
        """JSON form (the normalised config every task reads)."""
        out = asdict(self)
        out["levels"] = {str(k): asdict(v) for k, v in self.levels.items()}
        return out


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise UserError(f"--{name} must be true or false, got {value!r}")


def _as_int(name: str, value: Any, minimum: int | None = None) -> int:
    try:
        if isinstance(value, bool) or float(value) != int(float(value)):
            raise ValueError
        out = int(float(value))
    except (TypeError, ValueError):
        raise UserError(f"--{name} must be an integer, got {value!r}") from None
    if minimum is not None and out < minimum:
        raise UserError(f"--{name} must be at least {minimum}, got {out}")
    return out


def _as_float(name: str, value: Any, minimum: float | None = None) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        out = float(value)
    except (TypeError, ValueError):
        raise UserError(f"--{name} must be a number, got {value!r}") from None
    if minimum is not None and not out > minimum:
        raise UserError(f"--{name} must be greater than {minimum}, got {out}")
    return out


_EXAMPLES = {"hierarchy": "3 or '{1: 0.1, 3: 0.2}'", "clustering_args": "'{\"beta\": 0.01}'"}


def _parse_mapping(name: str, value: Any) -> dict[Any, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    example = _EXAMPLES.get(name, "'{\"key\": value}'")
    try:
        parsed = yaml.safe_load(str(value))  # YAML is a superset of JSON, so both spellings work
    except yaml.YAMLError:
        raise UserError(f"--{name} is not valid JSON/YAML: {value!r}; pass e.g. {example}") from None
    if parsed is None:
        return {}
    if not isinstance(parsed, Mapping):
        kind = "an integer depth or a mapping" if name == "hierarchy" else "a mapping"
        raise UserError(f"--{name} must be {kind}, got {value!r}; pass e.g. {example}")
    return dict(parsed)


def parse_hierarchy(value: Any) -> tuple[int, dict[int, LevelArgs]]:
    """Parse ``--hierarchy``: absent, an integer depth, or a mapping ``{level: resolution | {arg: value}}``.

    Returns
    -------
    The depth and the per-level arguments.
    """
    if value is None or value is False or value == "" or value == "null":
        return 1, {}
    if isinstance(value, bool):
        raise UserError("--hierarchy must be an integer depth or a mapping such as '{1: 0.1, 3: 0.2}', got true")
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        depth = _as_int("hierarchy", value, minimum=1)
        return depth, {}
    mapping = _parse_mapping("hierarchy", value)
    if not mapping:
        return 1, {}
    levels: dict[int, LevelArgs] = {}
    for key, spec in mapping.items():
        try:
            level = int(str(key))
        except ValueError:
            raise UserError(f"--hierarchy: level {key!r} is not an integer; key levels as 1, 2, 3 ...") from None
        if level < 1:
            raise UserError(f"--hierarchy: level {level} must be 1 or more")
        if isinstance(spec, Mapping):
            args = dict(spec)
        elif spec is None:
            args = {}
        else:
            args = {"resolution": spec}
        levels[level] = _level_args(level, args)
    return max(levels), levels


def _level_args(level: int, args: dict[str, Any]) -> LevelArgs:
    name = f"hierarchy level {level}"
    extra_keys = frozenset().union(*EXTRA_ARGS.values())
    unknown = set(args) - LEVEL_KEYS - extra_keys
    if unknown:
        allowed = ", ".join(sorted(LEVEL_KEYS | extra_keys))
        raise UserError(f"--{name}: unknown argument(s) {', '.join(sorted(unknown))}; allowed: {allowed}")
    resolution = args.get("resolution")
    if resolution is not None:
        resolution = parse_resolutions(str(resolution))[0]
    return LevelArgs(
        resolution=resolution,
        flavor=str(args["flavor"]) if "flavor" in args else None,
        n_iterations=_as_int(name + " n_iterations", args["n_iterations"], -1) if "n_iterations" in args else None,
        seed=_as_int(name + " seed", args["seed"], 0) if "seed" in args else None,
        n_neighbors=_as_int(name + " n_neighbors", args["n_neighbors"], 2) if "n_neighbors" in args else None,
        min_cluster_size=(
            _as_int(name + " min_cluster_size", args["min_cluster_size"], 1) if "min_cluster_size" in args else None
        ),
        extra={k: v for k, v in args.items() if k in extra_keys},
    )


def config_from_params(params: Mapping[str, Any]) -> Config:
    """Validate pipeline parameters (as Nextflow passes them) into a :class:`Config`.

    Raises
    ------
    UserError
        Naming the parameter and the fix, for any invalid value.
    """
    p = dict(params)
    algorithms = parse_algorithms(p.get("algorithm", "leiden"))
    resolutions = parse_resolutions(p.get("resolutions", "1.0"))
    depth, levels = parse_hierarchy(p.get("hierarchy"))
    level1 = levels.get(1)
    if level1 is not None and level1.resolution is not None:
        if len(resolutions) > 1:
            raise UserError(
                "--hierarchy sets a level-1 resolution but --resolutions lists several; "
                "set level-1 resolutions with --resolutions only"
            )
        resolutions = [level1.resolution]
        levels[1] = replace(level1, resolution=None)
    clustering_args = _parse_mapping("clustering_args", p.get("clustering_args"))
    for reserved in ("resolution", "n_iterations", "flavor", "random_state", "seed"):
        if reserved in clustering_args:
            raise UserError(
                f"--clustering_args must not set {reserved!r}; use --{reserved if reserved != 'random_state' else 'seed'}"
            )
    subcluster_graph = str(p.get("subcluster_graph", "recompute"))
    if subcluster_graph not in SUBCLUSTER_GRAPHS:
        raise UserError(f"--subcluster_graph {subcluster_graph!r} is not supported; use recompute or induced")
    integration = str(p.get("integration") or "none")
    if integration not in INTEGRATIONS:
        raise UserError(f"--integration {integration!r} is not supported; use one of: {', '.join(INTEGRATIONS)}")
    batch_key = str(p["batch_key"]) if p.get("batch_key") not in (None, "") else None
    if integration != "none" and batch_key is None:
        raise UserError(f"--integration {integration} needs --batch_key: the obs column that names each cell's batch")
    integration_args = validate_integration_args(integration, _parse_mapping("integration_args", p.get("integration_args")))
    # the graph is built on the integrated embedding unless --use_rep names another one
    use_rep = str(p.get("use_rep") or OBSM_KEYS.get(integration, "X_pca"))
    scvi_max_epochs = p.get("scvi_max_epochs")
    umap_colors = [c.strip() for c in str(p.get("umap_colors") or "").split(",") if c.strip()]
    min_cluster_size = p.get("min_cluster_size")
    cfg = Config(
        algorithms=algorithms,
        resolutions=resolutions,
        neighbors_key=str(p.get("neighbors_key", "neighbors")),
        recompute_neighbors=integration != "none" or _as_bool("recompute_neighbors", p.get("recompute_neighbors", False)),
        n_neighbors=_as_int("n_neighbors", p.get("n_neighbors", 15), minimum=2),
        use_rep=use_rep,
        n_pcs=_as_int("n_pcs", p.get("n_pcs", 50), minimum=1),
        pca_layer=str(p["pca_layer"]) if p.get("pca_layer") else None,
        seed=_as_int("seed", p.get("seed", 0), minimum=0),
        flavor=str(p.get("flavor", "igraph")),
        n_iterations=_as_int("n_iterations", p.get("n_iterations", 2), minimum=-1),
        clustering_args=clustering_args,
        depth=depth,
        levels=levels,
        resolutions_per_task=_as_int("resolutions_per_task", p.get("resolutions_per_task", 5), minimum=1),
        subcluster_graph=subcluster_graph,
        subcluster_batch_cells=_as_int("subcluster_batch_cells", p.get("subcluster_batch_cells", 20_000), minimum=1),
        min_cluster_size=_as_int("min_cluster_size", min_cluster_size, 1) if min_cluster_size not in (None, "") else None,
        exact_knn_max_cells=_as_int("exact_knn_max_cells", p.get("exact_knn_max_cells", 50_000), minimum=0),
        overwrite=_as_bool("overwrite", p.get("overwrite", False)),
        recompute_umap=_as_bool("recompute_umap", p.get("recompute_umap", False)),
        umap_colors=umap_colors,
        use_gpu=_as_bool("use_gpu", p.get("use_gpu", False)),
        n_cell_cpu=_as_int("n_cell_cpu", p.get("n_cell_cpu", 100_000), minimum=0),
        max_cluster_factor=_as_float("max_cluster_factor", p.get("max_cluster_factor", 50), minimum=0),
        max_singleton_fraction=_as_float("max_singleton_fraction", p.get("max_singleton_fraction", 0.5), minimum=0),
        integration=integration,
        batch_key=batch_key,
        n_top_genes=_as_int("n_top_genes", p.get("n_top_genes", 2000), minimum=1),
        counts_layer=str(p.get("counts_layer") or "counts"),
        n_latent=_as_int("n_latent", p.get("n_latent", 30), minimum=1),
        scvi_max_epochs=_as_int("scvi_max_epochs", scvi_max_epochs, 1) if scvi_max_epochs not in (None, "") else None,
        integration_args=integration_args,
    )
    if cfg.n_iterations == 0:
        raise UserError("--n_iterations must be positive or -1 (until stable), got 0")
    # Build every spec once so that a bad flavor or clustering argument fails here, before any task runs.
    for algorithm in cfg.algorithms:
        for resolution in cfg.resolutions:
            for level in range(1, cfg.depth + 1):
                cfg.spec(algorithm, resolution, level)
    return cfg


def load_config(path: str | Path) -> Config:
    """Read the normalised config written by ``scclust_preflight.py``."""
    with Path(path).open() as fh:
        data = json.load(fh)
    levels = {int(k): LevelArgs(**v) for k, v in data.pop("levels").items()}
    return Config(**{**data, "levels": levels})


_MEMORY_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_memory(text: str) -> int:
    """Bytes of a Nextflow memory size (``8.GB``, ``'16 GB'``, ``500MB``; units of 1024, as Nextflow reads them)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\.?\s*([KMGT]?)B\s*", str(text))
    if not match:
        raise UserError(f"--max_memory must be a memory size such as 8.GB or '16 GB', got {text!r}")
    return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2)])


def check_local_resources(params: Mapping[str, Any]) -> None:
    """With the local executor, refuse caps this machine cannot meet (Nextflow would fail a task later, naming none).

    Raises
    ------
    UserError
        Naming ``--max_memory`` or ``--max_cpus`` and a value that fits.
    """
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    wanted = parse_memory(params.get("max_memory", "8.GB"))
    if wanted > total:
        fits = max(1, int(total / (1 << 30)))
        raise UserError(
            f"--max_memory {params.get('max_memory')} is more than this machine's {total / (1 << 30):.1f} GB "
            f"(local executor); pass --max_memory {fits}.GB or less"
        )
    cores = len(os.sched_getaffinity(0))
    cpus = _as_int("max_cpus", params.get("max_cpus", 2), minimum=1)
    if cpus > cores:
        raise UserError(f"--max_cpus {cpus} is more than this machine's {cores} cores (local executor); pass --max_cpus {cores}")
