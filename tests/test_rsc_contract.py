"""scclust's GPU calls and the test double, checked against the source of the releases the CUDA image pins.

rapids-singlecell needs CUDA to import, so its source is read from the pinned wheel (``ast``); only ``_utils/
_random.py``, which needs numpy and scikit-learn alone, is run, to compare its seeds with the double's. The wheels are
downloaded once into ``$WHEELHOUSE`` (default ``~/.cache/scclust/wheels``, as for the scVI wheels). A failed download
fails the test; set ``SCCLUST_OFFLINE=1`` to skip these tests where no wheel is cached and PyPI is out of reach.
"""

from __future__ import annotations

import ast
import copy
import inspect
import os
import re
import subprocess
import sys
import textwrap
import types
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rsc_double import FakeRsc, accepts_legacy_random_state, as_generator, check_dtype, seed_from_rng
from scclust.clustering import ClusterSpec
from scclust.rsc import GPU_KEY, RELEASES, release_for

ROOT = Path(__file__).resolve().parents[1]
WHEELHOUSE = Path(os.environ.get("WHEELHOUSE") or Path.home() / ".cache" / "scclust" / "wheels")


def pinned(package: str) -> str:
    """The requirement ``containers/cuda/Dockerfile`` installs for ``package``, without extras."""
    text = (ROOT / "containers" / "cuda" / "Dockerfile").read_text()
    [requirement] = re.findall(rf"'({re.escape(package)}(?:\[\w+\])?==[\w.*]+)'", text)
    return re.sub(r"\[\w+\]", "", requirement)


def wheel(requirement: str) -> Path:
    """The wheel of ``requirement`` (``name==version``, ``*`` allowed) for the image's Python 3.12, downloaded once."""
    name, version = requirement.split("==")
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    if not sorted(WHEELHOUSE.glob(pattern)):
        if os.environ.get("SCCLUST_OFFLINE") == "1":
            pytest.skip(f"SCCLUST_OFFLINE=1 and no {pattern} in {WHEELHOUSE}")
        # the wheels are for the image's Python (3.12), not necessarily this one
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.12"]
        cmd += ["--platform", "manylinux_2_28_x86_64", "-d", str(WHEELHOUSE), requirement]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed (set SCCLUST_OFFLINE=1 to skip offline):\n{proc.stderr[-2000:]}")
    return sorted(WHEELHOUSE.glob(pattern))[-1]


def read(whl: Path, path: str) -> str:
    with zipfile.ZipFile(whl) as archive:
        return archive.read(path).decode()


@pytest.fixture(scope="module")
def rsc_wheel() -> Path:
    return wheel(pinned("rapids-singlecell-cu12"))


@pytest.fixture(scope="module")
def clustering(rsc_wheel: Path) -> ast.Module:
    return ast.parse(read(rsc_wheel, "rapids_singlecell/tools/_clustering.py"))


@pytest.fixture(scope="module")
def random_module(rsc_wheel: Path) -> types.ModuleType:
    """rapids' ``_utils/_random.py``, run; Python < 3.12 cannot parse its PEP 695 syntax, so that is rewritten."""
    source = read(rsc_wheel, "rapids_singlecell/_utils/_random.py")
    if sys.version_info < (3, 12):  # `type X = ...` -> `X = object`, `def f[**P, R](` -> `def f(`: annotations only
        source, n_types = re.subn(r"^type (\w+) = .*$", r"\1 = object", source, flags=re.M)
        source, n_defs = re.subn(r"^(def \w+)\[[^\]]*\]\(", r"\1(", source, flags=re.M)
        assert n_types and n_defs
    module = types.ModuleType("rsc_random")
    exec(compile(source, "_random.py", "exec"), module.__dict__)
    return module


def function(tree: ast.Module, name: str) -> ast.FunctionDef:
    [node] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    return node


def signature(node: ast.FunctionDef) -> str:
    """Parameters, kinds and defaults; annotations left out (the double has no rapids types to name)."""
    args = copy.deepcopy(node.args)
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
        arg.annotation = None
    return ast.unparse(args)


def calls(node: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Call) and ast.unparse(n.func) == name]


def keywords(call: ast.Call) -> dict[str | None, str]:
    return {k.arg: ast.unparse(k.value) for k in call.keywords}


def test_image_pins_a_release_scclust_supports() -> None:
    assert release_for(pinned("rapids-singlecell-cu12").split("==")[1]) is RELEASES["0.18"]


@pytest.mark.parametrize("name", ["leiden", "louvain"])
def test_double_has_the_real_signature(clustering: ast.Module, name: str) -> None:
    real = function(clustering, name)
    double = function(ast.parse(textwrap.dedent(inspect.getsource(getattr(FakeRsc().tl, name)))), name)
    assert signature(double) == signature(real)
    assert [ast.unparse(d) for d in double.decorator_list] == [ast.unparse(d).lstrip("_") for d in real.decorator_list]


def test_leiden_keywords_mean_what_scclust_assumes(clustering: ast.Module) -> None:
    release = RELEASES["0.18"]
    call = release.leiden_call([ClusterSpec("leiden", 0.5, seed=3), ClusterSpec("leiden", 2.0, seed=3)])
    real = function(clustering, "leiden")
    text = ast.unparse(real)
    params = {a.arg for a in [*real.args.args, *real.args.kwonlyargs]}
    # what gpu_memberships passes: the call's keywords, the graph and the key; random_state goes through the decorator
    assert {*call, "adjacency", "key_added"} - {"function"} - params == {"random_state"}
    assert [ast.unparse(d) for d in real.decorator_list] == ["_accepts_legacy_random_state(0)"]
    # one graph, then one cuGraph call per resolution: n_iterations is cuGraph's max_iter, the seed drawn per call
    [loop] = [n for n in ast.walk(real) if isinstance(n, ast.For) and ast.unparse(n.iter) == "resolutions"]
    [cugraph] = calls(real, "culeiden")
    assert cugraph in list(ast.walk(loop))
    assert keywords(cugraph) == {
        "resolution": "resolution",
        "random_state": "_seed_from_rng(rng)",
        "theta": "theta",
        "max_iter": "n_iterations",
    }
    [graph] = calls(real, "_create_graph")
    assert ast.unparse(graph) == "_create_graph(adjacency, dtype, use_weights=use_weights)"
    assert graph not in list(ast.walk(loop))
    assert "rng = np.random.default_rng(rng)" in text
    # a list of resolutions is iterated, each written to key_added_<resolution>
    assert (
        "if isinstance(resolution, float | int):\n        resolutions = [resolution]\n    else:\n        resolutions = resolution"
        in text
    )
    assert "if len(resolutions) > 1:\n                key_added_to_use += f'_{resolution}'" in text
    assert release.obs_key(0.5, 2) == f"{GPU_KEY}_{0.5}" and release.obs_key(0.5, 1) == GPU_KEY
    # the level cap scclust passes is rapids' own default
    defaults = dict(zip([a.arg for a in real.args.kwonlyargs], real.args.kw_defaults, strict=True))
    assert ast.literal_eval(defaults["n_iterations"]) == call["n_iterations"] == release.level_cap
    # dtype: the double's check is rapids' (run from the source), and what scclust passes is accepted
    namespace: dict[str, Any] = {"np": np}
    exec(compile(ast.Module([function(clustering, "_check_dtype")], []), "_clustering.py", "exec"), namespace)
    for dtype in ["float32", "float64", np.float32, np.float64, "float16", np.dtype("float64"), np.float16]:
        assert _outcome(namespace["_check_dtype"], dtype) == _outcome(check_dtype, dtype)
    assert namespace["_check_dtype"](call["dtype"]) == "float64"
    assert "df.weights = df.weights.astype(dtype)" in ast.unparse(function(clustering, "_create_graph"))


def _outcome(func: Callable[[Any], Any], value: Any) -> Any:
    try:
        return func(value)
    except Exception as err:
        return type(err)


def test_louvain_takes_no_seed(clustering: ast.Module, rsc_wheel: Path) -> None:
    real = function(clustering, "louvain")
    params = {a.arg for a in [*real.args.args, *real.args.kwonlyargs]}
    assert not params & {"rng", "random_state", "seed"}
    assert real.decorator_list == []
    [cugraph] = calls(real, "culouvain")
    assert keywords(cugraph) == {"resolution": "resolution", "max_level": "n_iterations", "threshold": "threshold"}
    assert RELEASES["0.18"].seeded == {"leiden"}


def test_cugraph_leiden_caps_levels_and_louvain_has_no_seed() -> None:
    whl = wheel(pinned("cugraph-cu12"))
    leiden = function(ast.parse(read(whl, "cugraph/community/leiden.py")), "leiden")
    assert signature(leiden) == "G, max_iter=100, resolution=1.0, random_state=None, theta=1.0"
    [plc] = calls(leiden, "pylibcugraph_leiden")
    assert keywords(plc)["max_level"] == "max_iter"
    assert keywords(plc)["random_state"] == "random_state"
    louvain = function(ast.parse(read(whl, "cugraph/community/louvain.py")), "louvain")
    assert signature(louvain) == "G, max_level=None, max_iter=None, resolution=1.0, threshold=1e-07"
    [plc] = calls(louvain, "pylibcugraph_louvain")
    assert "random_state" not in keywords(plc)


def _probe(decorator: Callable[..., Any], generator: Callable[[Any], Any], seed: Callable[[Any], Any]) -> Callable[..., Any]:
    """What a decorated rapids function hands cuGraph for three resolutions."""

    @decorator(0)
    def probe(*, rng: Any = None) -> list[Any]:
        rng = generator(rng)
        return [seed(rng) for _ in range(3)]

    return probe


def test_double_draws_the_seeds_rapids_draws(random_module: types.ModuleType) -> None:
    real = _probe(random_module._accepts_legacy_random_state, np.random.default_rng, random_module._seed_from_rng)
    double = _probe(accepts_legacy_random_state, as_generator, seed_from_rng)
    cases: list[Callable[[], dict[str, Any]]] = [
        dict,
        lambda: {"random_state": 7},
        lambda: {"random_state": np.int64(5)},
        lambda: {"random_state": None},
        lambda: {"random_state": np.random.RandomState(2)},
        lambda: {"rng": 7},
        lambda: {"rng": np.random.default_rng(3)},
        lambda: {"rng": 1, "random_state": 1},
    ]
    for case in cases:
        assert _outcome(lambda kwargs: double(**kwargs), case()) == _outcome(lambda kwargs: real(**kwargs), case()), case()
    # what scclust relies on: a legacy integer is every resolution's seed; the same integer as rng is not
    assert real(random_state=7) == [7, 7, 7]
    assert len(set(real(rng=7))) == 3
