"""Dependencies point one way: router -> dialplan, rating, numbering. The pure packages
import nothing of the router and do no I/O (the clock and the files come in as arguments),
and the daemon does not ship with the simulators: only the commands that run them
(callgen, demo) import router/simulation."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

ROOT = REPO
PURE = ("dialplan", "rating", "numbering")
IO_MODULES = {
    *("asyncio", "socket", "subprocess", "http", "urllib"),
    *("sqlite3", "aiosqlite", "asyncpg"),
}


def imported_modules(path: Path) -> Iterator[str]:
    """Every module a file imports, wherever the import stands (type-checking blocks and
    functions included)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PURE)
def test_a_pure_package_imports_nothing_of_the_router(package: str) -> None:
    assert sources(package)
    offending = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sources(package)
        for module in imported_modules(path)
        if module.split(".")[0] in {"router", "bench", "tests"}
    }
    assert not offending


@pytest.mark.parametrize("package", PURE)
def test_a_pure_package_does_no_io(package: str) -> None:
    offending = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sources(package)
        for module in imported_modules(path)
        if module.split(".")[0] in IO_MODULES
    }
    assert not offending


def test_only_the_commands_that_run_them_import_the_simulators() -> None:
    allowed = {ROOT / "router" / "simulation", ROOT / "router" / "commands"}
    offending = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sources("router")
        if not any(parent in allowed for parent in path.parents)
        for module in imported_modules(path)
        if module.startswith("router.simulation")
    }
    assert not offending
