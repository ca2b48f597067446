"""The garbage collector set for a daemon that serves calls, once it is up.

Measured on the daemon under `bench/agi_load.py` load (gc.callbacks, 3,000 minimal answered
calls at 150 a second):

- Young collections: with Python's default threshold (700 net container allocations) the
  collector ran a young collection every 40-90 calls, 4-17 µs of CPU a call, walking the
  containers of the calls in progress again and again. At 10,000 it ran once in 3,000
  calls, about 1 µs a call; at most 10,000 containers (the reference cycles calls leave
  behind) wait meanwhile for the collection that frees them.
- Full collections: everything the daemon loaded at start (its modules, the caller index,
  the plans and tariffs) is walked by every full collection, 20-80 ms each, one of them
  in the middle of serving. `gc.freeze()` once the daemon is up moves those objects out
  of the collector's reach for good: they live as long as the process anyway.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Net container allocations between young collections (Python's default: 700)."""


def settle_garbage_collector() -> None:
    """Freeze what the daemon has loaded so far and space the young collections out;
    process-wide, so only for a serving daemon (not for tests running it in-process)."""
    gc.collect()  # what start-up left as garbage is not frozen with the rest
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
