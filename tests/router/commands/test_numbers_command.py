"""`hotline400 numbers` and `providers` on each store engine: the inventory, every
transition of a number's life tried at chosen instants (`--at`), fees on the accounts the
rules name, refusals that say when an action becomes possible, and two operators reserving
one number at the same instant.

The config directory holds router.yaml (the store) and tariffs.yaml: 4008207788 is a
prepaid account, used for arrears.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rating.ledger import LedgerKind
from router.cli import main
from tests.conftest import REPO, opened_store, store_url_of

PREMIUM, ORDINARY = "4008000888", "4006031475"
SHANGHAI = ZoneInfo("Asia/Shanghai")
TARIFFS = """\
caller_tariffs:
  fixed: {per_seconds: 60, charge: 0.11}
  mobile: {per_seconds: 60, charge: 0.15}
  other: {per_seconds: 60, charge: 0.11}
features:
  recording: 100.00
packages:
  office:
    monthly_rent: 50.00
    nationwide: {per_seconds: 60, charge: 0.10}
accounts:
  "4006031475":
    package: office
    features: {recording: 2026-12-10}
"""
PROVIDER = [
    "--full-name", "East Telecom Services", "--licence", "91310000MA1FL0XX1C",
    "--legal-rep", "Wang Wei", "--id-number", "110101199003071233",
]  # fmt: skip
MATERIAL = [
    "--licence", "91310000MA1FL0YY26", "--legal-rep", "Li Na",
    "--id-number", "11010519491231002X",
]  # fmt: skip


@pytest.fixture
def config(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "config"
    config.mkdir()
    (config / "router.yaml").write_text(f'store: "{store_url}"\n', encoding="utf-8")
    (config / "tariffs.yaml").write_text(TARIFFS, encoding="utf-8")
    (tmp_path / "numbers.txt").write_text(
        "# the first block of 4008\n4008000000-4008000999\n4006031475\n", encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    return config


def run(config: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--config", str(config)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def stocked(config: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The pool of 1,001 numbers and two providers."""
    assert run(config, capsys, "numbers", "import", "numbers.txt")[0] == 0
    assert run(config, capsys, "providers", "add", "sp-east", *PROVIDER)[0] == 0
    west = [*PROVIDER[:3], "91110000MA01ABCD2Q", *PROVIDER[4:]]  # a business of its own
    assert run(config, capsys, "providers", "add", "sp-west", *west)[0] == 0
    return config


def test_import_reads_ranges_and_numbers_and_a_second_import_adds_nothing(config, capsys):
    code, out, _ = run(config, capsys, "numbers", "import", "numbers.txt")
    assert code == 0 and "imported 1001 number(s) into the pool; 0 already" in out
    code, out, _ = run(config, capsys, "numbers", "import", "numbers.txt", "--format", "json")
    assert json.loads(out) == {
        "named": 1001,
        "added": 0,
        "already_in_inventory": 1001,
        "duplicates_in_file": 0,
    }


def test_import_counts_a_number_the_file_names_twice_once(config, capsys):
    (config.parent / "twice.txt").write_text(
        "4006031475\n4006031470-4006031479\n", encoding="utf-8"
    )
    code, out, _ = run(config, capsys, "numbers", "import", "twice.txt")
    assert (code, out) == (
        0,
        "imported 10 number(s) into the pool; 0 already in the inventory; "
        "1 duplicate(s) in the file\n",
    )
    code, out, _ = run(config, capsys, "numbers", "import", "twice.txt", "--format", "json")
    assert json.loads(out) == {
        "named": 10,
        "added": 0,
        "already_in_inventory": 10,
        "duplicates_in_file": 1,
    }


def test_an_application_without_material_is_submitted_with_the_material_later(stocked, capsys):
    assert run(stocked, capsys, "numbers", "reserve", ORDINARY, "--by", "sp-east",
               "--at", "2026-12-01 10:00")[0] == 0  # fmt: skip
    assert run(stocked, capsys, "numbers", "apply", ORDINARY, "--account", "acme",
               "--at", "2026-12-01 11:00")[0] == 0  # fmt: skip
    code, _, err = run(stocked, capsys, "numbers", "submit", ORDINARY, "--at", "2026-12-01 12:00")
    assert (code, err) == (
        1,
        "subscriber acme has no real-name material: give its licence, legal representative "
        "and ID with the submission\n",
    )
    code, out, _ = run(
        stocked, capsys, "numbers", "submit", ORDINARY, *MATERIAL, "--at", "2026-12-01 12:00"
    )
    assert code == 0 and "applied -> under_review" in out

    async def acme() -> tuple[str, str, str]:
        async with opened_store(store_url_of(stocked)) as store:
            [party] = await store.subscribers(name="acme")
            return party.licence, party.legal_representative, party.id_masked

    assert asyncio.run(acme()) == ("91310000MA1FL0YY26", "Li Na", "110***********002X")


def test_search_by_segment_grade_pattern_and_status(stocked, capsys):
    code, out, _ = run(
        stocked, capsys, "numbers", "search", "--segment", "4008", "--pattern", "888",
        "--grade", "premium", "--format", "json",
    )  # fmt: skip
    found = json.loads(out)
    assert code == 0 and [n["number"] for n in found] == [PREMIUM]
    assert all("888" in n["number"] and n["grade"] != "ordinary" for n in found)
    assert found[0]["operator"] == "China Telecom" and found[0]["selection_fee"] == "300.00"
    code, out, _ = run(stocked, capsys, "numbers", "search", "--grade", "ordinary", "--limit", "2")
    assert out.splitlines()[1].startswith("4006031475  available  China Unicom   ordinary")


def test_a_number_from_reservation_to_service_with_its_fees_and_history(stocked, capsys):
    assert run(stocked, capsys, "numbers", "reserve", PREMIUM, "--by", "sp-east",
               "--at", "2026-12-01 10:00")[0] == 0  # fmt: skip
    code, out, _ = run(
        stocked, capsys, "numbers", "apply", PREMIUM, "--account", "acme", *MATERIAL,
        "--at", "2026-12-02 10:00",
    )  # fmt: skip
    assert code == 0
    assert "reserved -> applied" in out and "applied -> under_review" in out
    assert "opening_fee 600.00 (subscriber); selection_fee 300.00 (subscriber)" in out
    code, _, err = run(stocked, capsys, "numbers", "approve", PREMIUM, "--at", "2026-12-02 12:00")
    assert code == 1
    assert err == (
        f"{PREMIUM} is under review since 2026-12-02 10:00: review takes at least 1 official "
        "working day(s), possible from 2026-12-03 10:00\n"
    )
    assert run(stocked, capsys, "numbers", "approve", PREMIUM, "--at", "2026-12-03 11:00")[0] == 0
    code, out, _ = run(stocked, capsys, "numbers", "show", PREMIUM, "--format", "json")
    shown = json.loads(out)
    assert shown["status"] == "active" and shown["subscriber"] == "acme"
    assert shown["provider"] == "sp-east" and shown["grade"] == "bronze"
    assert [(h["from"], h["to"], h["actor"]) for h in shown["history"]] == [
        ("available", "reserved", "sp-east"),
        ("reserved", "applied", "sp-east"),
        ("applied", "under_review", "sp-east"),
        ("under_review", "active", "operator"),
    ]
    assert shown["history"][1]["fees"] == (
        f"opening_fee 600.00 to {PREMIUM}; selection_fee 300.00 to {PREMIUM}"
    )

    async def ledger() -> list[tuple[str, Decimal]]:
        async with opened_store(store_url_of(stocked)) as store:
            return [(e.kind.value, e.amount) for e in await store.ledger(PREMIUM)]

    assert asyncio.run(ledger()) == [
        ("opening_fee", Decimal("-600.00")),
        ("selection_fee", Decimal("-300.00")),
    ]
    code, out, _ = run(stocked, capsys, "providers", "show", "sp-east", "--format", "json")
    provider = json.loads(out)
    assert provider["id"] == "110***********1233" and provider["subscribers"][0]["name"] == "acme"
    assert [n["number"] for n in provider["numbers"]] == [PREMIUM]
    assert "110101199003071233" not in out


def test_show_gives_the_status_now_though_no_tick_has_written_what_fell_due(stocked, capsys):
    """A reservation that ran out shows as calls and the next action find the number: back
    in the pool, with the expiry and the freeze listed as fallen due, not yet written."""
    days_ago = datetime.now(SHANGHAI) - timedelta(days=4)
    reserved_at = f"{days_ago:%Y-%m-%d %H:%M}"
    assert run(stocked, capsys, "numbers", "reserve", ORDINARY, "--by", "sp-east",
               "--at", reserved_at)[0] == 0  # fmt: skip
    code, out, _ = run(stocked, capsys, "numbers", "show", ORDINARY, "--format", "json")
    shown = json.loads(out)
    assert (code, shown["status"], shown["provider"], shown["until"]) == (
        0,
        "available",
        None,
        None,
    )
    assert [(c["from"], c["to"]) for c in shown["fallen_due"]] == [
        ("reserved", "frozen"),
        ("frozen", "available"),
    ]
    assert [h["to"] for h in shown["history"]] == ["reserved"]  # nothing written by showing
    code, out, _ = run(stocked, capsys, "numbers", "show", ORDINARY)
    assert "  status            available\n" in out
    assert "fallen due since, written by the next numbers tick or action:" in out
    searched = {
        condition: run(stocked, capsys, "numbers", "search", "--segment", "4006", *condition)[1]
        for condition in (
            ("--status", "reserved"),
            ("--holder", "sp-east"),
            ("--status", "available"),
        )
    }
    assert (
        searched[("--status", "reserved")]
        == searched[("--holder", "sp-east")]
        == "no number matches\n"
    )
    assert f"{ORDINARY}  available" in searched[("--status", "available")]
    code, out, _ = run(stocked, capsys, "providers", "show", "sp-east", "--format", "json")
    assert json.loads(out)["numbers"] == []  # no longer held by the provider
    code, out, _ = run(stocked, capsys, "numbers", "show", ORDINARY, "--at", reserved_at)
    assert "  status            reserved\n" in out


def test_an_applicant_withdraws_before_review_and_its_fees_are_given_back(stocked, capsys):
    assert run(stocked, capsys, "numbers", "reserve", PREMIUM, "--by", "sp-east",
               "--at", "2026-12-01 10:00")[0] == 0  # fmt: skip
    assert run(stocked, capsys, "numbers", "apply", PREMIUM, "--account", "acme", *MATERIAL,
               "--at", "2026-12-02 10:00")[0] == 0  # fmt: skip
    code, out, _ = run(stocked, capsys, "numbers", "withdraw", PREMIUM, "--by", "acme",
                       "--at", "2026-12-03 09:00")  # fmt: skip
    assert code == 0 and "under_review -> reserved  by acme" in out
    assert "back in sp-east's reservation until 2026-12-31 10:00" in out

    async def ledger() -> list[tuple[str, Decimal]]:
        async with opened_store(store_url_of(stocked)) as store:
            return [(e.kind.value, e.amount) for e in await store.ledger(PREMIUM)]

    assert asyncio.run(ledger()) == [
        ("opening_fee", Decimal("-600.00")),
        ("selection_fee", Decimal("-300.00")),
        ("adjustment", Decimal("600.00")),
        ("adjustment", Decimal("300.00")),
    ]
    code, _, err = run(stocked, capsys, "numbers", "withdraw", PREMIUM, "--at", "2026-12-03 10:00")
    assert code == 1
    assert err == (
        f"{PREMIUM} is reserved (held by sp-east) until 2026-12-31 10:00: it cannot be "
        "withdrawn (only an application not yet decided can be)\n"
    )
    assert run(stocked, capsys, "numbers", "apply", PREMIUM, "--account", "acme",
               "--at", "2026-12-04 10:00")[0] == 0  # fmt: skip
    assert asyncio.run(ledger())[-2:] == [
        ("opening_fee", Decimal("-600.00")),
        ("selection_fee", Decimal("-300.00")),
    ]


def test_an_application_withdrawn_and_made_again_within_one_second_is_charged_again(
    stocked, capsys
):
    """The ledger keeps one entry a reference: the second application's fees are its own."""
    assert run(stocked, capsys, "numbers", "reserve", PREMIUM, "--by", "sp-east",
               "--at", "2026-12-01 10:00")[0] == 0  # fmt: skip
    for step, extra in (
        ("apply", ("--account", "acme", *MATERIAL)),
        ("withdraw", ("--by", "acme")),
        ("apply", ("--account", "acme")),
    ):
        code, _, err = run(stocked, capsys, "numbers", step, PREMIUM, *extra,
                           "--at", "2026-12-02 10:00:00")  # fmt: skip
        assert code == 0, err

    async def balance() -> Decimal:
        async with opened_store(store_url_of(stocked)) as store:
            return sum((e.amount for e in await store.ledger(PREMIUM)), Decimal("0.00"))

    assert asyncio.run(balance()) == Decimal("-900.00")


def test_a_released_number_is_frozen_30_minutes_and_says_until_when(stocked, capsys):
    run(
        stocked,
        capsys,
        "numbers",
        "reserve",
        ORDINARY,
        "--by",
        "sp-east",
        "--at",
        "2026-12-05 14:02",
    )
    assert run(stocked, capsys, "numbers", "release", ORDINARY, "--at", "2026-12-05 14:02")[0] == 0
    code, out, err = run(
        stocked,
        capsys,
        "numbers",
        "reserve",
        ORDINARY,
        "--by",
        "sp-west",
        "--at",
        "2026-12-05 14:20",
    )
    assert (code, out) == (1, "")
    assert err == f"{ORDINARY} is frozen until 2026-12-05 14:32 (released 18 minutes ago)\n"
    code, out, err = run(
        stocked,
        capsys,
        "numbers",
        "reserve",
        ORDINARY,
        "--by",
        "sp-east",
        "--at",
        "2026-12-05 14:40",
    )
    assert code == 1 and "the same provider may not reserve it in the period that follows" in err
    assert "possible from 2026-12-08 14:02" in err
    code, out, _ = run(
        stocked,
        capsys,
        "numbers",
        "reserve",
        ORDINARY,
        "--by",
        "sp-west",
        "--at",
        "2026-12-05 14:40",
    )
    assert (
        code == 0 and "frozen -> available  by system" in out and "-> reserved  by sp-west" in out
    )


def test_an_instant_given_with_another_offset_is_told_and_noted_in_the_billing_zone(
    stocked, capsys
):
    """--at 02:00 UTC is 10:00 in Beijing: refusals and history notes read as every other
    time the commands print, never in the offset the instant came with."""
    run(stocked, capsys, "numbers", "reserve", ORDINARY, "--by", "sp-east",
        "--at", "2026-12-08T02:00:00+00:00")  # fmt: skip
    code, _, err = run(stocked, capsys, "numbers", "reserve", ORDINARY, "--by", "sp-west",
                       "--at", "2026-12-08T02:20:00+00:00")  # fmt: skip
    assert (code, err) == (1, f"{ORDINARY} is reserved by sp-east until 2026-12-11 10:00\n")
    run(stocked, capsys, "numbers", "apply", ORDINARY, "--account", "acme", *MATERIAL,
        "--at", "2026-12-08T03:00:00+00:00")  # fmt: skip
    run(stocked, capsys, "numbers", "approve", ORDINARY, "--at", "2026-12-09T03:00:00+00:00")
    code, out, _ = run(stocked, capsys, "numbers", "cancel", ORDINARY,
                       "--at", "2026-12-10T02:00:00+00:00")  # fmt: skip
    assert "cancellation requested, effective 2027-01-09 10:00" in out


def test_cancellation_takes_30_days_then_90_frozen_and_tick_is_safe_to_repeat(stocked, capsys):
    run(
        stocked,
        capsys,
        "numbers",
        "reserve",
        ORDINARY,
        "--by",
        "sp-east",
        "--at",
        "2026-12-01 09:00",
    )
    run(stocked, capsys, "numbers", "apply", ORDINARY, "--account", "acme", *MATERIAL,
        "--at", "2026-12-01 10:00")  # fmt: skip
    run(stocked, capsys, "numbers", "approve", ORDINARY, "--at", "2026-12-02 10:00")
    assert run(stocked, capsys, "numbers", "cancel", ORDINARY, "--at", "2026-12-10 10:00")[0] == 0
    for _ in range(2):
        code, out, _ = run(stocked, capsys, "numbers", "tick", "--at", "2027-01-10 10:00")
        assert code == 0
    assert "tick at 2027-01-10 10:00: 0 transition(s) due" in out
    code, out, _ = run(stocked, capsys, "numbers", "show", ORDINARY, "--format", "json")
    shown = json.loads(out)
    assert shown["status"] == "cancelled" and shown["until"] == "2027-04-09T10:00:00+08:00"
    assert [h["to"] for h in shown["history"]].count("cancelled") == 1
    code, _, err = run(
        stocked,
        capsys,
        "numbers",
        "reserve",
        ORDINARY,
        "--by",
        "sp-west",
        "--at",
        "2027-02-01 10:00",
    )
    assert (code, err) == (
        1,
        f"{ORDINARY} is cancelled (held by sp-east) until 2027-04-09 10:00: "
        "it cannot be reserved\n",
    )
    code, out, _ = run(
        stocked, capsys, "numbers", "tick", "--at", "2027-04-09 10:00", "--format", "json"
    )
    assert json.loads(out) == {"at": "2027-04-09T10:00:00+08:00", "timed": 1, "arrears": 0}
    code, out, _ = run(stocked, capsys, "numbers", "show", ORDINARY, "--format", "json")
    assert json.loads(out)["status"] == "available" and json.loads(out)["subscriber"] is None


def test_suspension_books_a_keeping_fee_each_month_and_resumes(stocked, capsys):
    run(
        stocked,
        capsys,
        "numbers",
        "reserve",
        ORDINARY,
        "--by",
        "sp-east",
        "--at",
        "2026-12-01 09:00",
    )
    run(stocked, capsys, "numbers", "apply", ORDINARY, "--account", "acme", *MATERIAL,
        "--at", "2026-12-01 10:00")  # fmt: skip
    run(stocked, capsys, "numbers", "approve", ORDINARY, "--at", "2026-12-02 10:00")
    code, out, _ = run(stocked, capsys, "numbers", "suspend", ORDINARY, "--at", "2026-12-03 10:00")
    assert code == 0 and "keeping_fee 15.00 (subscriber)" in out
    run(stocked, capsys, "numbers", "tick", "--at", "2027-01-03 10:00")
    assert run(stocked, capsys, "numbers", "resume", ORDINARY, "--at", "2027-01-05 10:00")[0] == 0

    async def keeping() -> list[Decimal]:
        async with opened_store(store_url_of(stocked)) as store:
            return [e.amount for e in await store.ledger(ORDINARY) if e.kind == "keeping_fee"]

    assert asyncio.run(keeping()) == [Decimal("-15.00"), Decimal("-15.00")]


def test_suspending_again_in_a_month_already_paid_books_no_second_keeping_fee(stocked, capsys):
    """One keeping fee per calendar month of the holding: a second suspension the same month
    books none, and its history lists none; the next month's suspension pays its own."""
    in_service(stocked, capsys)
    run(stocked, capsys, "numbers", "suspend", ORDINARY, "--at", "2026-12-03 10:00")
    run(stocked, capsys, "numbers", "resume", ORDINARY, "--at", "2026-12-03 11:00")
    code, out, _ = run(stocked, capsys, "numbers", "suspend", ORDINARY, "--at", "2026-12-03 12:00")
    assert code == 0 and "keeping_fee" not in out
    run(stocked, capsys, "numbers", "resume", ORDINARY, "--at", "2026-12-20 09:00")
    code, out, _ = run(stocked, capsys, "numbers", "suspend", ORDINARY, "--at", "2027-01-02 09:00")
    assert "keeping_fee 15.00 (subscriber)" in out

    async def keeping() -> list[tuple[str, Decimal]]:
        async with opened_store(store_url_of(stocked)) as store:
            fees = await store.ledger(ORDINARY, kind=LedgerKind.KEEPING_FEE)
            return [(f"{e.at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}", e.amount) for e in fees]

    assert asyncio.run(keeping()) == [
        ("2026-12-03 10:00", Decimal("-15.00")),
        ("2027-01-02 09:00", Decimal("-15.00")),
    ]
    shown = json.loads(run(stocked, capsys, "numbers", "show", ORDINARY, "--format", "json")[1])
    suspensions = [(h["at"], h["fees"]) for h in shown["history"] if h["to"] == "suspended"]
    assert suspensions == [
        ("2026-12-03T10:00:00+08:00", f"keeping_fee 15.00 to {ORDINARY}"),
        ("2026-12-03T12:00:00+08:00", ""),
        ("2027-01-02T09:00:00+08:00", f"keeping_fee 15.00 to {ORDINARY}"),
    ]


def test_refusals_change_nothing(stocked, capsys):
    code, out, err = run(stocked, capsys, "numbers", "reserve", "4009999999", "--by", "sp-east")
    assert (code, out) == (1, "")
    assert err == "4009999999 is not in the inventory (hotline400 numbers import)\n"
    code, _, err = run(stocked, capsys, "numbers", "reserve", ORDINARY, "--by", "sp-north")
    assert (code, err) == (1, "no service provider sp-north (hotline400 providers add)\n")
    code, _, err = run(stocked, capsys, "numbers", "apply", ORDINARY, "--account", "acme")
    assert code == 1 and err.startswith(f"{ORDINARY} is available: it cannot be applied for")
    code, out, _ = run(stocked, capsys, "providers", "show", "sp-east", "--format", "json")
    assert json.loads(out)["subscribers"] == []
    code, _, err = run(stocked, capsys, "providers", "add", "sp-east", *PROVIDER)
    assert (code, err) == (1, "a service provider sp-east exists already\n")
    code, _, err = run(stocked, capsys, "providers", "add", "sp-east-2", *PROVIDER)
    assert (code, err) == (1, "business licence 91310000MA1FL0XX1C is service provider sp-east's\n")
    code, out, _ = run(stocked, capsys, "providers", "list", "--format", "json")
    assert [provider["name"] for provider in json.loads(out)] == ["sp-east", "sp-west"]


def test_a_refused_application_writes_no_subscriber_and_the_corrected_one_passes(stocked, capsys):
    run(stocked, capsys, "numbers", "reserve", ORDINARY, "--by", "sp-east",
        "--at", "2026-12-03 10:00")  # fmt: skip
    code, _, err = run(
        stocked, capsys, "numbers", "apply", ORDINARY, "--account", "acme", *MATERIAL,
        "--at", "2026-12-03 09:00",
    )  # fmt: skip
    assert (code, err) == (
        1,
        f"{ORDINARY} changed last at 2026-12-03 10:00: an action cannot happen before it (--at)\n",
    )
    code, out, _ = run(stocked, capsys, "providers", "show", "sp-east", "--format", "json")
    assert json.loads(out)["subscribers"] == []
    code, out, _ = run(
        stocked, capsys, "numbers", "apply", ORDINARY, "--account", "acme", *MATERIAL,
        "--at", "2026-12-03 11:00",
    )  # fmt: skip
    assert code == 0 and "reserved -> applied" in out and "applied -> under_review" in out
    code, out, _ = run(stocked, capsys, "providers", "show", "sp-east", "--format", "json")
    [acme] = json.loads(out)["subscribers"]
    assert acme["name"] == "acme"


def test_a_special_number_is_held_30_days_with_an_intent_form_and_3_without(stocked, capsys):
    (stocked.parent / "special.txt").write_text("4006585858\n4006121212\n", encoding="utf-8")
    run(stocked, capsys, "numbers", "import", "special.txt")
    code, out, _ = run(
        stocked, capsys, "numbers", "reserve", "4006585858", "--by", "sp-east", "--intent-form",
        "--at", "2026-12-01 10:00",
    )  # fmt: skip
    assert code == 0 and "reserved for 30 days with an intent form (free)" in out
    code, out, _ = run(stocked, capsys, "numbers", "reserve", "4006121212", "--by", "sp-east",
                       "--at", "2026-12-01 10:00")  # fmt: skip
    assert code == 0 and "reserved for 3 days, no intent form (free; 30 with one)" in out
    for number, until in (
        ("4006585858", "2026-12-31T10:00:00+08:00"),
        ("4006121212", "2026-12-04T10:00:00+08:00"),
    ):
        code, out, _ = run(stocked, capsys, "numbers", "show", number, "--format", "json",
                           "--at", "2026-12-01 10:00")  # fmt: skip
        assert json.loads(out)["until"] == until


def _reserve_in_a_process(config: Path, provider: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "router.cli", "numbers", "reserve", PREMIUM, "--by", provider,
         "--config", str(config), "--at", "2026-12-05 10:00"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def test_two_operators_reserving_one_number_at_the_same_instant_one_succeeds(stocked, capsys):
    first = _reserve_in_a_process(stocked, "sp-east")
    second = _reserve_in_a_process(stocked, "sp-west")
    results = [(p.wait(60), *p.communicate()) for p in (first, second)]
    assert sorted(code for code, _, _ in results) == [0, 1]
    [(_, _, refused)] = [r for r in results if r[0] == 1]
    assert f"{PREMIUM} is reserved by sp-" in refused and "until 2027-01-04 10:00" in refused
    out = run(stocked, capsys, "numbers", "show", PREMIUM, "--format", "json")[1]
    assert [h["to"] for h in json.loads(out)["history"]] == ["reserved"]


def in_service(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """4006031475 (a prepaid account) active for acme of sp-east since 2026-12-02 10:00."""
    run(
        config,
        capsys,
        "numbers",
        "reserve",
        ORDINARY,
        "--by",
        "sp-east",
        "--at",
        "2026-12-01 09:00",
    )
    run(config, capsys, "numbers", "apply", ORDINARY, "--account", "acme", *MATERIAL,
        "--at", "2026-12-01 10:00")  # fmt: skip
    run(config, capsys, "numbers", "approve", ORDINARY, "--at", "2026-12-02 10:00")


def test_arrears_suspend_a_prepaid_number_and_a_top_up_restores_it(stocked, capsys):
    in_service(stocked, capsys)  # the opening fee left its balance at -600.00
    code, out, _ = run(stocked, capsys, "numbers", "tick", "--at", "2026-12-02 11:00")
    assert "1 number(s) into or out of arrears" in out
    code, out, _ = run(
        stocked, capsys, "account", "topup", "--number", ORDINARY, "--amount", "700",
        "--at", "2026-12-03 09:00",
    )  # fmt: skip
    assert code == 0 and "balance 100.00" in out
    shown = json.loads(run(stocked, capsys, "numbers", "show", ORDINARY, "--format", "json")[1])
    assert [(h["to"], h["at"]) for h in shown["history"][-2:]] == [
        ("arrears", "2026-12-02T11:00:00+08:00"),
        ("active", "2026-12-03T09:00:00+08:00"),
    ]


def test_feature_fees_are_deducted_from_the_provider_with_a_record_naming_the_number(
    stocked, capsys
):
    in_service(stocked, capsys)
    run(stocked, capsys, "account", "topup", "--provider", "sp-east", "--amount", "500",
        "--ref", "bank-1")  # fmt: skip
    code, out, _ = run(stocked, capsys, "account", "fees", "--day", "2026-12-10")
    assert code == 0
    assert f"provider:sp-east  {ORDINARY}:recording@2026-12-10" in out
    code, out, _ = run(stocked, capsys, "account", "show", "--provider", "sp-east")
    assert out.splitlines()[:2] == ["provider:sp-east", "  balance               400.00"]
    assert f"-100.00  feature_fee {ORDINARY}:recording@2026-12-10  deduction for {ORDINARY}" in out
    code, out, _ = run(stocked, capsys, "account", "show", "--number", ORDINARY)
    assert "  service provider      sp-east, balance 400.00" in out
    assert "  subscriber            acme" in out
    code, out, _ = run(stocked, capsys, "bill", "--month", "2026-12", "--number", ORDINARY)
    assert (
        "feature fees" in out
        and "to be booked at close" not in out.split("feature fees")[1].split("\n")[0]
    )


def test_closing_deducts_from_the_provider_a_feature_fee_its_day_did_not_book(stocked, capsys):
    """`account fees` never ran on 2026-12-10: closing December books the fee, on the
    provider's account like that day would have, and not on the number's."""
    in_service(stocked, capsys)
    close = ("bill", "--month", "2026-12", "--close", "--today", "2027-01-01")
    code, out, _ = run(stocked, capsys, *close)
    assert (
        f"  provider:sp-east pays 100.00 ({ORDINARY}:recording@2026-12-10): to be booked at close"
        in out
    )
    assert "closing 2026-12 would book 2 ledger entries (150.00 in all)" in out
    shown = ("bill", "--month", "2026-12", "--number", ORDINARY, "--format", "json")
    [statement] = json.loads(run(stocked, capsys, *shown)[1])
    assert [
        (e["account"], e["kind"], e["amount"]) for e in statement["to_be_booked_elsewhere"]
    ] == [
        ("provider:sp-east", "feature_fee", "100.00")  # a charge, positive as in the totals
    ]
    code, out, err = run(stocked, capsys, *close, "--yes")
    assert code == 0, err
    code, out, _ = run(stocked, capsys, "account", "show", "--provider", "sp-east")
    assert f"-100.00  feature_fee {ORDINARY}:recording@2026-12-10  deduction for {ORDINARY}" in out
    code, out, _ = run(stocked, capsys, "account", "fees", "--day", "2026-12-10")
    assert out.endswith("booked before\nfeature fees of 2026-12-10: 0.00 booked\n")
    shown = ("bill", "--month", "2026-12", "--number", ORDINARY, "--format", "json")
    statement = json.loads(run(stocked, capsys, *shown)[1])[0]
    assert (statement["feature_fees"], statement["closed"]) == ("0.00", True)


def test_a_numbers_file_with_a_problem_blocks_the_numbers_commands_with_its_line(config, capsys):
    (config / "numbers.yaml").write_text("timing:\n  reservation_days: 0\n", encoding="utf-8")
    code, out, err = run(config, capsys, "numbers", "search")
    assert (code, out) == (1, "")
    assert err.startswith(f"{config / 'numbers.yaml'}:2 timing.reservation_days: ")
    assert main(["check", str(config)]) == 1
    assert f"{config / 'numbers.yaml'}:2 timing.reservation_days" in capsys.readouterr().out


def test_a_numbers_file_naming_a_retired_setting_or_a_zone_says_what_to_do(config, capsys):
    (config / "numbers.yaml").write_text(
        "timezone: Europe/Berlin\ntiming:\n  keeping_month_days: 30\n", encoding="utf-8"
    )
    code, out, err = run(config, capsys, "numbers", "search")
    assert (code, out) == (1, "")
    assert err.startswith(
        f"{config / 'numbers.yaml'}:1 timezone: the billing time zone is router.yaml's timezone; "
        "remove it from this file (and 1 more)"
    )
    assert main(["check", str(config)]) == 1
    assert (
        f"{config / 'numbers.yaml'}:3 timing.keeping_month_days: a keeping month is a calendar "
        "month now"
    ) in capsys.readouterr().out


def test_a_month_spent_whole_suspended_owes_its_keeping_fee_not_its_rent(stocked, capsys):
    """Suspended on 2026-12-03 and kept so through January: December (in service two days)
    owes its rent as a first month does; January only the keeping fee the tick booked."""
    in_service(stocked, capsys)
    run(stocked, capsys, "numbers", "suspend", ORDINARY, "--at", "2026-12-03 10:00")
    run(stocked, capsys, "numbers", "tick", "--at", "2027-02-01 10:00")

    def closing(month: str, today: str) -> dict[str, str]:
        close = ("bill", "--month", month, "--number", ORDINARY, "--close", "--today", today)
        code, _, err = run(stocked, capsys, *close, "--yes")
        assert code == 0, err
        shown = ("bill", "--month", month, "--number", ORDINARY, "--format", "json")
        return json.loads(run(stocked, capsys, *shown)[1])[0]

    december = closing("2026-12", "2027-01-01")
    january = closing("2027-01", "2027-02-01")
    assert (december["rent"], december["closed"]) == ("50.00", True)
    assert (january["rent"], january["minimum_topup"], january["closed"]) == ("0.00", "0.00", True)
    assert january["number_fees"] == "15.00"  # the keeping fee of January


def test_an_application_for_a_number_with_a_plan_file_says_whose_plan_it_must_be(stocked, capsys):
    """A recycled number's plan file is its past holder's: once the number is in service
    again its calls follow it, to that holder's phones, unless it is replaced."""
    plans = stocked / "plans"
    plans.mkdir(exist_ok=True)
    (plans / f"{ORDINARY}.yaml").write_text(
        f'number: "{ORDINARY}"\nname: oldco\ndefault: {{target: "13800000011"}}\n',
        encoding="utf-8",
    )
    run(stocked, capsys, "numbers", "reserve", ORDINARY, "--by", "sp-east")
    code, out, _ = run(stocked, capsys, "numbers", "apply", ORDINARY, "--account", "acme")
    assert code == 0
    assert out.endswith(
        f"note: {plans / f'{ORDINARY}.yaml'} was there before this application: once "
        f"{ORDINARY} is in service its calls follow it; make sure it is acme's plan (naming "
        "`subscriber: acme` in it keeps a later holder's calls from following it)\n"
    )


def test_an_application_for_a_number_whose_plan_names_another_subscriber_says_it_will_not_route(
    stocked, capsys
):
    """A plan naming its past holder routes none of the next holder's calls; one written
    ahead naming the applicant needs no word."""
    plans = stocked / "plans"
    plans.mkdir(exist_ok=True)
    path = plans / f"{ORDINARY}.yaml"
    text = (
        f'number: "{ORDINARY}"\nname: oldco\nsubscriber: {{}}\n'
        'default: {{target: "13800000011"}}\n'
    )
    path.write_text(text.format("oldco"), encoding="utf-8")
    run(stocked, capsys, "numbers", "reserve", ORDINARY, "--by", "sp-east")
    code, out, _ = run(stocked, capsys, "numbers", "apply", ORDINARY, "--account", "acme")
    assert code == 0
    assert out.endswith(
        f"note: {path} names subscriber oldco: once {ORDINARY} is in service it routes none of "
        "its calls (a past holder's plan); write acme's plan\n"
    )
    path.write_text(text.format("acme"), encoding="utf-8")
    assert run(stocked, capsys, "numbers", "withdraw", ORDINARY, "--by", "sp-east")[0] == 0
    code, out, _ = run(stocked, capsys, "numbers", "apply", ORDINARY, "--account", "acme")
    assert code == 0 and "applied" in out and "note:" not in out


def test_a_new_holder_of_a_number_back_from_the_pool_owes_nothing_of_the_last_ones_debt(
    stocked, capsys
):
    """acme leaves 4006031475 600.00 in debt (its opening fee, never paid); cancelled, frozen
    90 days and back in the pool, the number goes to beta, who pays its own opening fee.
    beta's balance, statement, arrears and low-balance warning count beta's entries only;
    acme's debt stays listed against acme's holding, and against acme."""
    in_service(stocked, capsys)  # acme's balance: -600.00
    assert run(stocked, capsys, "numbers", "cancel", ORDINARY, "--at", "2026-12-10 10:00")[0] == 0
    assert run(stocked, capsys, "numbers", "tick", "--at", "2027-04-09 10:00")[0] == 0
    run(stocked, capsys, "numbers", "reserve", ORDINARY, "--by", "sp-west",
        "--at", "2027-04-12 09:00")  # fmt: skip
    code, _, err = run(stocked, capsys, "numbers", "apply", ORDINARY, "--account", "beta",
                       *MATERIAL, "--at", "2027-04-12 10:00")  # fmt: skip
    assert code == 0, err
    run(stocked, capsys, "numbers", "approve", ORDINARY, "--at", "2027-04-13 10:00")

    code, out, _ = run(stocked, capsys, "account", "topup", "--number", ORDINARY,
                       "--amount", "700", "--at", "2027-04-13 11:00")  # fmt: skip
    assert code == 0 and "balance 100.00" in out
    code, out, _ = run(stocked, capsys, "numbers", "tick", "--at", "2027-04-14 10:00",
                       "--format", "json")  # fmt: skip
    assert json.loads(out)["arrears"] == 0
    shown = json.loads(run(stocked, capsys, "numbers", "show", ORDINARY, "--format", "json")[1])
    assert (shown["status"], shown["subscriber"]) == ("active", "beta")

    code, out, _ = run(stocked, capsys, "account", "show", "--number", ORDINARY,
                       "--today", "2027-04-14")  # fmt: skip
    lines = out.splitlines()
    assert "  balance               100.00" in lines
    assert "  low-balance warning   50.00" in lines
    assert "  holding since         2027-04-09 10:00" in lines
    assert (
        "  past holding          until 2027-04-09 10:00, acme (provider sp-east) owes 600.00"
        in lines
    ), out

    bill = ("bill", "--month", "2027-04", "--number", ORDINARY, "--format", "json")
    statement = json.loads(run(stocked, capsys, *bill)[1])[0]
    assert (statement["opening_balance"], statement["number_fees"]) == ("0.00", "600.00")
    assert statement["payments"] == "700.00"

    close = ("bill", "--month", "2027-04", "--close", "--yes", "--today", "2027-05-01")
    code, _, err = run(stocked, capsys, *close)
    assert code == 0, err
    statement = json.loads(run(stocked, capsys, *bill)[1])[0]
    assert (statement["rent"], statement["closed"]) == ("31.67", True)  # 19 of 30 days
    code, out, _ = run(stocked, capsys, "account", "show", "--number", ORDINARY,
                       "--today", "2027-05-01")  # fmt: skip
    assert "  balance               68.33" in out.splitlines()
    assert "acme (provider sp-east) owes 600.00" in out

    code, out, _ = run(stocked, capsys, "account", "show", "--subscriber", "acme")
    assert (code, out.splitlines()) == (0, [
        "subscriber acme (provider sp-east)",
        f"  {ORDINARY}  until 2027-04-09 10:00  owes 600.00",
        "  left on past holdings -600.00",
    ])  # fmt: skip
    code, out, _ = run(stocked, capsys, "account", "show", "--subscriber", "beta")
    assert out.splitlines() == [
        "subscriber beta (provider sp-west)",
        "  left on past holdings 0.00",
    ]

    settle = ("account", "topup", "--number", ORDINARY, "--past-holder", "acme",
              "--amount", "600", "--ref", "bank-9", "--at", "2027-05-02 10:00")  # fmt: skip
    code, out, err = run(stocked, capsys, *settle)
    assert code == 0, err
    assert out == (
        f"payment 600.00 from acme to its holding of {ORDINARY} until 2027-04-09 10:00 "
        "(ref bank-9) booked; left there 0.00\n"
    )
    assert "(ref bank-9) was booked before; left there 0.00" in run(stocked, capsys, *settle)[1]
    code, out, _ = run(stocked, capsys, "account", "show", "--number", ORDINARY,
                       "--today", "2027-05-02")  # fmt: skip
    assert "  balance               68.33" in out.splitlines() and "past holding" not in out
    code, _, err = run(stocked, capsys, "account", "topup", "--number", ORDINARY,
                       "--past-holder", "beta", "--amount", "1")  # fmt: skip
    assert (code, err) == (1, f"beta left no holding of {ORDINARY} "
                              "(account show --subscriber beta)\n")  # fmt: skip


def test_an_applicant_that_withdrew_is_named_on_the_holding_it_leaves_to_collect_from(
    stocked, capsys
):
    """acme pays 700.00, applies (opening fee 600.00) and withdraws once its reservation has
    ended: the fee is given back on acme's holding, and the number, frozen 30 minutes, comes
    back to the pool with acme's 700.00 on that holding, named as acme's: what it is owed is
    listed against it, not against a holder nobody recorded."""
    run(stocked, capsys, "numbers", "reserve", ORDINARY, "--by", "sp-east",
        "--at", "2026-12-01 09:00")  # fmt: skip
    run(stocked, capsys, "account", "topup", "--number", ORDINARY, "--amount", "700",
        "--at", "2026-12-01 09:30")  # fmt: skip
    run(stocked, capsys, "numbers", "apply", ORDINARY, "--account", "acme", *MATERIAL,
        "--at", "2026-12-01 10:00")  # fmt: skip
    code, _, err = run(stocked, capsys, "numbers", "withdraw", ORDINARY, "--by", "acme",
                       "--at", "2026-12-04 09:30")  # fmt: skip
    assert code == 0, err
    assert run(stocked, capsys, "numbers", "tick", "--at", "2026-12-04 11:00")[0] == 0

    code, out, _ = run(stocked, capsys, "account", "show", "--number", ORDINARY,
                       "--today", "2026-12-05")  # fmt: skip
    lines = out.splitlines()
    assert "  balance               0.00" in lines
    assert (
        "  past holding          until 2026-12-04 10:00, acme (provider sp-east) is owed 700.00"
        in lines
    ), out
    code, out, _ = run(stocked, capsys, "account", "show", "--subscriber", "acme")
    assert (code, out.splitlines()) == (0, [
        "subscriber acme (provider sp-east)",
        f"  {ORDINARY}  until 2026-12-04 10:00  is owed 700.00",
        "  left on past holdings 700.00",
    ])  # fmt: skip


def test_a_provider_or_subscriber_named_by_by_acts_only_on_its_own_number(stocked, capsys):
    """--by names who acts: a service provider may not release another's reservation, a
    subscriber may not withdraw, suspend or cancel another's number, and neither passes a
    review (the operator's); each is refused, nothing written. The operator's own staff,
    named by any other name, act on any number."""
    run(stocked, capsys, "numbers", "reserve", ORDINARY, "--by", "sp-east",
        "--at", "2026-12-01 09:00")  # fmt: skip
    code, _, err = run(stocked, capsys, "numbers", "release", ORDINARY, "--by", "sp-west",
                       "--at", "2026-12-01 09:05")  # fmt: skip
    assert (code, err) == (
        1,
        f"{ORDINARY} is sp-east's, not sp-west's: sp-west cannot release it\n",
    )
    run(stocked, capsys, "numbers", "reserve", PREMIUM, "--by", "sp-west",
        "--at", "2026-12-01 09:00")  # fmt: skip
    run(stocked, capsys, "numbers", "apply", PREMIUM, "--account", "rival",
        "--at", "2026-12-01 09:10")  # fmt: skip
    run(stocked, capsys, "numbers", "apply", ORDINARY, "--account", "acme", *MATERIAL,
        "--at", "2026-12-01 10:00")  # fmt: skip
    code, _, err = run(stocked, capsys, "numbers", "withdraw", ORDINARY, "--by", "rival",
                       "--at", "2026-12-01 11:00")  # fmt: skip
    assert (code, err) == (1, f"{ORDINARY} is acme's, not rival's: rival cannot withdraw it\n")
    code, _, err = run(stocked, capsys, "numbers", "approve", ORDINARY, "--by", "acme",
                       "--at", "2026-12-03 11:00")  # fmt: skip
    assert (code, err) == (1, "acme is a subscriber: only the operator can approve a number\n")
    assert run(stocked, capsys, "numbers", "approve", ORDINARY, "--by", "reviewer",
               "--at", "2026-12-03 11:00")[0] == 0  # fmt: skip
    code, _, err = run(stocked, capsys, "numbers", "suspend", ORDINARY, "--by", "sp-west",
                       "--at", "2026-12-04 11:00")  # fmt: skip
    assert (code, err) == (
        1,
        f"{ORDINARY} is sp-east's, not sp-west's: sp-west cannot suspend it\n",
    )
    for action in ("suspend", "cancel"):
        code, _, err = run(stocked, capsys, "numbers", action, ORDINARY, "--by", "rival",
                           "--at", "2026-12-04 11:00")  # fmt: skip
        assert (code, err) == (1, f"{ORDINARY} is acme's, not rival's: rival cannot {action} it\n")
    code, _, err = run(stocked, capsys, "numbers", "suspend", ORDINARY, "--by", "acme",
                       "--at", "2026-12-04 11:00")  # fmt: skip
    assert code == 0, err
    code, out, _ = run(stocked, capsys, "numbers", "show", ORDINARY, "--format", "json",
                       "--at", "2026-12-04 12:00")  # fmt: skip
    assert [h["actor"] for h in json.loads(out)["history"]] == [
        "sp-east", "sp-east", "sp-east", "reviewer", "acme"
    ]  # fmt: skip


def test_a_second_withdrawal_in_the_same_minute_gives_back_only_its_own_application(
    stocked, capsys
):
    """Applied for and withdrawn twice at one --at minute: each withdrawal gives back the
    fees of its own application, once, and its history says so; the account ends where it
    began."""
    run(stocked, capsys, "numbers", "reserve", PREMIUM, "--by", "sp-east",
        "--at", "2026-12-02 09:00")  # fmt: skip
    for _ in range(2):
        for step, extra in (("apply", ("--account", "acme")), ("withdraw", ("--by", "acme"))):
            code, _, err = run(stocked, capsys, "numbers", step, PREMIUM, *extra,
                               "--at", "2026-12-02 10:00")  # fmt: skip
            assert code == 0, err
    code, out, _ = run(stocked, capsys, "numbers", "show", PREMIUM, "--format", "json")
    given_back = [h["fees"] for h in json.loads(out)["history"] if h["to"] == "reserved"][1:]
    assert given_back == [f"adjustment -600.00 to {PREMIUM}; adjustment -300.00 to {PREMIUM}"] * 2

    async def balance() -> Decimal:
        async with opened_store(store_url_of(stocked)) as store:
            return sum((e.amount for e in await store.ledger(PREMIUM)), Decimal("0.00"))

    assert asyncio.run(balance()) == Decimal("0.00")


def test_import_reads_a_list_saved_with_a_byte_order_mark_and_windows_line_ends(config, capsys):
    """Spreadsheet and Notepad exports begin with a UTF-8 byte order mark: it is no part
    of the first number."""
    (config.parent / "exported.txt").write_bytes(
        b"\xef\xbb\xbf4005000000-4005000009\r\n4005000100\r\n"
    )
    code, out, err = run(config, capsys, "numbers", "import", "exported.txt")
    assert (code, out, err) == (
        0,
        "imported 11 number(s) into the pool; 0 already in the inventory\n",
        "",
    )


def test_a_providers_low_balance_warning_is_50_unless_given_and_can_be_changed(stocked, capsys):
    code, out, _ = run(stocked, capsys, "providers", "show", "sp-east", "--format", "json")
    assert json.loads(out)["low_balance_warning"] == "50.00"
    code, out, _ = run(
        stocked, capsys, "providers", "add", "sp-south", *PROVIDER[:3], "91440300MA5F12340J",
        *PROVIDER[4:], "--low-balance-warning", "120.5", "--format", "json",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["low_balance_warning"] == "120.50"

    code, out, _ = run(stocked, capsys, "providers", "set", "sp-east", "--low-balance-warning", "0")
    assert (code, out) == (0, "sp-east: low-balance warning under 0.00\n")
    code, out, _ = run(stocked, capsys, "providers", "show", "sp-east")
    assert "  low-balance warning   under 0.00\n" in out
    code, out, _ = run(stocked, capsys, "account", "show", "--provider", "sp-south")
    assert "  low-balance warning   under 120.50\n" in out
    code, out, _ = run(stocked, capsys, "providers", "list", "--format", "json")
    assert {p["name"]: p["low_balance_warning"] for p in json.loads(out)} == {
        "sp-east": "0.00",
        "sp-south": "120.50",
        "sp-west": "50.00",
    }


def test_json_gives_every_time_in_iso_8601_with_its_offset_as_cdr_and_bill_do(stocked, capsys):
    """A program reading `numbers` (and `providers`, which lists the same records) as JSON
    reads its instants as it reads `cdr` and `bill`: ISO-8601 with the offset, in the
    billing zone. The table keeps `YYYY-MM-DD HH:MM` for a person."""
    code, out, _ = run(stocked, capsys, "numbers", "reserve", ORDINARY, "--by", "sp-east",
                       "--at", "2026-12-01 09:00", "--format", "json")  # fmt: skip
    [reserved] = json.loads(out)
    assert (code, reserved["at"]) == (0, "2026-12-01T09:00:00+08:00")
    shown = json.loads(run(stocked, capsys, "numbers", "show", ORDINARY, "--format", "json",
                           "--at", "2026-12-04 09:10")[1])  # fmt: skip
    assert (shown["status"], shown["since"], shown["until"], shown["due"]) == (
        "frozen",
        "2026-12-04T09:00:00+08:00",
        "2026-12-04T09:30:00+08:00",
        "2026-12-04T09:30:00+08:00",
    )
    assert [h["at"] for h in shown["history"]] == ["2026-12-01T09:00:00+08:00"]
    assert [c["at"] for c in shown["fallen_due"]] == ["2026-12-04T09:00:00+08:00"]
    found = json.loads(run(stocked, capsys, "numbers", "search", "--pattern", "031475",
                           "--format", "json")[1])  # fmt: skip
    assert [(r["status"], r["since"], r["until"]) for r in found] == [
        ("available", "2026-12-04T09:30:00+08:00", None)
    ]
    code, out, _ = run(stocked, capsys, "numbers", "tick", "--at", "2026-12-02 10:00",
                       "--format", "json")  # fmt: skip
    assert json.loads(out)["at"] == "2026-12-02T10:00:00+08:00"
    provider = json.loads(
        run(stocked, capsys, "providers", "show", "sp-east", "--format", "json")[1]
    )
    assert datetime.fromisoformat(provider["created"]).utcoffset() == timedelta(hours=8)
    code, out, _ = run(stocked, capsys, "numbers", "show", ORDINARY, "--at", "2026-12-02 10:00")
    assert "  until             2026-12-04 09:00\n" in out
