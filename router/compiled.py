"""The modules a compiled build turns into C extensions, and which of them this process runs.

A build with HOTLINE400_COMPILE=1 (setup.py) compiles these modules with mypyc: every call
runs through them, and compiled they spend about a tenth fewer instructions a call
(docs/benchmarks.md). An extension is imported before the .py of the same name beside it,
so a tree compiled in place and edited afterwards would run the code of the build: `serve`
says which modules run compiled and warns of any whose source is newer than its build.

This module imports nothing of the router's, so that setup.py can read the list from it.
"""

from __future__ import annotations

import importlib.util
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import NamedTuple

CALL_PATH_MODULES = (
    "router.fastagi.protocol",
    "router.fastagi.connection",
    "router.fastagi.server",
    "router.fastagi.quoting",
    "router.call.session",
    "router.call.context",
    "router.monitoring.logs",
    "router.monitoring.metrics",
    "router.storage.cdr",
    "router.money.accounting",
    "router.ami.wire",
    "router.ami.link",
    "router.ami.live_calls",
    "router.ami.reconcile",
    "dialplan.evaluator",
    "dialplan.split",
)
"""Kept out: dialplan.decision and dialplan.matchers, whose classes each names only for
type checking (an import cycle); mypyc then builds the other's class from a type object
that was never made, and the import crashes."""

_BUILD_SLACK_S = 2.0
"""A source written this long after its extension still counts as the one built: an
in-place build writes the extension after reading the source, a checkout writes both."""


class CompiledState(NamedTuple):
    compiled: tuple[str, ...]
    """Modules that import from an extension."""
    stale: tuple[str, ...]
    """Of those, the ones whose source beside the extension is newer than the extension."""


def compiled_state(modules: tuple[str, ...] = CALL_PATH_MODULES) -> CompiledState:
    """Which of `modules` this interpreter would import compiled; nothing is imported but
    their packages."""
    compiled: list[str] = []
    stale: list[str] = []
    for module in modules:
        spec = importlib.util.find_spec(module)
        origin = spec.origin if spec is not None else None
        if origin is None or not origin.endswith(tuple(EXTENSION_SUFFIXES)):
            continue
        compiled.append(module)
        extension = Path(origin)
        source = extension.with_name(module.rpartition(".")[2] + ".py")
        if source.exists() and source.stat().st_mtime > extension.stat().st_mtime + _BUILD_SLACK_S:
            stale.append(module)
    return CompiledState(tuple(compiled), tuple(stale))
