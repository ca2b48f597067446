"""`hotline400 webhooks list` on the events a router kept: times in the billing zone, as
every other command gives them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from router.cli import main
from router.notifications.undelivered import UndeliveredEvents
from tests.conftest import REPO


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "config", tmp_path / "config")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_list_gives_when_each_event_was_kept_in_the_billing_zone(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = {"id": "ev-1", "number": "4008207788", "attempts": 5, "error": "HTTP 503",
            "kept_at": "2026-11-23T17:30:00+00:00"}  # as the router writes it, in UTC
    UndeliveredEvents(workdir / "var" / "spool").keep([kept])
    assert main(["webhooks", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "2026-11-24 01:30:00  ev-1  4008207788  attempts 5  HTTP 503"
