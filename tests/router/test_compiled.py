"""Which call-path modules run compiled, and a compiled module edited after its build."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Iterator
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from router.commands.serve import report_compiled_modules
from router.compiled import CALL_PATH_MODULES, CompiledState, compiled_state

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def package_dir(tmp_path: Path) -> Iterator[Path]:
    """A package `callpath` on sys.path, for modules laid out as a build leaves them."""
    package = tmp_path / "callpath"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    yield package
    sys.path.remove(str(tmp_path))
    for name in [name for name in sys.modules if name.partition(".")[0] == "callpath"]:
        del sys.modules[name]
    importlib.invalidate_caches()


def _files(package: Path, module: str, *, source_age_s: float, extension_age_s: float) -> None:
    """`module` as a .py and an extension beside it, written the given seconds ago. The
    extension is never loaded: only where the import would come from is asked."""
    source = package / f"{module}.py"
    extension = package / f"{module}{EXTENSION_SUFFIXES[0]}"
    source.write_text("", encoding="utf-8")
    extension.write_bytes(b"")
    now = source.stat().st_mtime
    os.utime(source, (now - source_age_s, now - source_age_s))
    os.utime(extension, (now - extension_age_s, now - extension_age_s))
    importlib.invalidate_caches()


def test_a_module_with_an_extension_beside_it_is_reported_compiled(package_dir: Path) -> None:
    _files(package_dir, "built", source_age_s=60, extension_age_s=30)
    (package_dir / "plain.py").write_text("", encoding="utf-8")

    state = compiled_state(("callpath.built", "callpath.plain"))

    assert state.compiled == ("callpath.built",)
    assert state.stale == ()


def test_a_source_edited_after_its_build_is_reported_stale(package_dir: Path) -> None:
    _files(package_dir, "edited", source_age_s=10, extension_age_s=600)
    _files(package_dir, "checked_out", source_age_s=30, extension_age_s=31)

    state = compiled_state(("callpath.edited", "callpath.checked_out"))

    assert state.compiled == ("callpath.edited", "callpath.checked_out")
    assert state.stale == ("callpath.edited",)


def test_this_interpreter_runs_a_call_path_module_compiled_exactly_when_reported() -> None:
    """True of the Python tree and of a HOTLINE400_COMPILE=1 build alike (test.sh runs
    the call path's tests against both)."""
    state = compiled_state()

    for name in CALL_PATH_MODULES:
        module = importlib.import_module(name)
        from_extension = str(module.__file__).endswith(tuple(EXTENSION_SUFFIXES))
        assert from_extension == (name in state.compiled), name
    assert state.stale == ()


def test_every_call_path_module_is_a_source_file_of_the_project() -> None:
    for name in CALL_PATH_MODULES:
        assert (ROOT / (name.replace(".", "/") + ".py")).is_file(), name


def test_serve_says_whether_the_call_path_runs_compiled(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    compiled = compiled_state().compiled

    report_compiled_modules(compiled_state())

    expected = (
        f"call path: {len(compiled)} of {len(CALL_PATH_MODULES)} modules compiled"
        if compiled
        else "call path: Python (HOTLINE400_COMPILE=1 builds compile it)"
    )
    assert [record.getMessage() for record in caplog.records] == [expected]


def test_serve_warns_of_each_compiled_module_edited_after_its_build(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)

    report_compiled_modules(
        CompiledState(compiled=CALL_PATH_MODULES, stale=("router.call.session",))
    )

    assert [(record.levelname, record.getMessage()) for record in caplog.records] == [
        (
            "INFO",
            f"call path: {len(CALL_PATH_MODULES)} of {len(CALL_PATH_MODULES)} modules compiled",
        ),
        (
            "WARNING",
            "router.call.session runs as compiled, but its source is newer: rebuild, or "
            "delete its extension",
        ),
    ]


@pytest.mark.skipif(
    os.environ.get("HOTLINE400_EXPECT_COMPILED") != "1",
    reason="for the run against a compiled build (test.sh sets HOTLINE400_EXPECT_COMPILED=1)",
)
def test_the_compiled_build_runs_every_call_path_module_compiled() -> None:
    assert compiled_state() == (CALL_PATH_MODULES, ())
