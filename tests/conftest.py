"""Shared fixtures: generated test data and a runner for the real pipeline."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from scclust.testdata import write_testdata

ROOT = Path(__file__).resolve().parents[1]
NEXTFLOW = os.environ.get("NEXTFLOW") or shutil.which("nextflow") or str(ROOT / ".venv" / "bin" / "nextflow")


@dataclass
class Run:
    """A finished pipeline run."""

    returncode: int
    output: str
    outdir: Path

    def ok(self) -> Run:
        assert self.returncode == 0, self.output[-4000:]
        return self


@pytest.fixture(scope="session")
def testdata(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """pbmc.h5ad, pbmc.zarr and samplesheet.csv, written once per session."""
    return write_testdata(tmp_path_factory.mktemp("testdata"))


def run_pipeline(
    workdir: Path,
    *args: str,
    outdir: Path | None = None,
    profile: str = "test",
    timeout: int = 900,
    env: dict | None = None,
) -> Run:
    """Run ``nextflow run main.nf`` in ``workdir`` with the test resources; returns code, output and outdir."""
    outdir = outdir or workdir / "results"
    cmd = pipeline_command(outdir, profile, *args)
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    return Run(proc.returncode, proc.stdout + proc.stderr, outdir)


def pipeline_command(outdir: Path, profile: str, *args: str) -> list[str]:
    """The ``nextflow run`` command line the tests use.

    MARKERS (on by default) only where a test names ``--markers``: its own tests cover it, and it would add a task
    to every other run of the suite.
    """
    markers = [] if "--markers" in args else ["--markers", "false"]
    return [
        NEXTFLOW,
        "run",
        str(ROOT / "main.nf"),
        "-ansi-log",
        "false",
        "-profile",
        profile,
        "--outdir",
        str(outdir),
        *markers,
        *args,
    ]


def tree_digest(path: Path) -> str:
    """Hash of every file's path and bytes below ``path`` (or of the file itself)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        digest.update(str(f.relative_to(path.parent)).encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()
