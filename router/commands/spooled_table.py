"""A table of text cells printed with each column as wide as its widest cell, its rows in
groups printed one after the other, whose rows wait in temporary files until it is printed.

The widths are known only once the last row is in, and a command such as `hotline400 rate`
may print a row for each of millions of calls: memory keeps the widths and an open file a
group, never the rows. Each row is kept as a JSON line, so a cell holding a tab or a line
break comes back as it went in. The files are anonymous temporary files, gone once closed.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import IO, TextIO


class SpooledTable:
    """Rows added in any order to its groups (a file each); `write` prints the header,
    then each group's rows in the order they were added, the columns two spaces apart, each
    line cut at its last character."""

    def __init__(self, header: Sequence[str], spools: Sequence[IO[str]]) -> None:
        self.header = tuple(header)
        self.widths = [len(cell) for cell in self.header]
        self.rows = 0
        self._spools = spools

    def add(self, row: Sequence[str], group: int = 0) -> None:
        self.widths = [max(width, len(cell)) for width, cell in zip(self.widths, row, strict=True)]
        self._spools[group].write(json.dumps(list(row)) + "\n")
        self.rows += 1

    def write(self, out: TextIO) -> None:
        """The whole table on `out`; nothing when no row was added."""
        if not self.rows:
            return
        out.write(self._line(self.header))
        for spool in self._spools:
            spool.seek(0)
            for line in spool:
                out.write(self._line(json.loads(line)))

    def _line(self, row: Sequence[str]) -> str:
        cells = (cell.ljust(width) for cell, width in zip(row, self.widths, strict=True))
        return "  ".join(cells).rstrip() + "\n"


@contextmanager
def spooled_table(header: Sequence[str], groups: int = 1) -> Iterator[SpooledTable]:
    """A table of `groups` groups over temporary files, closed (and so gone) on leaving."""
    with ExitStack() as stack:
        spools = [
            stack.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8"))
            for _ in range(groups)
        ]
        yield SpooledTable(header, spools)
