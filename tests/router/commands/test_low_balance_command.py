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
    out, err = capsys.readouterr()
    assert out == "" and "names no low_balance_webhook" in err
    assert len(kept.read()) == 1


def test_drop_lets_a_warning_go(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kept = kept_warnings(workdir, "http://127.0.0.1:9/alerts")
    assert main(["low-balance", "drop", "--id", "w1", "--yes"]) == 0
    assert capsys.readouterr().out.endswith("dropped 1 warning(s)\n")
    assert [record["id"] for record in kept.read()] == ["w0"]


def provider_body(provider: str, balance: str) -> dict[str, str]:
    return {
        "event": "provider_low_balance",
        "provider": provider,
        "balance": balance,
        "threshold": "50.00",
    }


def kept_of_two_providers_and_a_number(workdir: Path, webhook_url: str) -> UndeliveredEvents:
    """Beside a number's warnings, one each of sp-east and sp-west, kept under their
    accounts as the router keeps them."""
    kept = kept_warnings(workdir, webhook_url)
    kept.keep(
        [
            {
                "id": f"p-{provider}",
                "number": f"provider:{provider}",
                "body": provider_body(provider, balance),
                "attempts": 3,
                "error": "HTTP 503",
                "maybe_sent": False,
                "kept_at": "2026-11-23T17:31:00+00:00",
            }
            for provider, balance in [("sp-east", "40.00"), ("sp-west", "12.50")]
        ]
    )
    return kept


def test_list_names_a_providers_warning_as_the_provider(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept_of_two_providers_and_a_number(workdir, "http://127.0.0.1:9/alerts")
    assert main(["low-balance", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2:] == [
        "2026-11-24 01:31:00  p-sp-east  provider sp-east  balance 40.00 below 50.00  "
        "attempts 3  HTTP 503",
        "2026-11-24 01:31:00  p-sp-west  provider sp-west  balance 12.50 below 50.00  "
        "attempts 3  HTTP 503",
        "4 undelivered warning(s) in var/spool/low_balance.undelivered",
    ]


def test_list_of_a_provider_shows_only_its_warnings(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept_of_two_providers_and_a_number(workdir, "http://127.0.0.1:9/alerts")
    assert main(["low-balance", "list", "--provider", "sp-west"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2026-11-24 01:31:00  p-sp-west  provider sp-west  balance 12.50 below 50.00  "
        "attempts 3  HTTP 503",
        "1 undelivered warning(s) of provider sp-west in var/spool/low_balance.undelivered",
    ]


async def test_replay_of_a_provider_posts_only_its_warnings(workdir: Path) -> None:
    async with HttpReceiver("ok") as receiver:
        kept = kept_of_two_providers_and_a_number(workdir, receiver.url)
        argv = ["low-balance", "replay", "--provider", "sp-east"]
        assert await asyncio.to_thread(main, argv) == 0
    assert [json.loads(r.body) for r in receiver.received] == [provider_body("sp-east", "40.00")]
    assert [record["id"] for record in kept.read()] == ["w0", "w1", "p-sp-west"]


def test_drop_of_a_provider_lets_go_of_its_warnings_alone(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = kept_of_two_providers_and_a_number(workdir, "http://127.0.0.1:9/alerts")
    assert main(["low-balance", "drop", "--provider", "sp-east"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "  p-sp-east  provider sp-east  balance 40.00 below 50.00  attempts 3  HTTP 503",
        "would drop 1 warning(s); run again with --yes to drop them",
    ]
    assert main(["low-balance", "drop", "--provider", "sp-east", "--yes"]) == 0
    assert capsys.readouterr().out.endswith("dropped 1 warning(s)\n")
    assert [record["id"] for record in kept.read()] == ["w0", "w1", "p-sp-west"]


@pytest.mark.parametrize("action", [["list"], ["replay"], ["drop", "--yes"]], ids=lambda a: a[0])
def test_a_provider_that_keeps_nothing_selects_nothing(
    action: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = kept_of_two_providers_and_a_number(workdir, "http://127.0.0.1:9/alerts")
    before = kept.read()
    assert main(["low-balance", *action, "--provider", "sp-north"]) == 0
    out = capsys.readouterr().out
    assert "p-sp-" not in out and "w0" not in out
    assert kept.read() == before


@pytest.mark.parametrize("action", ["replay", "drop"])
def test_a_provider_and_a_number_together_are_refused(
    action: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = kept_of_two_providers_and_a_number(workdir, "http://127.0.0.1:9/alerts")
    before = kept.read()
    argv = ["low-balance", action, "--provider", "sp-east", "--number", "4008207788"]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert kept.read() == before


def test_a_provider_name_of_the_wrong_form_is_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["low-balance", "list", "--provider", "SP East"])
    assert exited.value.code == 2
    assert "'SP East' is not a provider name" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["webhooks", "sms"])
def test_spools_that_keep_nothing_per_provider_take_no_provider(
    command: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "list", "--provider", "sp-east"])
    assert "--provider" in capsys.readouterr().err
