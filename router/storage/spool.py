"""An append-only journal of JSON lines: where CDR operations wait while the database is down.

Every append is written whole and fsync'd before it returns, so what the journal accepted
survives a crash or power loss. An append that fails half-way is cut back off; a line left
unfinished by a crash is cut off when the journal is next opened (its records were never
accepted), so every line in the file is one complete record. The journal is blocking file
I/O on purpose: its single owner runs it in a worker thread.

A complete line can still be unreadable: garbled on disk, written by another version, or an
append cut short whose cut-back failed, glued to the next record. Such a line is moved aside
to `<journal>.bad` (appended, fsync'd, never overwritten) and reported, and the records after
it are read on: one bad line must not hold back every CDR behind it, nor be dropped unseen.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)
_CHUNK = 1 << 20
_T = TypeVar("_T")


JOURNAL_FILE = "cdr.journal"


def journal_path(spool_dir: str | Path) -> Path:
    """Where a router keeps the CDR writes its store refused (router.yaml `spool_dir`)."""
    return Path(spool_dir) / JOURNAL_FILE


def unwritten_bytes(path: Path) -> int:
    """Bytes of a journal its router has not replayed yet, read without opening it as a
    Journal (whose recovery would cut a line its router is writing); 0 without one."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class Journal:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.bad_path = self.path.with_name(self.path.name + ".bad")
        self._size, self._records = self._recover()
        self._moved_aside: set[int] = set()
        """Offsets of the lines already moved aside, skipped until the journal is cleared."""
        self.lines_moved_aside = 0
        """Lines moved aside since this journal was opened: a counter for metrics."""

    @property
    def size_bytes(self) -> int:
        return self._size

    @property
    def record_count(self) -> int:
        return self._records

    def append(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Add records at the end, durably; on failure the file is as it was before."""
        data = b"".join(
            json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
            for record in records
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            unwritten = memoryview(data)
            while unwritten:
                unwritten = unwritten[os.write(fd, unwritten) :]
            os.fsync(fd)
        except OSError:
            with suppress(OSError):
                os.ftruncate(fd, self._size)
            raise
        finally:
            os.close(fd)
        if created:
            fsync_directory(self.path.parent)
        self._size += len(data)
        self._records += len(records)

    def read(self, offset: int, limit: int, decode: Callable[[Any], _T]) -> tuple[list[_T], int]:
        """Up to `limit` records from byte `offset` on, each made by `decode` from its JSON,
        and the offset just after them. A line that cannot be parsed or decoded is moved
        aside instead; if even that fails, the OSError is raised and the line stays."""
        records: list[_T] = []
        try:
            with open(self.path, "rb") as journal:
                journal.seek(offset)
                while len(records) < limit and (line := journal.readline()):
                    if offset not in self._moved_aside:
                        try:
                            records.append(decode(json.loads(line)))
                        except Exception as error:
                            self._move_aside(line, offset, error)
                    offset += len(line)
        except (FileNotFoundError, NotADirectoryError):
            pass
        return records, offset

    def _move_aside(self, line: bytes, offset: int, error: Exception) -> None:
        """Keep an unreadable line, as it was, in the `.bad` file for someone to look at."""
        created = not self.bad_path.exists()
        with open(self.bad_path, "ab") as bad:
            bad.write(line if line.endswith(b"\n") else line + b"\n")
            bad.flush()
            os.fsync(bad.fileno())
        if created:
            fsync_directory(self.bad_path.parent)
        self._moved_aside.add(offset)
        self.lines_moved_aside += 1
        log.error(
            "CDR journal %s: the line at byte %d cannot be replayed (%s: %s); moved to %s",
            self.path,
            offset,
            type(error).__name__,
            error,
            self.bad_path,
        )

    def clear(self) -> None:
        """Empty the journal, once everything in it is safely elsewhere."""
        if self.path.exists():
            with open(self.path, "r+b") as journal:
                journal.truncate(0)
                os.fsync(journal.fileno())
        self._size = self._records = 0
        self._moved_aside.clear()

    def _recover(self) -> tuple[int, int]:
        """Size and record count of the journal, cutting off a line a crash left unfinished."""
        records = complete = position = 0
        try:
            with open(self.path, "r+b") as journal:
                while chunk := journal.read(_CHUNK):
                    records += chunk.count(b"\n")
                    last_newline = chunk.rfind(b"\n")
                    if last_newline >= 0:
                        complete = position + last_newline + 1
                    position += len(chunk)
                if complete < position:
                    journal.truncate(complete)
                    os.fsync(journal.fileno())
        except (FileNotFoundError, NotADirectoryError):
            pass
        return complete, records


def fsync_directory(directory: Path) -> None:
    """Make a new (or renamed) file's directory entry durable, not just its contents."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
