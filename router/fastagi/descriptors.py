"""Open files for held calls: every ringing call is one socket, so the number of calls a
router can hold at once is its open-files limit less the few descriptors it uses itself.

Linux starts most processes with a soft RLIMIT_NOFILE of 1024 and lets a process raise it
up to its hard limit without privileges. The daemon does so as it starts and says what it
got, so an operator reading the log knows how many calls the router can hold, and is told
when the hard limit is lower than a busy hour needs.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("hotline400.server")

OWN_DESCRIPTORS = 64
"""Descriptors the router needs besides its calls: listeners, store, journal, log, loop."""
WANTED_CALLS = 20_000
"""Calls ringing at once that one router should be able to hold."""
NR_OPEN = Path("/proc/sys/fs/nr_open")
"""The kernel's ceiling for a hard limit of infinity."""


@dataclass(frozen=True, slots=True)
class FilesLimit:
    before: int
    soft: int
    hard: int

    @property
    def calls(self) -> int:
        """Calls the router can hold at once with this limit."""
        return max(0, self.soft - OWN_DESCRIPTORS)


def raise_open_files_limit(wanted_calls: int = WANTED_CALLS) -> FilesLimit:
    """Raise the soft open-files limit to the hard one; log the outcome, warning when the
    router cannot hold `wanted_calls` calls at once. Never raises."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else _kernel_ceiling()
    raised = soft
    if soft == resource.RLIM_INFINITY or soft >= target:
        raised = soft if soft != resource.RLIM_INFINITY else target
    else:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            raised = target
        except (OSError, ValueError) as error:
            log.warning(
                "open files: cannot raise the soft limit from %d to %d (%s): at most about %d "
                "calls at once",
                soft,
                target,
                error,
                max(0, soft - OWN_DESCRIPTORS),
            )
    limit = FilesLimit(soft, raised, target)
    if raised != soft:
        log.info("open files: soft limit raised from %d to %d", soft, raised)
    if limit.calls < wanted_calls:
        log.warning(
            "open files: limit %d (hard %d) holds at most about %d calls at once, fewer than "
            "%d; raise the hard limit (LimitNOFILE= in the systemd unit, or ulimit -Hn)",
            raised,
            target,
            limit.calls,
            wanted_calls,
        )
    return limit


def _kernel_ceiling() -> int:
    try:
        return int(NR_OPEN.read_text())
    except (OSError, ValueError):
        return 1 << 20
