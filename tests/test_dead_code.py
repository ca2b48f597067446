"""No dead code ships: vulture over the shipped code ([tool.vulture] in pyproject.toml) finds
nothing that tests/dead_code_whitelist.py does not explain."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

ROOT = REPO


def test_nothing_shipped_is_unused() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "vulture"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.stdout == "" and run.returncode == 0, run.stdout + run.stderr
