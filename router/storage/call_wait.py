"""One wait for the store per call: a call's reads and writes share one deadline. A
router's stop gives the store the same one wait after its drain.

A silent database (a host that is down drops the packets) makes every store use wait its
whole timeout, and a call asks the store several times (its counters, its cap unit, the
PIN guard), each first waiting for a pooled connection or the file's lock. Waited one after
another, the call would wait that many timeouts before being routed. Within `one_store_wait`
the store counts what the call has waited so far and gives each use only what is left of
its own timeout; a call that has spent it meets `StoreUnavailable` at once, and goes on as
for a store that is down.

A stop's wait (`StopWait`) is a deadline instead, shared by tasks that wait at once (the CDR
writer, the lease's heartbeat, the background readers): until the stop sets it, the store is
used as ever; from then on each use gets what is left of it. A SQLite statement cannot be
called back once its thread runs it, and the file's next statement waits behind it, so a
statement begun during the stop with a busy timeout of its own would hold the stop past
its deadline.
"""

from __future__ import annotations

import time
from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass
class StoreWait:
    """Seconds this call has waited for the store so far."""

    spent: float = 0.0
    bounded = True
    """False while the wait puts no bound on the store's uses (a stop's not yet begun)."""

    def left(self, limit: float) -> float:
        return limit - self.spent


@dataclass
class StopWait(StoreWait):
    """A stop's one wait: nothing until `begin`, then a deadline every use shares."""

    deadline: float | None = None
    """time.monotonic() by which the store's uses end."""

    @property
    def bounded(self) -> bool:  # type: ignore[override]
        return self.deadline is not None

    def begin(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self, limit: float) -> float:
        if self.deadline is None:
            return limit
        return min(limit, self.deadline - time.monotonic())


_CALL_WAIT: ContextVar[StoreWait | None] = ContextVar("store_wait", default=None)


class one_store_wait:  # named as the function it stands for: `with one_store_wait():`
    """Within this block (a call, a stop) the store's uses share one timeout; `wait`
    shares it with another task's block. A class, not a `@contextmanager` generator: every
    call enters one (as router.monitoring.logs.call_context)."""

    __slots__ = ("_token", "_wait")

    def __init__(self, wait: StoreWait | None = None) -> None:
        self._wait = wait or StoreWait()
        self._token: Token[StoreWait | None] | None = None

    def __enter__(self) -> StoreWait:
        self._token = _CALL_WAIT.set(self._wait)
        return self._wait

    def __exit__(self, *_exc: object) -> None:
        if self._token is not None:
            _CALL_WAIT.reset(self._token)
            self._token = None


def call_wait() -> StoreWait | None:
    """The wait of the call being served, or of the stop under way; None outside both
    (the writer, the lease and the readers before a stop, commands)."""
    wait = _CALL_WAIT.get()
    return wait if wait is not None and wait.bounded else None
