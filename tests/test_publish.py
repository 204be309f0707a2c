"""Publishing a dataset's folder (issue 17, section 5): bin/scclust_publish.sh driven directly, as PUBLISH calls it.

Two runs publishing the same dataset at once, a publish that fails (a copy, the final rename, a signal), a lock left
by a killed run, and a lock held by a live one. What a user sees: exit code, a message naming the culprit, and the
earlier results byte-identical or exactly one run's files, with nothing left beside them.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT

SCRIPT = ROOT / "bin" / "scclust_publish.sh"
ID = "pbmc"
PAIRS = 60
BUSY = "another run is publishing"


def _items(base: Path, tag: str) -> list[Path]:
    """A run's outputs as PUBLISH stages them: a store folder, a TSV and plots, every file naming the run."""
    root = base / tag
    store = root / "clustering.zarr"
    for group in ("obs", "uns", f"obsm/X_umap_{tag}"):
        (store / group).mkdir(parents=True)
        for i in range(5):
            (store / group / f"c{i}").write_text(f"{tag} {group} {i}\n" * 50)
    (root / "plots").mkdir()
    (root / "plots" / f"umap_{tag}.png").write_bytes(tag.encode() * 1000)
    (root / "clusters.tsv").write_text(f"cell\t{tag}\n")
    return [store, root / "plots", root / "clusters.tsv"]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _expected(items: list[Path]) -> dict[str, bytes]:
    tree: dict[str, bytes] = {}
    for item in items:
        tree |= {f"{item.name}/{k}": v for k, v in _tree(item).items()} if item.is_dir() else {item.name: item.read_bytes()}
    return tree


def _env(wait: int | None = None, path: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SCCLUST_PUBLISH_WAIT"}
    if wait is not None:
        env["SCCLUST_PUBLISH_WAIT"] = str(wait)
    if path is not None:
        env["PATH"] = f"{path}{os.pathsep}{env['PATH']}"
    return env


def _publish(outdir: Path, items: list[Path], env: dict[str, str] | None = None, id_: str = ID) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), str(outdir), id_, *map(str, items)], capture_output=True, text=True, env=env or _env(), timeout=60
    )


def _entries(outdir: Path) -> list[str]:
    return sorted(p.name for p in outdir.iterdir())


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, list[Path]]:
    return {tag: _items(tmp_path / "items", tag) for tag in ("first", "second")}


@pytest.fixture
def published(tmp_path: Path, runs: dict[str, list[Path]]) -> Path:
    """An outdir holding the first run's results."""
    outdir = tmp_path / "out"
    assert _publish(outdir, runs["first"]).returncode == 0
    assert _tree(outdir / ID) == _expected(runs["first"])
    return outdir


def _shim(tmp_path: Path, name: str, body: str) -> Path:
    """A folder for PATH holding a `name` that runs `body` (sh) before the real command."""
    shims = tmp_path / "shims"
    shims.mkdir(exist_ok=True)
    real = subprocess.run(["sh", "-c", f"command -v {name}"], capture_output=True, text=True, check=True).stdout.strip()
    (shims / name).write_text(f'#!/bin/sh\n{body}\nexec {real} "$@"\n')
    (shims / name).chmod(0o755)
    return shims


def _lock(outdir: Path, pid: int, host: str) -> Path:
    lock = outdir / f".{ID}.lock"
    lock.mkdir()
    (lock / "owner").write_text(f"{pid} {host} 2024-05-01T10:00:00Z\n")
    return lock


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize(("wait", "stale"), [(30, False), (0, False), (30, True)], ids=["waits", "no-wait", "stale-lock"])
def test_concurrent_publishes_leave_one_runs_folder(tmp_path: Path, runs: dict[str, list[Path]], wait: int, stale: bool):
    """PAIRS pairs of publishes of one dataset into one outdir each, released at the same moment (each blocks on
    its stdin until both are started). Waiting, both succeed one after the other; without waiting, the later one
    may stop, saying so; after a killed run's lock, the two race to take it over."""
    expected = {tag: _expected(items) for tag, items in runs.items()}
    pairs = []
    for n in range(PAIRS):
        outdir = tmp_path / f"out{n}"
        if stale:
            outdir.mkdir()
            _lock(outdir, _dead_pid(), socket.gethostname())
        pair = {}
        for tag, items in runs.items():
            cmd = ["sh", "-c", 'read -r go && exec "$@"', "sh", str(SCRIPT), str(outdir), ID, *map(str, items)]
            pair[tag] = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env(wait)
            )
        pairs.append((outdir, pair))
    for _, pair in pairs:
        for proc in pair.values():
            proc.stdin.write("go\n")
            proc.stdin.flush()
    problems: Counter[str] = Counter()
    broken = 0
    for outdir, pair in pairs:
        results = [(proc.communicate(timeout=120)[1], proc.returncode) for proc in pair.values()]
        succeeded = [tag for tag, (_, code) in zip(pair, results, strict=True) if code == 0]
        found = [
            f"exit {code}: " + re.sub(r"'[^']*'", "'...'", (err.strip().splitlines() or [""])[0])
            for err, code in results
            if code != 0 and (wait or f"{BUSY} {outdir / ID} " not in err)
        ]
        folder = outdir / ID
        if not succeeded:
            found.append("neither published")
        elif not folder.is_dir() or _tree(folder) not in [expected[tag] for tag in succeeded]:
            nested = folder.is_dir() and any(p.name.startswith(f".{ID}.new.") for p in folder.iterdir())
            found.append("the other run's folder inside the winner's" if nested else "not one successful run's files")
        if _entries(outdir) != [ID]:
            found.append("leftovers beside the folder")
        problems.update(found)
        broken += bool(found)
    assert not problems, f"{broken} of {PAIRS} pairs: {dict(problems)}"


def test_failed_copy_leaves_earlier_results(tmp_path: Path, runs: dict[str, list[Path]], published: Path):
    """A copy that fails (here an output gone from the work dir; a full disk fails the same way) after a part of
    the new folder was written."""
    before = _tree(published / ID)
    gone = tmp_path / "gone.tsv"
    gone.symlink_to(tmp_path / "nowhere")
    proc = _publish(published, [*runs["second"], gone])
    assert proc.returncode != 0
    assert str(gone) in proc.stderr
    assert f"publishing {published / ID} failed; it is left as it was" in proc.stderr
    assert _tree(published / ID) == before
    assert _entries(published) == [ID], "the partial folder (or the lock) was left"


def test_failed_final_rename_puts_earlier_results_back(tmp_path: Path, runs: dict[str, list[Path]], published: Path):
    """The rename of the new folder into place fails after the old one was renamed away."""
    shims = _shim(tmp_path, "mv", 'case $1 in */.pbmc.new.*) echo "mv: No space left on device" >&2; exit 1 ;; esac')
    before = _tree(published / ID)
    proc = _publish(published, runs["second"], _env(path=shims))
    assert proc.returncode != 0
    assert "No space left on device" in proc.stderr
    assert f"publishing {published / ID} failed; it is left as it was" in proc.stderr
    assert _tree(published / ID) == before
    assert _entries(published) == [ID]


def test_folder_made_by_another_program_is_not_entered(tmp_path: Path, runs: dict[str, list[Path]], published: Path):
    """Something that takes no lock creates <outdir>/<id> just before the new folder is renamed there: mv would move
    the new folder into it. The publish fails, takes its folder out again and says where the earlier results are."""
    shims = _shim(tmp_path, "mv", 'case $1 in */.pbmc.new.*) mkdir "$2" ;; esac')
    before = _tree(published / ID)
    proc = _publish(published, runs["second"], _env(path=shims))
    assert proc.returncode != 0
    assert f"{published / ID} was created while publishing" in proc.stderr
    assert not list((published / ID).iterdir())
    (old,) = [p for p in published.iterdir() if p.name.startswith(f".{ID}.old.")]
    assert f"could not put the earlier results back to {published / ID}; they are in {old}" in proc.stderr
    assert _tree(old) == before


def test_interrupted_publish_leaves_earlier_results(tmp_path: Path, runs: dict[str, list[Path]], published: Path):
    """Ctrl-C or a scheduler's TERM (to the whole process group) while copying."""
    started = tmp_path / "copying"
    shims = _shim(tmp_path, "cp", f'touch "{started}"; sleep 30')
    before = _tree(published / ID)
    proc = subprocess.Popen(
        [str(SCRIPT), str(published), ID, *map(str, runs["second"])],
        env=_env(path=shims),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert f"publishing {published / ID} failed; it is left as it was" in proc.communicate()[1]
    assert _tree(published / ID) == before
    assert _entries(published) == [ID]


def test_lock_of_a_killed_run_is_taken_over(runs: dict[str, list[Path]], published: Path):
    pid = _dead_pid()
    lock = _lock(published, pid, socket.gethostname())
    proc = _publish(published, runs["second"], _env(wait=0))
    assert proc.returncode == 0, proc.stderr
    assert f"took over the lock {lock} of pid {pid}" in proc.stderr
    assert _tree(published / ID) == _expected(runs["second"])
    assert _entries(published) == [ID]


@pytest.mark.parametrize("holder", ["live here", "other host"])
def test_held_lock_stops_the_publish(runs: dict[str, list[Path]], published: Path, holder: str):
    """A live run's lock, or one from another host (whose process cannot be checked), is waited for, then the
    publish stops, naming the lock and its holder."""
    pid, host = (os.getpid(), socket.gethostname()) if holder == "live here" else (_dead_pid(), "node-17.cluster")
    lock = _lock(published, pid, host)
    before = _tree(published / ID)
    started = time.monotonic()
    proc = _publish(published, runs["second"], _env(wait=1))
    assert 1 <= time.monotonic() - started < 10
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"scclust_publish: {BUSY} {published / ID} (lock {lock}, held by pid {pid} on host {host} since "
        f"2024-05-01T10:00:00Z); wait for it to finish, or remove {lock} if no run is active"
    )
    assert _tree(published / ID) == before
    assert (lock / "owner").read_text() == f"{pid} {host} 2024-05-01T10:00:00Z\n"


def test_only_this_datasets_leftovers_are_removed(tmp_path: Path, runs: dict[str, list[Path]]):
    """Leftovers of a publish killed with -9 go; other datasets' hidden folders whose names look alike (ids may hold
    dots and glob characters: `.p*.new.*` matches `.pbmc.new.123`) stay."""
    outdir = tmp_path / "out"
    outdir.mkdir()
    leftovers = {ID: [f".{ID}.new.123", f".{ID}.old.456", f".{ID}.lock.789"], "p*": [".p*.new.7", ".p*.old.8"]}
    others = [f".{ID}.new.1.new.5", f".{ID}.new.x", f".{ID}x.old.8", f"{ID}.new.9"]
    for name in [*leftovers[ID], *leftovers["p*"], *others]:
        (outdir / name).mkdir()
        (outdir / name / "f").write_text(name)
    assert _publish(outdir, runs["first"], id_="p*").returncode == 0
    assert _entries(outdir) == sorted(["p*", *leftovers[ID], *others])
    assert _publish(outdir, runs["second"]).returncode == 0
    assert _entries(outdir) == sorted(["p*", ID, *others])
    assert _tree(outdir / "p*") == _expected(runs["first"])
    assert _tree(outdir / ID) == _expected(runs["second"])


def test_wait_must_be_whole_seconds(runs: dict[str, list[Path]], published: Path):
    before = _tree(published / ID)
    env = _env()
    env["SCCLUST_PUBLISH_WAIT"] = "1m"
    proc = _publish(published, runs["second"], env)
    assert proc.returncode == 2
    assert "SCCLUST_PUBLISH_WAIT must be a whole number of seconds, not '1m'" in proc.stderr
    assert _tree(published / ID) == before
