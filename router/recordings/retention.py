"""Removing the recordings whose retention is over, and never one younger than it.

Each account keeps its recordings `recording_retention_days` (tariffs.yaml; medical
subscribers must keep call records 2 years or more), else router.yaml's default. A recording
is removed only when both its call started and its file was last written before
`now - retention`: a file rewritten since, or a clock that went back, keeps it. Only files
under `recordings_dir` are ever touched, whatever a CDR names. A file already gone is noted
as purged; the CDR keeps the path and says when it was purged. One the system will not let
go (another owner's, a directory) is kept and said why, and the purge goes on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rating.tariff import Tariffs
from router.storage.protocol import Store
from router.storage.rows import Recorded

BATCH = 500


def retention_days(tariffs: Tariffs | None, number: str, default: int) -> int:
    """Days `number`'s recordings are kept: its account's, else the router's default."""
    account = tariffs.accounts.get(number) if tariffs is not None else None
    own = account.recording_retention_days if account is not None else None
    return own if own is not None else default


@dataclass
class Purge:
    """What one purge did (or, dry, would do)."""

    removed: list[tuple[Recorded, int]] = field(default_factory=list)
    """Recordings removed, with their size in bytes."""
    gone: list[Recorded] = field(default_factory=list)
    """Recordings already missing from the disk: marked purged."""
    kept: list[tuple[Recorded, str]] = field(default_factory=list)
    """Recordings past their retention by their call that stay, and why."""

    @property
    def bytes_removed(self) -> int:
        return sum(size for _, size in self.removed)


async def purge_recordings(
    store: Store,
    tariffs: Tariffs | None,
    recordings_dir: str,
    default_days: int,
    now: datetime,
    *,
    dry_run: bool,
) -> Purge:
    """Remove (unless `dry_run`) every recording past its account's retention at `now`."""
    root = Path(recordings_dir).resolve()
    result = Purge()
    for number in await store.recorded_numbers():
        days = retention_days(tariffs, number, default_days)
        cutoff = now - timedelta(days=days)
        async for recorded in _recordings(store, number, cutoff):
            why = _why_kept(Path(recorded.path), root, cutoff)
            if why is None:
                try:
                    size = _remove(Path(recorded.path), dry_run)
                except OSError as error:  # not ours to remove (its owner, a directory)
                    result.kept.append((recorded, f"cannot remove it: {error.strerror}"))
                    continue
                if size is None:
                    result.gone.append(recorded)
                else:
                    result.removed.append((recorded, size))
                if not dry_run:
                    await store.recording_purged(recorded.call_id, now)
            else:
                result.kept.append((recorded, why))
    return result


async def _recordings(store: Store, number: str, cutoff: datetime) -> AsyncIterator[Recorded]:
    """A number's recordings before the cutoff, oldest first, read a batch at a time."""
    last = None
    while True:
        page = await store.recordings_before(number, cutoff, last, BATCH)
        for recorded in page:
            yield recorded
        if len(page) < BATCH:
            return
        last = page[-1]


def _why_kept(path: Path, root: Path, cutoff: datetime) -> str | None:
    """Why a recording past its retention by its call must stay; None to remove it."""
    if path.is_symlink():  # the router writes files; removing a link would leave the audio
        return "a symbolic link, not a recording the router wrote: left alone"
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        return f"outside recordings_dir {root}: left alone"
    try:
        written = datetime.fromtimestamp(resolved.stat().st_mtime, UTC)
    except FileNotFoundError:
        return None
    if written >= cutoff:
        return f"file written {written.isoformat(timespec='seconds')}, within its retention"
    return None


def _remove(path: Path, dry_run: bool) -> int | None:
    """Remove the file; its size, or None when it was already gone."""
    try:
        size = path.stat().st_size
        if not dry_run:
            path.unlink()
    except FileNotFoundError:
        return None
    return size
