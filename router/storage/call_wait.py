"""One wait for the store per call: a call's reads and writes share one deadline. A
router's stop gives the store the same one wait after its drain.

A silent database (a host that is down drops the packets) makes every store use wait its
whole timeout, and a call asks the store several times (its counters, its cap unit, the
PIN guard), each first waiting for a pooled connection or the file's lock. Waited one after
another, the call would wait that many timeouts before being routed. Within `one_store_wait`
the store counts what the call has waited so far and gives each use only what is left of
its own timeout; a call that has spent it meets `StoreUnavailable` at once, and goes on as
for a store that is down.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class StoreWait:
    """Seconds this call has waited for the store so far."""

    spent: float = 0.0

    def left(self, limit: float) -> float:
        return limit - self.spent


_CALL_WAIT: ContextVar[StoreWait | None] = ContextVar("store_wait", default=None)


@contextmanager
def one_store_wait(wait: StoreWait | None = None) -> Iterator[StoreWait]:
    """Within this block (a call, a stop) the store's uses share one timeout; `wait`
    shares it with another task's block."""
    wait = wait or StoreWait()
    token = _CALL_WAIT.set(wait)
    try:
        yield wait
    finally:
        _CALL_WAIT.reset(token)


def call_wait() -> StoreWait | None:
    """The wait of the call being served; None outside a call (writer, lease, commands)."""
    return _CALL_WAIT.get()
