"""Dependencies point one way: router -> dialplan, rating, numbering. The pure packages
import nothing of the router and do no I/O (the clock and the files come in as arguments),
the daemon does not ship with the simulators: only the commands that run them
(callgen, demo) import router/simulation, and no module imports, however indirectly, one
that imports it back."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

ROOT = REPO
PURE = ("dialplan", "rating", "numbering")
SHIPPED = (*PURE, "router", "console")
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


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Shipped module -> the shipped modules it names; `from a import b` names a.b when b
    is a module, a otherwise."""
    paths = {module_name(path): path for package in SHIPPED for path in sources(package)}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        named: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                named.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    named.add(submodule if submodule in paths else node.module)
        graph[name] = {module for module in named if module in paths and module != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_circle_finder_finds_a_circle_of_three() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]


def test_no_shipped_module_imports_one_that_imports_it_back() -> None:
    """Type-checking and function-level imports count: they are how circles hide."""
    graph = import_graph()
    assert graph["dialplan.evaluator"] >= {"dialplan.plan", "dialplan.matchers"}
    assert circles(graph) == []
