"""Writing the configuration files the console edits: whole, durable, one writer at a time.

A file is replaced in one rename, so a router reading it at that instant reads the old text
or the new one, never half of one; the rename is fsync'd into its directory, so a save the
console confirmed is still there after a power cut. Edits that check the file before writing
it (a plan's "based on", a feature's balance) hold the file's lock from the check to the
write: the console may run as several processes (uvicorn's workers, two consoles on one
configuration directory), and a check passed in one is no check against a write in another.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from router.storage.spool import fsync_directory


def write_atomically(path: Path, text: str) -> None:
    """Write beside the file, flush to disk, rename over it, and make the rename durable."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


@asynccontextmanager
async def held(path: Path, console_lock: asyncio.Lock) -> AsyncIterator[None]:
    """`path` held by one edit at a time: against the other requests of this console by
    `console_lock`, against other console processes by an exclusive lock on the file
    `.<name>.lock` beside it, waited for in a thread so the loop runs on meanwhile."""
    async with console_lock:
        with open(path.with_name(f".{path.name}.lock"), "a") as handle:
            await asyncio.to_thread(fcntl.flock, handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
