"""`nextflow run main.nf --help` through the real launcher: every schema parameter, grouped, with its default."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import NEXTFLOW, ROOT

pytestmark = pytest.mark.pipeline


@pytest.fixture(scope="module")
def help_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("help")
    proc = subprocess.run(
        [NEXTFLOW, "run", str(ROOT / "main.nf"), "--help"], cwd=work, capture_output=True, text=True, timeout=300
    )
    return proc, work


def test_help_lists_every_parameter_by_group_with_defaults_and_exits_0(help_run):
    proc, work = help_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "missing required parameter" not in proc.stdout + proc.stderr
    out = proc.stdout
    schema = json.loads((ROOT / "nextflow_schema.json").read_text())
    position = out.index("Usage: nextflow run main.nf")
    for ref in schema["allOf"]:
        group = schema["$defs"][ref["$ref"].split("/")[-1]]
        if all(prop.get("hidden") for prop in group["properties"].values()):
            assert f"\n{group['title']}:\n" not in out
            continue
        position = out.index(f"\n{group['title']}:\n", position)
        for name, prop in group["properties"].items():
            if prop.get("hidden"):
                assert f"--{name} " not in out
                continue
            line = next(line for line in out[position:].splitlines() if line.startswith(f"  --{name} "))
            assert prop["description"] in line
            if prop.get("default") not in (None, ""):
                assert (
                    f"(default: {str(prop['default']).lower() if isinstance(prop['default'], bool) else prop['default']})" in line
                )
            if name in group.get("required", []):
                assert "(required)" in line
    assert not (work / "null").exists(), "--help must not write reports into an --outdir it does not have"
