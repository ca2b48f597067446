"""Call events no CRM accepted, kept in a JSON-lines file in the spool directory until
`hotline400 webhooks replay` delivers them.

The router appends and the replay command rewrites the same file, possibly at the same
moment: both hold an exclusive `flock` on it while they touch it, so an event appended
during a replay is not lost. A replay also holds, from reading to rewriting, the lock of
a file beside it (`replaying`), so a second replay waits and then finds the events the
first delivered gone, rather than sending them again. Appends are fsync'd, like the CDR
journal. A replay's rewrite goes to a file beside it, made durable, then renamed over it:
a replay killed while rewriting leaves every kept event where it was. An append that waited
for the lock while the file was replaced appends to the new one.
Blocking file I/O on purpose: the router calls it from a worker thread.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Mapping, Sequence, Set
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from router.storage.spool import fsync_directory

UNDELIVERED_FILE = "webhooks.undelivered"
REPLAY_LOCK_FILE = "webhooks.undelivered.replay"


class UndeliveredEvents:
    def __init__(self, spool_dir: Path | str) -> None:
        self.path = Path(spool_dir) / UNDELIVERED_FILE

    def keep(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Add events at the end of the file, durably; after a line a crash cut short, on a
        line of their own (that line stays unreadable, they do not)."""
        data = b"".join(_line(record) for record in records)
        with _locked(self.path) as fd:
            end = os.lseek(fd, 0, os.SEEK_END)
            if end and os.pread(fd, 1, end - 1) != b"\n":
                data = b"\n" + data
            _write_all(fd, data)
            os.fsync(fd)

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
        with _locked(self.path.with_name(REPLAY_LOCK_FILE)):
            yield


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
