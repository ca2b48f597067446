"""`hotline400 recordings purge [--dry-run]` on real files, on each store engine: a recording
goes once its account's retention is over, and never while it is younger than it, by its
call or by its file.

The clinic (4001234567) is a medical subscriber: its account keeps recordings 730 days. The
shop (4008207788) has no retention of its own and keeps router.yaml's 90 days.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from router.cli import main
from router.storage.cdr import CDR, FinishCall, Outcome, StartCall
from tests.conftest import opened_store

SHANGHAI = ZoneInfo("Asia/Shanghai")
CLINIC, SHOP = "4001234567", "4008207788"
TARIFFS = """\
caller_tariffs:
  fixed: {per_seconds: 60, charge: 0.11}
  mobile: {per_seconds: 60, charge: 0.15}
  other: {per_seconds: 60, charge: 0.11}
features:
  recording: 100.00
packages:
  basic: {monthly_rent: 50.00, nationwide: {per_seconds: 60, charge: 0.20}}
accounts:
  "4001234567":
    package: basic
    prepaid: false
    features: {recording: 2020-01-01}
    recording_retention_days: 730    # medical: call records kept 2 years
  "4008207788":
    package: basic
    prepaid: false
    features: {recording: 2020-01-01}
"""


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Path:
    config = tmp_path / "config"
    config.mkdir()
    (config / "router.yaml").write_text(
        f'store: "{store_url}"\nrecordings_dir: "{tmp_path / "recordings"}"\n'
        "recording_retention_days: 90\n",
        encoding="utf-8",
    )
    (config / "tariffs.yaml").write_text(TARIFFS, encoding="utf-8")
    return config


def recorded(
    tmp_path: Path, call_id: str, number: str, days_ago: int, file_days_ago: int | None
) -> tuple[CDR, Path]:
    """A recorded call `days_ago`; its file last written `file_days_ago` (None: no file)."""
    started = datetime.now(SHANGHAI) - timedelta(days=days_ago)
    path = tmp_path / "recordings" / number / f"{started:%Y-%m-%d}" / f"{call_id}.wav"
    if file_days_ago is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF" + bytes(40))
        written = (datetime.now(SHANGHAI) - timedelta(days=file_days_ago)).timestamp()
        os.utime(path, (written, written))
    cdr = CDR(call_id, number, "053188889999", "053188889999", "fixed", started)
    return cdr, path


def store(config: Path, cdrs: list[CDR], paths: dict[str, Path]) -> None:
    async def write() -> None:
        url = (config / "router.yaml").read_text().split('"')[1]
        async with opened_store(url) as opened:
            for cdr in cdrs:
                finish = {"outcome": Outcome.ANSWERED, "recording_path": str(paths[cdr.call_id])}
                await opened.apply([StartCall(cdr), FinishCall(cdr.call_id, finish)])

    asyncio.run(write())


def purged_at(config: Path, call_id: str) -> datetime | None:
    async def read() -> datetime | None:
        url = (config / "router.yaml").read_text().split('"')[1]
        async with opened_store(url) as opened:
            cdr = await opened.get_cdr(call_id)
        assert cdr is not None and cdr.recording_path is not None
        return cdr.recording_purged_at

    return asyncio.run(read())


def purge(config: Path, capsys: pytest.CaptureFixture[str], *more: str) -> str:
    capsys.readouterr()
    assert main(["recordings", "purge", "--config", str(config), *more]) == 0
    return capsys.readouterr().out


def test_each_recording_goes_only_once_its_accounts_retention_is_over(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = {
        "clinic-old": recorded(tmp_path, "clinic-old", CLINIC, 800, 800),
        "clinic-year": recorded(tmp_path, "clinic-year", CLINIC, 400, 400),  # medical: kept
        "shop-old": recorded(tmp_path, "shop-old", SHOP, 100, 100),
        "shop-new": recorded(tmp_path, "shop-new", SHOP, 30, 30),
        "shop-rewritten": recorded(tmp_path, "shop-rewritten", SHOP, 100, 10),
        "shop-gone": recorded(tmp_path, "shop-gone", SHOP, 200, None),
    }
    outside = tmp_path / "elsewhere" / "keep.wav"
    outside.parent.mkdir()
    outside.write_bytes(b"RIFF")
    os.utime(outside, (0, 0))
    paths = {call_id: path for call_id, (_, path) in calls.items()} | {"odd": outside}
    odd, _ = recorded(tmp_path, "odd", SHOP, 300, None)
    store(config, [cdr for cdr, _ in calls.values()] + [odd], paths)

    dry = purge(config, capsys, "--dry-run")
    assert f"would remove {paths['clinic-old']} ({CLINIC}, call clinic-old of " in dry
    assert f"would remove {paths['shop-old']} ({SHOP}, call shop-old of " in dry
    assert f"kept {paths['shop-rewritten']} ({SHOP}, call shop-rewritten): file written " in dry
    assert f"kept {outside} ({SHOP}, call odd): outside recordings_dir" in dry
    assert "2 recording(s) to remove (88 bytes), 1 already gone, 2 past retention kept" in dry
    assert all(path.exists() for key, path in paths.items() if key != "shop-gone")
    assert purged_at(config, "shop-old") is None

    done = purge(config, capsys)
    assert "2 recording(s) removed (88 bytes), 1 already gone, 2 past retention kept" in done
    assert not paths["clinic-old"].exists() and not paths["shop-old"].exists()
    for young in ("clinic-year", "shop-new", "shop-rewritten"):
        assert paths[young].exists(), young
        assert purged_at(config, young) is None
    assert outside.exists()
    assert purged_at(config, "shop-old") is not None
    assert purged_at(config, "shop-gone") is not None

    again = purge(config, capsys)
    assert "0 recording(s) removed (0 bytes), 2 past retention kept" in again


def test_a_symbolic_link_named_as_a_recording_is_left_alone_with_what_it_points_to(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, inside = recorded(tmp_path, "old", SHOP, 200, 200)
    link = tmp_path / "elsewhere" / "operator_link.wav"
    link.parent.mkdir()
    link.symlink_to(inside)  # outside recordings_dir, pointing at a recording inside it
    store(config, [old], {"old": link})

    done = purge(config, capsys)
    assert f"kept {link} ({SHOP}, call old): a symbolic link" in done
    assert link.is_symlink() and inside.exists()
    assert purged_at(config, "old") is None


def test_a_recording_that_cannot_be_removed_is_kept_with_why_and_the_purge_goes_on(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path the CDR names that unlink refuses (a directory here; a file of another owner
    in life) stays, marked purged nowhere, and the other recordings go."""
    first, directory = recorded(tmp_path, "a-first", SHOP, 200, None)
    directory.mkdir(parents=True)
    os.utime(directory, (0, 0))
    second, old = recorded(tmp_path, "b-second", SHOP, 200, 200)
    store(config, [first, second], {"a-first": directory, "b-second": old})

    done = purge(config, capsys)
    assert f"kept {directory} ({SHOP}, call a-first): cannot remove it: " in done
    assert "1 recording(s) removed (44 bytes), 1 past retention kept" in done
    assert directory.is_dir() and purged_at(config, "a-first") is None
    assert not old.exists() and purged_at(config, "b-second") is not None
