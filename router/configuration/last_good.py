"""The last good version of each configuration file, kept in the router's own spool_dir.

A router restarted after a bad edit has no previous version in memory: without these
copies a broken plan would be a dead line and a broken tariffs.yaml a router with no prices.
A copy holds the very bytes that loaded, under the file's name in the config directory
(spool_dir/last-good/plans/<number>.yaml, spool_dir/last-good/tariffs.yaml, ...), is
replaced atomically (temp file, then rename) and only when the content changed, so its time
is when that version was first served. A copy is a safety net, never a reason to stop:
one that cannot be written or removed is a warning.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from dialplan.errors import ConfigError
from dialplan.yaml_source import read_config_text

LAST_GOOD_DIR = "last-good"

log = logging.getLogger("hotline400.plans")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Copy(Generic[T]):
    """A last good version read back: what it gives, where it is and when it was kept."""

    value: T
    path: Path
    saved: str


class LastGood:
    """Copies of the configuration files that loaded, named as in the config directory."""

    def __init__(self, directory: Path, zone: ZoneInfo) -> None:
        self.directory = directory
        self.zone = zone
        """The zone a copy's time is told in (router.yaml's)."""
        self._failing = False
        """Whether the latest copy could not be written: told once, not for every file of
        every reload, and told again when copies are written once more."""

    def path(self, name: str) -> Path:
        return self.directory / name

    def saved(self, name: str) -> str:
        """When the copy's content was first kept, to say how old the version serving is."""
        mtime = self.path(name).stat().st_mtime
        return datetime.fromtimestamp(mtime, self.zone).isoformat(sep=" ", timespec="seconds")

    def load(self, name: str, parse: Callable[[str, str], T]) -> Copy[T] | None:
        """The last good version of config file `name` as `parse` reads it; None without
        one, or when it no longer loads (a schema changed by an upgrade, a damaged disk):
        then a warning. The router serves it at start, the console shows it
        (router.configuration.served): both read it here, so they read it alike."""
        path = self.path(name)
        if not path.exists():
            return None
        try:
            value = parse(str(path), read_config_text(path))
            saved = self.saved(name)
        except ConfigError as error:
            why = "; ".join(str(problem) for problem in error.problems)
            log.warning("last good copy %s no longer loads, ignored: %s", path, why)
            return None
        except Exception as error:  # a copy must never stop the router from starting
            log.warning("last good copy %s no longer loads, ignored: %r", path, error)
            return None
        return Copy(value, path, saved)

    def keep(self, name: str, text: str) -> None:
        """Make `text` the last good version of `name`, unless it already is."""
        path = self.path(name)
        data = text.encode("utf-8")
        try:
            if path.read_bytes() == data:
                return
        except OSError:
            pass  # no copy yet, or an unreadable one: write it
        temp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new")
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())  # a copy renamed into place is never left empty
            os.replace(temp, path)
        except OSError as error:
            if not self._failing:
                log.warning(
                    "last good copy %s not written: %s; a restart serves only the files that "
                    "load then (further copies failing are not logged)",
                    path,
                    error,
                )
            self._failing = True
            if temp is not None:
                Path(temp).unlink(missing_ok=True)
            return
        if self._failing:
            log.info("last good copies written again in %s", self.directory)
            self._failing = False

    def forget(self, name: str) -> None:
        """Drop the copy of a file gone from the config directory: a file deleted on purpose
        (a number taken off) must not come back at the next start."""
        self._remove(self.path(name))

    def prune(self, folder: str, config_folder: Path) -> None:
        """Drop the copies under `folder` whose file is gone from `config_folder`."""
        try:
            copies = list((self.directory / folder).iterdir())
        except FileNotFoundError:
            return
        except OSError as error:
            log.warning("last good copies in %s not checked: %s", self.directory / folder, error)
            return
        for copy in copies:
            if not (config_folder / copy.name).exists():
                self._remove(copy)

    @staticmethod
    def _remove(path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            log.warning("last good copy %s not removed: %s", path, error)
