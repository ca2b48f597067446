"""What the in-call features keep on a CDR, on each engine: the menu path, keys and prompt
language are written at the call's end and read back, and the menu paths are counted for
the reports (schema version 9), from an index of their own (version 10); the satisfaction
score likewise (version 13)."""

from __future__ import annotations

from datetime import timedelta

import pytest

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


async def test_survey_scores_are_kept_and_summed_per_number(opened: ConfiguredStore) -> None:
    """Schema version 13: a CDR's score, summed for the reports from its own index."""
    scores = {"s1": ("4000000001", 5), "s2": ("4000000001", 2), "s3": ("4000000002", 4)}
    for call_id, (number, score) in {**scores, "s4": ("4000000001", None)}.items():
        cdr = a_call(call_id, number=number, started_at=T0)
        fields: dict[str, object] = {"outcome": Outcome.ANSWERED, "ended_at": T0}
        if score is not None:
            fields["survey_score"] = score
        await opened.apply([StartCall(cdr), FinishCall(call_id, fields)])
    stored = await opened.get_cdr("s1")
    assert stored is not None and stored.survey_score == 5
    unscored = await opened.get_cdr("s4")
    assert unscored is not None and unscored.survey_score is None
    numbers = ["4000000001", "4000000002", "4000000003"]
    summed = await opened.survey_scores(numbers, T0, T0 + timedelta(seconds=1))
    assert [(s.number, s.scored, s.average) for s in summed] == [
        ("4000000001", 2, 3.5),
        ("4000000002", 1, 4.0),
    ]
    later = T0 + timedelta(seconds=1)
    assert await opened.survey_scores(numbers, later, later + timedelta(hours=1)) == []


async def test_survey_scores_are_summed_from_their_own_index(
    opened: ConfiguredStore, engine: Engine
) -> None:
    if engine.name == "sqlite":
        plan = await engine.sql(
            "EXPLAIN QUERY PLAN SELECT number, COUNT(*), SUM(survey_score) FROM cdrs"
            " WHERE number IN ('4000000001', '4000000002') AND started_us >= 0"
            " AND started_us < 1 AND survey_score IS NOT NULL GROUP BY 1"
        )
        assert any("COVERING INDEX cdrs_survey_scores" in str(step) for step in plan), plan
    else:
        found = await engine.sql(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'cdrs_survey_scores'"
        )
        assert "WHERE (survey_score IS NOT NULL)" in found[0][0]


def test_a_score_outside_1_to_5_is_refused_when_the_call_is_finished() -> None:
    with pytest.raises(ValueError, match="survey score from 1 to 5"):
        FinishCall("s5", {"survey_score": 6})
