"""The CDR model: what it refuses, how its operations survive the journal, and how the
store's rows hold it (the fast row builders agree with the column lists the models give)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating.ledger import LedgerEntry, LedgerKind
from router.storage.cdr import (
    CDR,
    AddLeg,
    CallerRegion,
    FinishCall,
    ForwardReason,
    Leg,
    Outcome,
    PostLedger,
    Rekeyed,
    StartCall,
    encode_value,
    op_from_json,
    op_to_json,
)
from router.storage.rows import (
    CDR_COLUMNS,
    LEDGER_COLUMNS,
    LEG_COLUMNS,
    batch_rows,
    cdr_from_row,
    cdr_params,
    finish_columns,
    finish_params,
    ledger_params,
    leg_from_row,
    leg_params,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 22, 18, 14, 24, tzinfo=SHANGHAI)
JINAN = CallerRegion(province="山东", city="济南", area_code="0531")


def a_call(started_at: datetime = T0, **fields: object) -> CDR:
    values: dict[str, object] = {
        "call_id": "1795371264.1",
        "number": "4000000001",
        "caller_raw": "+86 531 8888 9999",
        "caller": "053188889999",
        "caller_kind": "fixed",
        "started_at": started_at,
        "region": JINAN,
        **fields,
    }
    return CDR(**values)  # type: ignore[arg-type]


def a_leg(seq: int, started_at: datetime = T0) -> Leg:
    return Leg(seq, f"1380000001{seq}", "BUSY", started_at, 5, 0, ForwardReason.PRIMARY)


def test_money_that_is_not_an_exact_fen_amount_is_refused() -> None:
    with pytest.raises(ValueError, match="fen"):
        FinishCall(
            "x", {"caller_share": Decimal("0.001"), "callee_share": Decimal(0), "total": 0.001}
        )
    with pytest.raises(ValueError, match="fen"):
        FinishCall("x", {"caller_share": 0.1, "callee_share": 0.2, "total": 0.3})


def test_shares_must_come_together_and_add_up_to_the_total() -> None:
    with pytest.raises(ValueError, match="together"):
        FinishCall("x", {"total": Decimal("0.30")})
    with pytest.raises(ValueError, match="equal total"):
        FinishCall(
            "x",
            {"caller_share": Decimal("0.10"), "callee_share": Decimal("0.10"), "total": Decimal(1)},
        )


def test_a_finish_can_set_only_end_of_call_fields() -> None:
    with pytest.raises(ValueError, match="number"):
        FinishCall("x", {"number": "4000000002"})


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        a_call(started_at=datetime(2026, 11, 22, 18, 14, 24))
    with pytest.raises(ValueError, match="timezone-aware"):
        FinishCall("x", {"ended_at": datetime(2026, 11, 22, 18, 14, 24)})


money = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.one_of(st.just(SHANGHAI), offsets),
)


def answered(
    call_id: str, caller_share: Decimal, callee_share: Decimal, at: datetime, rule: str
) -> FinishCall:
    return FinishCall(
        call_id,
        {
            "answered_at": at,
            "outcome": Outcome.ANSWERED,
            "rule": rule,
            "caller_share": caller_share,
            "callee_share": callee_share,
            "total": caller_share + callee_share,
        },
    )


@given(caller_share=money, callee_share=money, answered_at=moments, rule=st.text())
def test_operations_survive_the_journal_json_unchanged(
    caller_share: Decimal, callee_share: Decimal, answered_at: datetime, rule: str
) -> None:
    ops = [
        StartCall(a_call()),
        AddLeg("1795371264.1", a_leg(1, started_at=answered_at)),
        answered("1795371264.1", caller_share, callee_share, answered_at, rule),
        PostLedger(
            LedgerEntry("4006001234", answered_at, -callee_share, LedgerKind.CALL, "c9"),
            included_seconds=6,
        ),
        AddLeg("1795371264.1~2", a_leg(2, started_at=answered_at), stored_id=True),
        FinishCall("1795371264.1~2", {"rule": rule}, stored_id=True),
        PostLedger(
            LedgerEntry("4006001234", answered_at, -callee_share, LedgerKind.CALL, "c9~2"),
            stored_id=True,
        ),
        Rekeyed("1795371264.1", "1795371264.1~2"),
    ]
    for op in ops:
        assert op_from_json(json.loads(json.dumps(op_to_json(op)))) == op


# --- rows: the fast builders hold to the column lists the models give ----------------------


def test_the_cdr_columns_are_the_model_fields_with_the_region_spread_and_two_stored_only() -> None:
    assert CDR_COLUMNS == (
        "call_id",
        "number",
        "caller_raw",
        "caller",
        "caller_kind",
        "started_at",
        "started_us",
        "province",
        "city",
        "area_code",
        "answered_at",
        "ended_at",
        "billable_seconds",
        "outcome",
        "rule",
        "caller_share",
        "callee_share",
        "total",
        "tariff_id",
        "note",
        "menu_path",
        "menu_digits",
        "language",
        "recording_path",
        "recording_purged_at",
        "survey_score",
        "router",
    )
    assert ("call_id", *Leg.__dataclass_fields__) == LEG_COLUMNS


@given(caller_share=money, callee_share=money, started_at=moments, note=st.text())
def test_a_cdr_row_holds_every_field_by_its_column_name_and_reads_back_equal(
    caller_share: Decimal, callee_share: Decimal, started_at: datetime, note: str
) -> None:
    cdr = a_call(
        started_at=started_at,
        answered_at=started_at + timedelta(seconds=7),
        billable_seconds=42,
        outcome=Outcome.ANSWERED,
        caller_share=caller_share,
        callee_share=callee_share,
        total=caller_share + callee_share,
        tariff_id="office@v1",
        note=note,
        legs=(a_leg(1, started_at),),
    )
    row = dict(zip(CDR_COLUMNS, cdr_params(cdr, "r1"), strict=True))
    region = {"province": "山东", "city": "济南", "area_code": "0531"}
    stored_only = {"started_us": row["started_us"], "router": "r1"}
    fields = {
        name: encode_value(getattr(cdr, name))
        for name in CDR_COLUMNS
        if name not in region and name not in stored_only
    }
    assert row == {**fields, **region, **stored_only}
    assert row["started_us"] == (started_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        microseconds=1
    )
    leg_row = {
        f"leg_{name}": value
        for name, value in zip(LEG_COLUMNS, leg_params(cdr.call_id, cdr.legs[0]), strict=True)
    }
    assert cdr_from_row(row, (leg_from_row(leg_row, "leg_"),)) == cdr


def test_a_finish_row_holds_only_the_columns_it_sets() -> None:
    fields = {"outcome": Outcome.BUSY, "billable_seconds": 42}
    columns = finish_columns(fields)
    assert columns == ("billable_seconds", "outcome")  # in FINISH_COLUMNS order
    assert finish_params("c1", fields, columns) == (42, "busy", "c1")


def test_finishes_setting_the_same_columns_share_one_update_in_op_order() -> None:
    started = datetime(2026, 11, 22, 10, 0, tzinfo=SHANGHAI)
    busy = {"outcome": Outcome.BUSY, "ended_at": started}
    answered = {"outcome": Outcome.ANSWERED, "ended_at": started, "billable_seconds": 60}
    ops = [
        FinishCall("c1", busy),
        FinishCall("c2", busy),
        FinishCall("c3", answered),
        FinishCall("c4", {}),
        FinishCall("c1", {"note": "completed again"}),
    ]
    runs = batch_rows(ops, SHANGHAI, "").finishes
    assert [(run.columns, [row[-1] for row in run.rows]) for run in runs] == [
        (("ended_at", "outcome"), ["c1", "c2"]),
        (("billable_seconds", "ended_at", "outcome"), ["c3"]),
        (("note",), ["c1"]),  # after the earlier finish of c1, as the ops came
    ]


def test_a_ledger_row_is_in_fen_in_the_month_and_day_of_the_billing_zone() -> None:
    late = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)  # 2026-12-01 00:30 in Beijing
    entry = LedgerEntry("4006001234", late, Decimal("-1.25"), LedgerKind.CALL, "c1", "local")
    row = dict(zip(LEDGER_COLUMNS, ledger_params(entry, 60, SHANGHAI), strict=True))
    assert (row["month"], row["day"], row["amount_fen"], row["included_seconds"]) == (
        "2026-12",
        "2026-12-01",
        -125,
        60,
    )
