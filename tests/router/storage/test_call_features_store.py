"""What the in-call features keep on a CDR, on each engine: the menu path, keys and prompt
language are written at the call's end and read back, and the menu paths are counted for
the reports (schema version 9), from an index of their own (version 10)."""

from __future__ import annotations

from datetime import timedelta

from router.storage.cdr import FinishCall, Outcome, StartCall
from router.storage.location import ConfiguredStore
from tests.router.storage.test_store_contract import T0, Engine, a_call, engine, opened

__all__ = ["engine", "opened"]  # the fixtures, one store per engine


async def test_menu_fields_are_kept_and_menu_paths_counted(opened: ConfiguredStore) -> None:
    ways = {"c1": "main:1", "c2": "main:2>english:1", "c3": "main:1", "c4": None}
    for call_id, path in ways.items():
        cdr = a_call(call_id, started_at=T0)
        fields: dict[str, object] = {"outcome": Outcome.ANSWERED, "ended_at": T0}
        if path is not None:
            fields |= {"menu_path": path, "menu_digits": "21", "language": "en"}
        await opened.apply([StartCall(cdr), FinishCall(call_id, fields)])
    stored = await opened.get_cdr("c2")
    assert stored is not None
    assert (stored.menu_path, stored.menu_digits, stored.language) == (
        "main:2>english:1",
        "21",
        "en",
    )
    counted = await opened.menu_paths(["4000000001"], T0, T0 + timedelta(seconds=1))
    assert [(m.path, m.calls) for m in counted] == [("main:1", 2), ("main:2>english:1", 1)]
    later = T0 + timedelta(seconds=1)
    assert await opened.menu_paths(["4000000001"], later, later + timedelta(hours=1)) == []


async def test_menu_paths_are_counted_from_their_own_index_without_reading_calls(
    opened: ConfiguredStore, engine: Engine
) -> None:
    """A number's calls without a menu are not in the index; the path is (schema version 10)."""
    if engine.name == "sqlite":
        plan = await engine.sql(
            "EXPLAIN QUERY PLAN SELECT menu_path, COUNT(*) FROM cdrs"
            " WHERE number IN ('4000000001', '4000000002') AND started_us >= 0"
            " AND started_us < 1 AND menu_path IS NOT NULL GROUP BY 1"
        )
        assert any("COVERING INDEX cdrs_menu_paths" in str(step) for step in plan), plan
    else:
        found = await engine.sql(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'cdrs_menu_paths'"
        )
        assert "WHERE (menu_path IS NOT NULL)" in found[0][0]
