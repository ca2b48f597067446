"""NULL parameters on the SQLite store: found in sqlite3's adapter registry, stored as NULL."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import router.storage.sqlite  # noqa: F401  (registers the adapter on import)


def test_the_store_registers_none_so_binding_it_skips_the_protocol_lookup() -> None:
    assert (type(None), sqlite3.PrepareProtocol) in sqlite3.adapters


def test_none_is_still_stored_as_null_next_to_every_other_type(tmp_path: Path) -> None:
    with closing(sqlite3.connect(tmp_path / "binding.db")) as db:
        db.execute("CREATE TABLE t (a, b, c, d)")
        rows = [(None, 1, "x", 2.5), (7, None, None, b"")]
        db.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
        rows = db.execute("SELECT typeof(a), typeof(b), typeof(c), typeof(d) FROM t").fetchall()
    assert rows == [("null", "integer", "text", "real"), ("integer", "null", "null", "blob")]
