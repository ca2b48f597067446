"""One vocabulary: every way a call ends has an outcome, a cause, a metric label and a line in
the documentation, and the router leaves exactly the channel variables the contract names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from dialplan.decision import DialClass, RejectReason
from router.call.channel_contract import (
    ENDINGS,
    ChannelVariable,
    Outcome,
    RouterRefusal,
)
from router.monitoring.metrics import Metrics
from tests.conftest import REPO, call, running_router

ROOT = REPO
REFUSALS = [*RejectReason, *RouterRefusal]
CDR_ONLY = {Outcome.IN_PROGRESS, Outcome.INTERRUPTED}
"""Outcomes only a CDR holds: the call runs, or the router died before it could say."""
HOTLINE_STATUSES = [outcome for outcome in Outcome if outcome not in CDR_ONLY]


def test_every_reason_refusal_and_dial_class_has_exactly_one_ending() -> None:
    keys = [*RejectReason, *RouterRefusal, *DialClass]
    assert len(set(map(str, keys))) == len(keys), "two enums share a value: their rows collide"
    assert sorted(ENDINGS, key=str) == sorted(keys, key=str)
    for key in keys:
        assert type(next(k for k in ENDINGS if k == key)) is type(key)


@pytest.mark.parametrize("refusal", REFUSALS, ids=str)
def test_every_refusal_hangs_up_with_a_cause_and_leaves_a_channel_status(refusal) -> None:
    ending = ENDINGS[refusal]
    assert ending.cause is not None
    assert ending.outcome in HOTLINE_STATUSES


@pytest.mark.parametrize("dial_class", list(DialClass), ids=str)
def test_a_call_ended_by_its_dial_result_is_left_to_asterisk(dial_class: DialClass) -> None:
    ending = ENDINGS[dial_class]
    assert ending.cause is None
    assert ending.outcome in HOTLINE_STATUSES


def test_every_channel_status_is_reached_and_the_cdr_only_outcomes_never_are() -> None:
    reached = {ending.outcome for ending in ENDINGS.values()}
    assert reached == set(HOTLINE_STATUSES)


def test_every_outcome_and_refusal_reason_is_a_metric_label_of_its_own() -> None:
    metrics = Metrics(serves=lambda number: number == "4006001234")
    refusals = [*RejectReason, *(r for r in RouterRefusal if r is not RouterRefusal.ERROR)]
    for outcome in Outcome:
        metrics.call_ended("4006001234", outcome)
    for reason in refusals:
        metrics.rejected(reason)
    text = generate_latest(metrics.registry).decode()
    for outcome in Outcome:
        assert f'hotline400_calls_total{{number="4006001234",outcome="{outcome}"}} 1.0' in text
    for reason in refusals:
        assert f'hotline400_rejections_total{{reason="{reason}"}} 1.0' in text
    assert 'outcome="other"' not in text
    assert 'hotline400_rejections_total{reason="other"} 0.0' in text


@pytest.mark.parametrize("refusal", REFUSALS, ids=str)
def test_the_architecture_document_shows_each_refusal_with_its_status_and_cause(refusal) -> None:
    document = (ROOT / "docs" / "architecture.md").read_text()
    rows = [line for line in document.splitlines() if line.startswith(f"| `{refusal}`")]
    assert len(rows) == 1, f"docs/architecture.md has no row for {refusal}"
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    ending = ENDINGS[refusal]
    assert cells[1] == ending.outcome
    assert re.match(rf"{int(ending.cause)}\b", cells[2]), cells[2]


@pytest.mark.parametrize(
    "document", ["README.md", "asterisk/extensions.conf", "docs/architecture.md"]
)
def test_documents_name_every_channel_status_and_variable(document: str) -> None:
    text = (ROOT / document).read_text()
    for status in HOTLINE_STATUSES:
        assert re.search(rf"\b{status}\b", text), f"{document} does not name {status}"
    for variable in ChannelVariable:
        assert variable in text


@pytest.mark.parametrize(
    ("dialled", "status"),
    [("4000000001", Outcome.ANSWERED), ("4009999999", Outcome.UNKNOWN_NUMBER)],
)
async def test_the_router_leaves_exactly_the_contracts_variables(
    tmp_path: Path, dialled: str, status: Outcome
) -> None:
    async with running_router(tmp_path) as router:
        result = await call(router, dialled=dialled, uniqueid="contract.1")
    assert set(result.variables) >= set(ChannelVariable)
    assert {name for name in result.variables if name.startswith("HOTLINE_")} == set(
        ChannelVariable
    )
    assert result.variables[ChannelVariable.STATUS] == status
