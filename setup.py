"""The build: pure Python by default; HOTLINE400_COMPILE=1 compiles the call path with mypyc.

mypyc turns the type-annotated modules that router/compiled.py lists into C extensions,
installed beside their sources (an extension is imported before a .py of the same name).
The router then spends about a tenth fewer instructions a call (docs/benchmarks.md). mypyc
type-checks those modules first and enforces their annotations at run time, so it builds
against the installed dependencies, hence --no-build-isolation (docs/deployment.md):

    pip install '.[compiled,uvloop]'
    HOTLINE400_COMPILE=1 pip install --no-build-isolation --no-deps .
"""

import ast
import os
from pathlib import Path

from setuptools import setup

COMPILE_SWITCH = "HOTLINE400_COMPILE"
ROOT = Path(__file__).parent


def call_path_sources() -> list[str]:
    """router/compiled.py's CALL_PATH_MODULES as source paths, read without importing it:
    a build environment need not have the router's dependencies."""
    tree = ast.parse((ROOT / "router" / "compiled.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "CALL_PATH_MODULES":
            return [module.replace(".", "/") + ".py" for module in ast.literal_eval(node.value)]
    raise SystemExit("router/compiled.py has no CALL_PATH_MODULES")


def extensions() -> list:
    if os.environ.get(COMPILE_SWITCH) != "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as missing:
        raise SystemExit(
            f"{COMPILE_SWITCH}=1 needs mypyc: pip install 'hotline400[compiled]' first, "
            "then build with --no-build-isolation"
        ) from missing
    return mypycify(call_path_sources(), opt_level="3", multi_file=True)


setup(ext_modules=extensions())
