"""`hotline400 sms list|replay|drop` on the text messages a router kept: replay sends them
through router.yaml's gateway, and passes over those that may have been sent already."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
import yaml

from router.cli import main
from router.notifications.sms import SMS_UNDELIVERED_FILE
from router.notifications.undelivered import UndeliveredEvents
from tests.conftest import REPO, HttpReceiver


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "config", tmp_path / "config")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def kept_messages(workdir: Path, gateway_url: str) -> UndeliveredEvents:
    """Two messages a router kept, the first surely unsent, the second maybe sent."""
    router_yaml = workdir / "config" / "router.yaml"
    settings = yaml.safe_load(router_yaml.read_text(encoding="utf-8"))
    router_yaml.write_text(
        yaml.safe_dump({**settings, "sms_gateway": gateway_url}), encoding="utf-8"
    )
    kept = UndeliveredEvents(workdir / "var" / "spool", SMS_UNDELIVERED_FILE)
    kept.keep(
        [
            {
                "id": f"m{n}",
                "kind": "missed_call",
                "number": "4008207788",
                "to": "13905310001",
                "text": f"未接来电 {n}",
                "attempts": 3,
                "error": error,
                "maybe_sent": maybe,
                "kept_at": "2026-11-23T17:30:00+00:00",
            }
            for n, (error, maybe) in enumerate(
                [("HTTP 503", False), ("no answer within 5 s", True)]
            )
        ]
    )
    return kept


def test_list_says_which_messages_may_have_been_sent(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept_messages(workdir, "http://127.0.0.1:9/sms")
    assert main(["sms", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2026-11-24 01:30:00  m0  4008207788  missed_call to 13905310001  attempts 3  HTTP 503",
        "2026-11-24 01:30:00  m1  4008207788  missed_call to 13905310001  attempts 3  "
        "no answer within 5 s (may have been sent)",
        "2 undelivered message(s) in var/spool/sms.undelivered",
    ]


async def test_replay_sends_the_unsent_and_passes_over_the_maybe_sent_until_told(
    workdir: Path,
) -> None:
    async with HttpReceiver("ok") as gateway:
        kept = kept_messages(workdir, gateway.url)
        assert await asyncio.to_thread(main, ["sms", "replay"]) == 1
        assert [json.loads(r.body)["text"] for r in gateway.received] == ["未接来电 0"]
        assert [record["id"] for record in kept.read()] == ["m1"]
        assert await asyncio.to_thread(main, ["sms", "replay", "--maybe-sent"]) == 0
    assert [json.loads(r.body)["text"] for r in gateway.received] == ["未接来电 0", "未接来电 1"]
    assert kept.read() == []


async def test_replay_to_a_gateway_still_failing_keeps_the_message_with_its_error(
    workdir: Path,
) -> None:
    async with HttpReceiver("error") as gateway:
        kept = kept_messages(workdir, gateway.url)
        assert await asyncio.to_thread(main, ["sms", "replay"]) == 1
    first, second = kept.read()
    assert (first["attempts"], first["error"], first["maybe_sent"]) == (4, "HTTP 500", False)
    assert second["attempts"] == 3  # passed over, untouched


def test_drop_lets_a_message_go(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kept = kept_messages(workdir, "http://127.0.0.1:9/sms")
    assert main(["sms", "drop", "--id", "m1", "--yes"]) == 0
    assert capsys.readouterr().out.endswith("dropped 1 message(s)\n")
    assert [record["id"] for record in kept.read()] == ["m0"]
