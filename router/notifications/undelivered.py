"""What the router could not deliver, kept in a JSON-lines file in the spool directory until
an operator replays or drops it: call events no CRM accepted (`webhooks.undelivered`,
`hotline400 webhooks replay`) and text messages the SMS gateway did not take
(`sms.undelivered`, `hotline400 sms replay`).

The router appends and the replay command rewrites the same file, possibly at the same
moment: both hold an exclusive `flock` on it while they touch it, so an event appended
during a replay is not lost. A replay also holds, from reading to rewriting, the lock of
a file beside it (`replaying`), so a second replay waits and then finds the events the
first delivered gone, rather than sending them again. Appends are fsync'd, like the CDR
journal. A replay's rewrite goes to a file beside it, made durable, then renamed over it:
a replay killed while rewriting leaves every kept event where it was. An append that waited
for the lock while the file was replaced appends to the new one.
Blocking file I/O on purpose: the router calls it from a worker thread, `Keeper` gathering
the records given up into one append every KEEP_EVERY_S.

How many records a file holds is a metric, read at every scrape: the router counts its own
appends, and recounts the file (at most every RECOUNT_EVERY_S, and only when its size or
identity changed) since a replay or drop in another process rewrites it. A write that fails
(disk full, permissions) is counted, for its alert, besides raising.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from router.storage.spool import fsync_directory

log = logging.getLogger("hotline400.undelivered")

UNDELIVERED_FILE = "webhooks.undelivered"
REPLAY_LOCK_SUFFIX = ".replay"
KEEP_EVERY_S = 0.5
"""Records given up are written to the spool together, this often."""
RECOUNT_EVERY_S = 15.0
"""The kept count is checked against the file at most this often."""

_Signature = tuple[int, int, int] | None
"""A file's inode, size and modification time; None while there is no file."""


class UndeliveredEvents:
    def __init__(
        self,
        spool_dir: Path | str,
        name: str = UNDELIVERED_FILE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(spool_dir) / name
        self.write_failures = 0
        """Appends that failed (disk full, permissions, ...) since the start."""
        self._clock = clock
        self._mutex = threading.Lock()
        self._count = 0
        self._counted: _Signature = None
        self._checked_at = -RECOUNT_EVERY_S

    def keep(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Add records at the end of the file, durably; after a line a crash cut short, on a
        line of their own (that line stays unreadable, they do not)."""
        data = b"".join(_line(record) for record in records)
        try:
            with _locked(self.path) as fd:
                before = _signature(fd)
                end = os.lseek(fd, 0, os.SEEK_END)
                if end and os.pread(fd, 1, end - 1) != b"\n":
                    data = b"\n" + data
                _write_all(fd, data)
                os.fsync(fd)
                with self._mutex:
                    if before == self._counted:  # the count is of the file as it was
                        self._count += len(records)
                        self._counted = _signature(fd)
                    else:  # changed by another process since: recounted at the next read
                        self._checked_at = -RECOUNT_EVERY_S
        except OSError:
            with self._mutex:
                self.write_failures += 1
            raise

    def count(self) -> int:
        """How many records the file holds: this process's appends counted as they are made,
        the file recounted when another process (a replay, a drop) changed it, which is
        checked at most every RECOUNT_EVERY_S; a file that cannot be read leaves the count
        as it was. Blocking: called from a worker thread."""
        now = self._clock()
        with self._mutex:
            if now - self._checked_at < RECOUNT_EVERY_S:
                return self._count
            self._checked_at = now
        if not self.path.exists():
            with self._mutex:
                self._count, self._counted = 0, None
                return 0
        try:
            with _locked(self.path) as fd, self._mutex:
                if _signature(fd) != self._counted:
                    self._count, self._counted = len(_read(fd)), _signature(fd)
                return self._count
        except OSError:
            return self._count

    def read(self) -> list[dict[str, Any]]:
        """The events kept now, oldest first."""
        if not self.path.exists():
            return []
        with _locked(self.path) as fd:
            return _read(fd)

    def settle(self, delivered: Set[str], retried: Mapping[str, dict[str, Any]]) -> None:
        """After a replay: drop the events delivered, update those tried again, and keep
        every event appended meanwhile. The lock is held only for this rewrite, never
        while POSTing, so the router's appends wait milliseconds at most."""
        with _locked(self.path) as fd:
            records = [
                retried.get(record.get("id", ""), record)
                for record in _read(fd)
                if record.get("id") not in delivered
            ]
            _replace(self.path, b"".join(_line(record) for record in records))

    @contextmanager
    def replaying(self) -> Iterator[None]:
        """Held by a replay from its reading to its `settle`: one replay at a time, and the
        router's appends never wait for it."""
        with _locked(self.path.with_name(self.path.name + REPLAY_LOCK_SUFFIX)):
            yield


class Keeper:
    """The router's side of a spool: records given up are gathered and appended together
    KEEP_EVERY_S apart in a worker thread (a receiver down under load gives up thousands a
    minute). Each batch written is handed to `kept`; one that cannot be written is logged as
    lost and handed to `lost`."""

    def __init__(
        self,
        spool: UndeliveredEvents,
        what: str,
        kept: Callable[[list[dict[str, Any]]], None] = lambda records: None,
        lost: Callable[[list[dict[str, Any]]], None] = lambda records: None,
    ) -> None:
        self.spool = spool
        self.what = what
        self.kept = kept
        self.lost = lost
        self._to_keep: list[dict[str, Any]] = []
        self._keeper: asyncio.Task[None] | None = None

    def add(self, record: dict[str, Any]) -> None:
        self._to_keep.append(record)
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.get_running_loop().create_task(self._keep_soon())

    async def close(self) -> None:
        """Write what is gathered now (at shutdown)."""
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        await self._keep_soon(wait=0)

    async def _keep_soon(self, wait: float = KEEP_EVERY_S) -> None:
        while self._to_keep:
            await asyncio.sleep(wait)
            batch, self._to_keep = self._to_keep, []
            try:
                await asyncio.to_thread(self.spool.keep, batch)
            except OSError as error:
                log.error(
                    "%d %s lost: cannot keep them in %s: %s",
                    len(batch),
                    self.what,
                    self.spool.path,
                    error,
                )
                self.lost(batch)
            else:
                self.kept(batch)


@contextmanager
def _locked(path: Path) -> Iterator[int]:
    """The file at `path`, locked: if a rewrite renamed another file over it while this
    waited for the lock, the new one is opened and locked instead."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _is_at(fd, path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _signature(fd: int) -> _Signature:
    stat = os.fstat(fd)
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _is_at(fd: int, path: Path) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _replace(path: Path, data: bytes) -> None:
    """`path` holds `data` once this returns, and either all of it or what it held before
    if the process dies on the way."""
    new = path.with_name(path.name + ".new")
    fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(new, path)
    fsync_directory(path.parent)  # the rename itself, durable


def _line(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _read(fd: int) -> list[dict[str, Any]]:
    """Every complete line; a line a crash left unfinished is dropped (never accepted)."""
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    records = []
    for line in b"".join(chunks).split(b"\n"):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def _write_all(fd: int, data: bytes) -> None:
    unwritten = memoryview(data)
    while unwritten:
        unwritten = unwritten[os.write(fd, unwritten) :]
