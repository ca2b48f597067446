"""The README as a newcomer follows it, in a fresh clone of this repository.

The clone gets the README's first command exactly as written (install, then the demo).
To stay fast its virtual environment is seeded with a path to the running test
environment's site-packages, so `pip install -e .` finds the dependencies installed and
only installs the clone itself. Then the clone's `hotline400 serve` (on a free port
instead of 4573, which another router on this machine may hold) takes `hotline400
callgen`'s 100 calls on the shipped example configuration, and every call must have been
routed as `hotline400 simulate` says for the same number, caller, instant and
busy/no-answer destinations. A split rule is compared as a whole: its calls reached the
destinations in exactly the numbers `simulate --calls K` gives for K calls. At night
(Beijing time) the example shop is closed and no call splits; the test then checks that
the same calls at noon would.

The README's second command (`./test.sh`) runs this suite; the test checks that CI runs
exactly it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dialplan.plan_loader import load_plan
from router.cli import main
from tests.conftest import REPO, free_port

REPO = REPO
CALLS = 100
_DIAL = re.compile(r"^\s+\d+\. (?:dial|forward \(\w+\)) (\S+), ring")
_OUTCOME = re.compile(r"^outcome: (\w+) \((?:rule )?([^)]*)\)")


def readme_commands() -> list[str]:
    """The shell blocks at the top of the README, before its first section."""
    top = (REPO / "README.md").read_text(encoding="utf-8").split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", top, re.S)]


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    _, checks = readme_commands()
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert checks == "./test.sh"
    assert [line for line in ci.splitlines() if line.startswith("./")] == [checks]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh clone with the README's first command run in it."""
    clone = tmp_path_factory.mktemp("walk") / "hotline400"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    subprocess.run([sys.executable, "-m", "venv", str(clone / ".venv")], check=True, timeout=120)
    site = clone / ".venv" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    (site / "site-packages" / "reused-test-environment.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    return clone


def shell(clone: Path, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return subprocess.run(
        ["bash", "-c", command],
        cwd=clone,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def serving(clone: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    router = subprocess.Popen(
        [str(clone / ".venv" / "bin" / "hotline400"), "serve", "--listen", f"127.0.0.1:{port}"],
        cwd=clone,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert router.poll() is None, router.communicate()[1]
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert time.monotonic() < deadline, "serve did not listen within 60 s"
            time.sleep(0.2)
        yield router
    finally:
        router.send_signal(signal.SIGTERM)
        router.wait(timeout=60)


def simulated(clone: Path, cdr: dict[str, Any], calls: int = 1) -> str:
    """`hotline400 simulate` for the same call, run in the clone's directory."""
    argv = ["simulate", "--number", cdr["number"], "--caller", cdr["caller_raw"]]
    argv += ["--at", cdr["started_at"], "--calls", str(calls)]
    argv += ["--digits", cdr["menu_digits"] or ""]
    for leg in cdr["legs"]:
        if leg["dial_status"] in ("BUSY", "CONGESTION", "CHANUNAVAIL"):
            argv += ["--busy", leg["destination"]]
        elif leg["dial_status"] == "NOANSWER":
            argv += ["--no-answer", leg["destination"]]
    out = io.StringIO()
    cwd = Path.cwd()
    os.chdir(clone)
    try:
        with contextlib.redirect_stdout(out):
            assert main(argv) == 0
    finally:
        os.chdir(cwd)
    return out.getvalue()


def split_rules(clone: Path) -> set[tuple[str, str]]:
    """(400 number, rule name) of every rule of the example plans that splits, itself or by
    its menu's default (callgen presses no keys)."""
    plans = [load_plan(path) for path in sorted((clone / "config" / "plans").glob("*.yaml"))]
    return {
        (plan.number, rule.name)
        for plan in plans
        for rule in plan.rules
        if rule.split or (rule.menu and plan.menus[rule.menu].default.split)
    }


def assert_every_split_rule_opens_at_noon(
    clone: Path, cdrs: list[dict[str, Any]], splits: set[tuple[str, str]]
) -> None:
    """Each split rule's number was called, and the same call at noon Beijing time takes
    the split as simulate spreads it: the comparison above holds whatever the hour of the run."""
    for number, rule in splits:
        called = [cdr for cdr in cdrs if cdr["number"] == number and not cdr["legs"]]
        assert called, f"no call to {number} was refused; its split rule {rule} took none"
        noon = called[0]["started_at"][:10] + "T12:00:00+08:00"
        at_noon = {**called[0], "started_at": noon, "legs": []}
        one = simulated(clone, at_noon)
        assert one.splitlines()[-1].endswith(f"(rule {rule})"), one
        spread = simulated(clone, at_noon, calls=10)
        assert len([line for line in spread.splitlines() if line.endswith("%")]) >= 2, spread


def test_the_readme_main_job_then_serve_routes_every_call_as_simulate_says(clone: Path) -> None:
    install_and_demo, _ = readme_commands()
    demo = shell(clone, install_and_demo)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "15 calls placed, 0 failed." in demo.stdout
    # pip may warn; the demo's first run has nothing to warn of
    assert not re.search(r"^(WARNING|ERROR) hotline400", demo.stdout + demo.stderr, re.M)
    assert not (clone / "var").exists()  # the demo keeps its records in a directory of its own

    port = free_port()
    hotline400 = clone / ".venv" / "bin" / "hotline400"
    with serving(clone, port):
        load = shell(
            clone,
            f"{hotline400} callgen --target 127.0.0.1:{port} --calls {CALLS} --concurrency 10",
        )
    assert load.returncode == 0, load.stdout + load.stderr
    assert "errors         0" in load.stdout

    listed = shell(clone, f"{hotline400} cdr --format json")
    assert listed.returncode == 0, listed.stderr
    cdrs = sorted(json.loads(listed.stdout), key=lambda cdr: int(cdr["call_id"].rsplit(".")[1]))
    assert len(cdrs) == CALLS
    assert Counter(cdr["outcome"] for cdr in cdrs)["answered"] > 0

    splits = split_rules(clone)
    split_firsts: dict[tuple[str, str], Counter[str]] = {}
    split_sample: dict[tuple[str, str], dict[str, Any]] = {}
    for cdr in cdrs:
        said = simulated(clone, cdr)
        outcome, rule = _OUTCOME.search(said.splitlines()[-1]).groups()  # type: ignore[union-attr]
        dials = [m[1] for line in said.splitlines() if (m := _DIAL.match(line))]
        legs = [leg["destination"] for leg in cdr["legs"]]
        where = f"call {cdr['call_id']}:\n{said}\nrouter: {cdr['outcome']} {cdr['rule']} {legs}"
        if said.count("PIN: the caller is asked"):  # callgen enters no PIN
            assert (cdr["outcome"], cdr["rule"], legs) == ("pin_failed", rule, []), where
            continue
        if dials:
            assert cdr["rule"] == rule, where
        else:  # refused: the status and reason
            assert cdr["outcome"] == outcome and cdr["note"].startswith(rule), where
            continue
        if (cdr["number"], rule) in splits:
            split_firsts.setdefault((cdr["number"], rule), Counter())[legs[0]] += 1
            split_sample.setdefault((cdr["number"], rule), cdr)
            continue
        if "caller hung up" in (cdr["note"] or ""):
            assert legs == dials[: len(legs)] and cdr["outcome"] == "noanswer", where
            continue
        assert (cdr["outcome"], legs) == (outcome, dials), where

    if not split_firsts:  # the routers' clock was in hours when no split rule is open
        assert_every_split_rule_opens_at_noon(clone, cdrs, splits)
    for key, firsts in split_firsts.items():
        spread = simulated(clone, {**split_sample[key], "legs": []}, calls=sum(firsts.values()))
        expected = {
            line.split()[0]: int(line.split()[1])
            for line in spread.splitlines()
            if line.endswith("%")
        }
        assert dict(firsts) == expected, key
