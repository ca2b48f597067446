"""Which file a call's recording is, for the console to play: the path its CDR names, only
when it lies under router.yaml's `recordings_dir` once every `..` and symbolic link is
resolved, and is a regular file. A CDR naming any other path (a database edited by hand, a
directory moved) never lets a page read a file outside the recordings."""

from __future__ import annotations

from pathlib import Path


def recording_file(recordings_dir: str, path: str) -> Path | None:
    """The recording file at `path`, resolved; None when it is not a file under
    `recordings_dir` (or is gone)."""
    named = Path(path)
    if not named.is_absolute():
        return None
    resolved = named.resolve()
    if not resolved.is_relative_to(Path(recordings_dir).resolve()):
        return None
    return resolved if resolved.is_file() else None
