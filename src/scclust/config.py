"""Typed, validated view of the pipeline parameters that the Python steps use."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scclust.clustering import (
    EXTRA_ARGS,
    EXTRA_RULES,
    FLAVORS,
    SEED_MAX,
    ClusterSpec,
    check_extra,
    column_name,
    format_resolution,
    parse_algorithms,
    parse_resolutions,
)
from scclust.errors import UserError
from scclust.integrate import INTEGRATIONS, OBSM_KEYS, validate_integration_args, validate_integration_rep
from scclust.markers_params import markers_params
from scclust.stability_rounds import round_targets

# Keys a --hierarchy level may set besides the clustering extras of EXTRA_RULES (and random_state, seed's alias).
LEVEL_KEYS = frozenset({"resolution", "flavor", "n_iterations", "seed", "n_neighbors", "min_cluster_size"})
RUN_DEFAULTS = {"seed": 0, "flavor": "igraph", "n_iterations": 2}  # as nextflow.config sets them
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
    resolutions_per_task: int | None = None  # None: "auto", spread over max_cpus
    max_cpus: int = 2
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
    label_columns: list[str] = field(default_factory=list)
    stability_bootstraps: int = 0
    stability_adaptive: bool = True
    subsample_fraction: float = 0.8
    integration: str = "none"
    batch_key: str | None = None
    n_top_genes: int = 2000
    counts_layer: str = "counts"
    integration_rep: str | None = None
    n_latent: int = 30
    scvi_max_epochs: int | None = None
    integration_args: Mapping[str, Any] = field(default_factory=dict)
    markers: bool = True
    markers_layer: str | None = None
    markers_n_genes: int = 100
    markers_task_entries: int = 250_000_000
    gene_symbols: str | None = None

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

    def resolution_batches(self) -> list[list[int]]:
        """Positions in ``resolutions`` that each level-1 task (per algorithm) clusters, on one graph built once.

        ``auto`` makes about ``max_cpus`` tasks over all algorithms, no more than there are resolutions, so every
        core builds the graph once and clusters its share; an integer caps the resolutions per task instead.
        Resolutions are dealt round-robin (0,2,4 / 1,3,5): low resolutions take longer, so each task gets a mix.
        """
        n = len(self.resolutions)
        if self.resolutions_per_task is None:
            n_batches = min(n, max(1, -(-self.max_cpus // len(self.algorithms))))
        else:
            n_batches = -(-n // self.resolutions_per_task)
        return [list(range(b, n, n_batches)) for b in range(n_batches)]

    def level_resolutions(self, resolution: float) -> list[float]:
        """The resolution each level (1 to depth) of the tree named by the run's ``resolution`` really uses."""
        levels = [self.level_args(level).resolution for level in range(1, self.depth + 1)]
        return [resolution if r is None else r for r in levels]

    def level_log(self) -> list[str]:
        """One line per tree for the run's log: the resolution used at each level (empty without a hierarchy)."""
        if self.depth == 1 and not self.levels:
            return []
        levels = "1" if self.depth == 1 else f"{{1..{self.depth}}}"
        lines = []
        for resolution in self.resolutions:
            used = ", ".join(
                f"{format_resolution(r)} at level {level}" for level, r in enumerate(self.level_resolutions(resolution), 1)
            )
            names = ", ".join(column_name(a, resolution, 1)[:-1] + levels for a in self.algorithms)
            lines.append(f"{names}: resolution {used}")
        return lines

    def columns(self) -> list[str]:
        """Every column the run writes, all levels."""
        return [column_name(a, r, level) for a in self.algorithms for r in self.resolutions for level in range(1, self.depth + 1)]

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
            "level_log": self.level_log(),
            "bootstraps": self.stability_bootstraps,
            "rounds": round_targets(self.stability_bootstraps, self.stability_adaptive),
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


def _as_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    try:
        if isinstance(value, bool) or float(value) != int(float(value)):
            raise ValueError
        out = int(float(value))
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"--{name} must be an integer, got {value!r}") from None
    if minimum is not None and out < minimum:
        raise UserError(f"--{name} must be at least {minimum}, got {out}")
    if maximum is not None and out > maximum:
        raise UserError(f"--{name} must be at most {maximum}, got {out}")
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


def _comma_list(name: str, value: Any) -> list[str]:
    items = [c.strip() for c in str(value or "").split(",") if c.strip()]
    repeated = [c for i, c in enumerate(items) if c in items[:i]]
    if repeated:
        raise UserError(f"--{name} lists {repeated[0]!r} twice; list each column once")
    return items


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


def _strict_int(name: str, value: Any, minimum: int, maximum: int, example: str) -> int:
    """An integer from parsed JSON/YAML (no strings: the clustering call would not convert them either)."""
    is_int = isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
    if not is_int or not minimum <= value <= maximum:
        raise UserError(f"{name} must be an integer from {minimum} to {maximum}, got {value!r}; pass e.g. {example}")
    return int(value)


def _clustering_keys(
    where: str, args: Mapping[str, Any], example: Callable[[str, Any], str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split clustering keywords into the run's own arguments (flavor, n_iterations, seed) and checked extras.

    ``random_state`` is scanpy's name of ``seed``. Values are checked by the rules of the call they go to.
    """
    own: dict[str, Any] = {}
    seeds = {k: args[k] for k in ("seed", "random_state") if k in args}
    if len(seeds) == 2 and seeds["seed"] != seeds["random_state"]:
        raise UserError(f"{where} sets seed {seeds['seed']!r} and random_state {seeds['random_state']!r}; set one")
    for key, value in seeds.items():
        own["seed"] = _strict_int(f"{where} {key}", value, 0, SEED_MAX, example(key, 0))
    if "n_iterations" in args:
        valid = example("n_iterations", 2)
        own["n_iterations"] = _strict_int(f"{where} n_iterations", args["n_iterations"], -1, 2**31 - 1, valid)
        if own["n_iterations"] == 0:
            raise UserError(f"{where} n_iterations must be positive or -1 (until stable), got 0; pass e.g. {valid}")
    if "flavor" in args:
        if args["flavor"] not in FLAVORS["leiden"]:
            raise UserError(
                f"{where} flavor must be {' or '.join(FLAVORS['leiden'])}, got {args['flavor']!r}; "
                f"pass e.g. {example('flavor', 'igraph')}"
            )
        own["flavor"] = args["flavor"]
    extra = {k: check_extra(k, v, where, example) for k, v in args.items() if k in EXTRA_RULES}
    return own, extra


def _level_args(level: int, args: dict[str, Any]) -> LevelArgs:
    where = f"--hierarchy level {level}"

    def example(key: str, value: Any) -> str:
        return f"--hierarchy '{{{level}: {{{key}: {json.dumps(value)}}}}}'"

    unknown = set(args) - LEVEL_KEYS - {"random_state"} - set(EXTRA_RULES)
    if unknown:
        allowed = ", ".join(sorted(LEVEL_KEYS | {"random_state"} | set(EXTRA_RULES)))
        raise UserError(f"{where}: unknown argument(s) {', '.join(sorted(unknown))}; allowed: {allowed}")
    resolution = args.get("resolution")
    if resolution is not None:
        resolution = parse_resolutions(str(resolution))[0]
    own, extra = _clustering_keys(where, args, example)
    sizes = {
        key: _strict_int(f"{where} {key}", args[key], minimum, 2**31 - 1, example(key, valid))
        for key, minimum, valid in (("n_neighbors", 2, 15), ("min_cluster_size", 1, 30))
        if key in args
    }
    return LevelArgs(resolution=resolution, **own, **sizes, extra=extra)


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
    # A level's mapping entry changes only that level; the run's resolution names the tree and is used at every
    # level the mapping does not name (scAtlasTb's meaning). Several resolutions with a level-1 override give
    # trees whose level 1 is the same clustering and whose deeper levels differ.
    depth, levels = parse_hierarchy(p.get("hierarchy"))
    clustering_args = _parse_mapping("clustering_args", p.get("clustering_args"))
    if "resolution" in clustering_args:
        raise UserError(
            "--clustering_args must not set 'resolution': list resolutions in --resolutions "
            "(a level's own in --hierarchy, e.g. '{2: 0.3}')"
        )
    own, extra = _clustering_keys(
        "--clustering_args", clustering_args, lambda key, value: f"--clustering_args '{json.dumps({key: value})}'"
    )
    unchecked = {k: v for k, v in clustering_args.items() if k not in own and k not in extra and k != "random_state"}
    run_args = {
        "seed": _as_int("seed", p.get("seed", 0), minimum=0, maximum=SEED_MAX),
        "flavor": str(p.get("flavor", "igraph")),
        "n_iterations": _as_int("n_iterations", p.get("n_iterations", 2), minimum=-1),
    }
    # The reference's idiom passes these in --clustering_args; its own parameter may say the same or stay default.
    for key, value in own.items():
        if run_args[key] not in (RUN_DEFAULTS[key], value):
            given = "random_state" if key == "seed" and "random_state" in clustering_args else key
            raise UserError(
                f"--clustering_args {given} {value!r} and --{key} {run_args[key]!r} disagree; set {key} in one of them"
            )
        run_args[key] = value
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
    per_task = p.get("resolutions_per_task", "auto")
    subsample_fraction = _as_float("subsample_fraction", p.get("subsample_fraction", 0.8), minimum=0)
    if not subsample_fraction < 1:
        raise UserError(f"--subsample_fraction must be between 0 and 1 (exclusive), got {subsample_fraction}; e.g. 0.8")
    cfg = Config(
        algorithms=algorithms,
        resolutions=resolutions,
        resolutions_per_task=None if per_task == "auto" else _as_int("resolutions_per_task", per_task, minimum=1),
        max_cpus=_as_int("max_cpus", p.get("max_cpus", 2), minimum=1),
        neighbors_key=str(p.get("neighbors_key", "neighbors")),
        recompute_neighbors=integration != "none" or _as_bool("recompute_neighbors", p.get("recompute_neighbors", False)),
        n_neighbors=_as_int("n_neighbors", p.get("n_neighbors", 15), minimum=2),
        use_rep=use_rep,
        n_pcs=_as_int("n_pcs", p.get("n_pcs", 50), minimum=1),
        pca_layer=str(p["pca_layer"]) if p.get("pca_layer") else None,
        **run_args,
        clustering_args={**extra, **unchecked},  # unknown keys are refused, naming the algorithm, by Config.spec
        depth=depth,
        levels=levels,
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
        label_columns=_comma_list("label_columns", p.get("label_columns")),
        stability_bootstraps=_as_int("stability_bootstraps", p.get("stability_bootstraps", 0), minimum=0),
        stability_adaptive=_as_bool("stability_adaptive", p.get("stability_adaptive", True)),
        subsample_fraction=subsample_fraction,
        integration=integration,
        batch_key=batch_key,
        n_top_genes=_as_int("n_top_genes", p.get("n_top_genes", 2000), minimum=1),
        counts_layer=str(p.get("counts_layer") or "counts"),
        integration_rep=validate_integration_rep(integration, p.get("integration_rep")),
        n_latent=_as_int("n_latent", p.get("n_latent", 30), minimum=1),
        scvi_max_epochs=_as_int("scvi_max_epochs", scvi_max_epochs, 1) if scvi_max_epochs not in (None, "") else None,
        integration_args=integration_args,
        **markers_params(p),
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
    # the cores this process may use (a container or taskset may allow fewer than the machine has); macOS lacks it
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    cpus = _as_int("max_cpus", params.get("max_cpus", 2), minimum=1)
    if cpus > cores:
        raise UserError(f"--max_cpus {cpus} is more than this machine's {cores} cores (local executor); pass --max_cpus {cores}")
