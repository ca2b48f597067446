"""Every benchmark runs as docs/benchmarks.md says: `python bench/<name>.py` from the
repository root. A script runs with bench/ first on its import path, so a bench named like a
package of the project or a standard module would shadow it."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

ROOT = REPO
BENCHES = sorted(path.name for path in (ROOT / "bench").glob("*.py"))
PACKAGES = {path.parent.name for path in ROOT.glob("*/__init__.py")}


def test_there_are_benchmarks_and_packages_to_check() -> None:
    assert "rating_batch.py" in BENCHES and {"rating", "router", "dialplan"} <= PACKAGES


@pytest.mark.parametrize("bench", BENCHES)
def test_no_benchmark_shadows_a_package_or_a_standard_module(bench: str) -> None:
    name = bench.removesuffix(".py")
    assert name not in PACKAGES
    assert name not in sys.stdlib_module_names


def test_each_benchmark_starts_as_a_script_from_the_repository_root() -> None:
    """--help imports everything a benchmark uses and prints its usage; all at once."""
    started = {
        bench: subprocess.Popen(
            [sys.executable, f"bench/{bench}", "--help"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for bench in BENCHES
    }
    failed = {}
    for bench, process in started.items():
        out, err = process.communicate(timeout=120)
        if process.returncode != 0 or not out.startswith("usage:"):
            failed[bench] = err.strip().splitlines()[-1:] or out
    assert not failed


def test_the_documentation_names_only_benchmarks_that_exist() -> None:
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    named = set(re.findall(r"bench/(\w+\.py)", text))
    assert named and named <= set(BENCHES), named - set(BENCHES)
    assert "python -m bench" not in text
