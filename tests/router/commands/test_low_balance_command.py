"""`hotline400 low-balance list|replay|drop` on the low-balance warnings kept for the webhook:
replay POSTs them to router.yaml's low_balance_webhook, and passes over those that may have
been taken already."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import shutil
from pathlib import Path

import pytest
import yaml

from router.cli import main
from router.notifications.low_balance import LOW_BALANCE_UNDELIVERED_FILE
from router.notifications.undelivered import UndeliveredEvents
from tests.conftest import REPO, HttpReceiver


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "config", tmp_path / "config")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def body(balance: str) -> dict[str, str]:
    return {
        "event": "low_balance",
        "number": "4008207788",
        "balance": balance,
        "threshold": "50.00",
    }


def kept_warnings(workdir: Path, webhook_url: str) -> UndeliveredEvents:
    """Two warnings a router kept, the first surely unsent, the second maybe taken."""
    router_yaml = workdir / "config" / "router.yaml"
    settings = yaml.safe_load(router_yaml.read_text(encoding="utf-8"))
    router_yaml.write_text(
        yaml.safe_dump({**settings, "low_balance_webhook": webhook_url}), encoding="utf-8"
    )
    kept = UndeliveredEvents(workdir / "var" / "spool", LOW_BALANCE_UNDELIVERED_FILE)
    kept.keep(
        [
            {
                "id": f"w{n}",
                "number": "4008207788",
                "body": body(balance),
                "attempts": 3,
                "error": error,
                "maybe_sent": maybe,
                "kept_at": "2026-11-23T17:30:00+00:00",
            }
            for n, (balance, error, maybe) in enumerate(
                [("49.00", "HTTP 503", False), ("20.00", "no answer within 5 s", True)]
            )
        ]
    )
    return kept


def test_list_says_which_warnings_may_have_been_sent(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept_warnings(workdir, "http://127.0.0.1:9/alerts")
    assert main(["low-balance", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2026-11-24 01:30:00  w0  4008207788  balance 49.00 below 50.00  attempts 3  HTTP 503",
        "2026-11-24 01:30:00  w1  4008207788  balance 20.00 below 50.00  attempts 3  "
        "no answer within 5 s (may have been sent)",
        "2 undelivered warning(s) in var/spool/low_balance.undelivered",
    ]


async def test_replay_posts_the_unsent_and_passes_over_the_maybe_sent_until_told(
    workdir: Path,
) -> None:
    async with HttpReceiver("ok") as receiver:
        kept = kept_warnings(workdir, receiver.url)
        assert await asyncio.to_thread(main, ["low-balance", "replay"]) == 1
        assert [json.loads(r.body) for r in receiver.received] == [body("49.00")]
        assert [record["id"] for record in kept.read()] == ["w1"]
        assert await asyncio.to_thread(main, ["low-balance", "replay", "--maybe-sent"]) == 0
    assert [json.loads(r.body) for r in receiver.received] == [body("49.00"), body("20.00")]
    assert kept.read() == []


async def test_replay_signs_each_warning_anew_under_its_own_event_id(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replayed warning is the event first sent: the id it had, a fresh signature."""
    monkeypatch.setenv("HOTLINE400_LOW_BALANCE_SECRET", "s3cret")
    async with HttpReceiver("ok") as receiver:
        router_yaml = workdir / "config" / "router.yaml"
        settings = yaml.safe_load(router_yaml.read_text(encoding="utf-8"))
        settings["low_balance_webhook"] = receiver.url
        settings["low_balance_webhook_secret_env"] = "HOTLINE400_LOW_BALANCE_SECRET"
        router_yaml.write_text(yaml.safe_dump(settings), encoding="utf-8")
        kept = UndeliveredEvents(workdir / "var" / "spool", LOW_BALANCE_UNDELIVERED_FILE)
        warning = {**body("49.00"), "event_id": "e" * 32}
        kept.keep([{"id": "w0", "number": "4008207788", "body": warning, "attempts": 3}])
        assert await asyncio.to_thread(main, ["low-balance", "replay"]) == 0
    [request] = receiver.received
    assert json.loads(request.body)["event_id"] == "e" * 32
    assert request.headers["x-hotline400-id"] == "e" * 32
    signed = request.headers["x-hotline400-timestamp"].encode() + b"." + request.body
    digest = hmac.new(b"s3cret", signed, hashlib.sha256).hexdigest()
    assert request.headers["x-hotline400-signature"] == f"v1={digest}"


async def test_replay_to_a_receiver_still_failing_keeps_the_warning_with_its_error(
    workdir: Path,
) -> None:
    async with HttpReceiver("error") as receiver:
        kept = kept_warnings(workdir, receiver.url)
        assert await asyncio.to_thread(main, ["low-balance", "replay"]) == 1
    first, second = kept.read()
    assert (first["attempts"], first["error"], first["maybe_sent"]) == (4, "HTTP 500", False)
    assert second["attempts"] == 3  # passed over, untouched


def test_replay_without_a_webhook_in_router_yaml_sends_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = UndeliveredEvents(workdir / "var" / "spool", LOW_BALANCE_UNDELIVERED_FILE)
    kept.keep([{"id": "w0", "number": "4008207788", "body": body("1.00")}])
    assert main(["low-balance", "replay"]) == 1
    assert "names no low_balance_webhook" in capsys.readouterr().out
    assert len(kept.read()) == 1


def test_drop_lets_a_warning_go(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kept = kept_warnings(workdir, "http://127.0.0.1:9/alerts")
    assert main(["low-balance", "drop", "--id", "w1", "--yes"]) == 0
    assert capsys.readouterr().out.endswith("dropped 1 warning(s)\n")
    assert [record["id"] for record in kept.read()] == ["w0"]
