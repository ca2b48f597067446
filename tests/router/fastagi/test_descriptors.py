"""The daemon lifts its own open-files limit as it starts, and says what it can hold."""

from __future__ import annotations

import resource
import subprocess
import sys

RAISE_AND_REPORT = (
    "import logging, resource, sys\n"
    "logging.basicConfig(\n"
    "    level=logging.INFO, stream=sys.stdout, format='%(levelname)s %(message)s'\n"
    ")\n"
    "from router.fastagi.descriptors import raise_open_files_limit\n"
    "limit = raise_open_files_limit(wanted_calls=int(sys.argv[1]))\n"
    "print('soft', resource.getrlimit(resource.RLIMIT_NOFILE)[0], 'calls', limit.calls)\n"
)


def run_with_limits(soft: int, hard: int, wanted_calls: int) -> str:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    done = subprocess.run(
        [sys.executable, "-c", RAISE_AND_REPORT, str(wanted_calls)],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_the_soft_limit_is_raised_to_the_hard_one_and_logged() -> None:
    out = run_with_limits(256, 4096, wanted_calls=1000)
    assert "INFO open files: soft limit raised from 256 to 4096" in out
    assert out.splitlines()[-1] == f"soft 4096 calls {4096 - 64}"
    assert "WARNING" not in out


def test_a_hard_limit_too_low_for_a_busy_hour_is_warned_about() -> None:
    out = run_with_limits(512, 512, wanted_calls=20_000)
    assert "WARNING open files: limit 512 (hard 512) holds at most about 448 calls" in out
    assert "raise the hard limit" in out
    assert out.splitlines()[-1] == "soft 512 calls 448"
