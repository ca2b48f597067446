"""`hotline400 demo` routes its tour through the example plans and leaves the CDRs behind."""

import shutil
import sqlite3
from pathlib import Path

import pytest

from router.cli import main

CONFIG = Path(__file__).resolve().parent.parent / "config"


def test_the_demo_routes_every_call_of_the_tour_and_stores_their_cdrs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(CONFIG, tmp_path / "config")
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    outcomes = [line.rsplit("=> ", 1)[1] for line in out.splitlines() if "=> " in line]
    assert outcomes == [
        "answered",
        "answered",
        "answered",
        "blocked",
        "answered",
        "answered",
        "answered",
        "answered",
        "rejected",
        "blocked",
        "answered",
        "blocked",
        "answered",
        "answered",
        "pin_failed",
    ]
    assert "rule national-sales: 01088887777 BUSY > 053188886667 ANSWER => answered" in out
    assert "rule duty-doctor (PIN asked): 13926005678 NOANSWER > 13926001234 ANSWER" in out
    assert "15 calls placed, 0 failed." in out
    with sqlite3.connect(tmp_path / "var" / "hotline400.db") as db:
        stored = db.execute("SELECT outcome, count(*) FROM cdrs GROUP BY outcome").fetchall()
    assert dict(stored) == {"answered": 10, "blocked": 3, "rejected": 1, "pin_failed": 1}
