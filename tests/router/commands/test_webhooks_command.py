"""`hotline400 webhooks list` on the events a router kept: times in the billing zone, as
every other command gives them."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import pytest

from dialplan.plan import CrmEvents
from router.cli import main
from router.commands import webhooks as webhooks_command
from router.notifications.undelivered import UndeliveredEvents
from tests.conftest import REPO, HttpReceiver


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "config", tmp_path / "config")
    with (tmp_path / "config" / "router.yaml").open("a", encoding="utf-8") as settings:
        settings.write("crm_allowed_networks: [127.0.0.0/8]  # the test CRMs listen here\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_list_gives_when_each_event_was_kept_in_the_billing_zone(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = {
        "id": "ev-1",
        "number": "4008207788",
        "attempts": 5,
        "error": "HTTP 503",
        "kept_at": "2026-11-23T17:30:00+00:00",
    }  # as the router writes it, in UTC
    UndeliveredEvents(workdir / "var" / "spool").keep([kept])
    assert main(["webhooks", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "2026-11-24 01:30:00  ev-1  4008207788  attempts 5  HTTP 503"


def test_list_and_drop_line_the_events_up_whatever_the_length_of_their_ids(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    UndeliveredEvents(workdir / "var" / "spool").keep(
        [
            {"id": call_id, "number": "4008207788", "attempts": 1, "error": "HTTP 503"}
            | {"kept_at": "2026-11-23T17:30:00+00:00"}
            for call_id in ("1796677781-3d9122.4/end", "1796677781-3d9122.13/arrival")
        ]
    )
    assert main(["webhooks", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == [
        "2026-11-24 01:30:00  1796677781-3d9122.4/end       4008207788  attempts 1  HTTP 503",
        "2026-11-24 01:30:00  1796677781-3d9122.13/arrival  4008207788  attempts 1  HTTP 503",
    ]
    assert main(["webhooks", "drop", "--number", "4008207788"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == [
        "  1796677781-3d9122.4/end       4008207788  attempts 1  HTTP 503",
        "  1796677781-3d9122.13/arrival  4008207788  attempts 1  HTTP 503",
    ]


CRM_PLAN = "4008207788"  # config/plans: its crm names LANHUA_CRM_KEY


def kept_events(workdir: Path, crm_url: str, count: int) -> UndeliveredEvents:
    """`count` events of the plan with a CRM kept by a router, that CRM now at `crm_url`."""
    plan = workdir / "config" / "plans" / f"{CRM_PLAN}.yaml"
    text = plan.read_text(encoding="utf-8")
    plan.write_text(
        text.replace("https://crm.lanhua.example/hotline400/events", crm_url), encoding="utf-8"
    )
    kept = UndeliveredEvents(workdir / "var" / "spool")
    kept.keep(
        [
            {
                "id": f"c.{n}/end",
                "kind": "call.ended",
                "number": CRM_PLAN,
                "url": crm_url,
                "secret_env": "LANHUA_CRM_KEY",
                "body": f'{{"id":"c.{n}/end"}}',
                "attempts": 5,
                "error": "HTTP 503",
                "kept_at": "2026-11-23T17:30:00+00:00",
            }
            for n in range(count)
        ]
    )
    return kept


@pytest.fixture
def crm_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANHUA_CRM_KEY", "a-long-random-key")


@pytest.mark.usefixtures("crm_key")
async def test_replay_to_a_crm_answering_2xx_with_an_endless_body_delivers(
    workdir: Path,
) -> None:
    async with HttpReceiver("endless") as crm:
        kept = kept_events(workdir, crm.url, 1)
        status = await asyncio.wait_for(asyncio.to_thread(main, ["webhooks", "replay"]), 4)
    assert status == 0 and kept.read() == []
    assert crm.streamed < 16 * 2**20


@pytest.mark.usefixtures("crm_key")
async def test_two_replays_at_once_send_each_event_once(workdir: Path) -> None:
    async with HttpReceiver("slow", delay=0.05) as crm:
        kept = kept_events(workdir, crm.url, 10)
        statuses = await asyncio.gather(
            asyncio.to_thread(main, ["webhooks", "replay"]),
            asyncio.to_thread(main, ["webhooks", "replay"]),
        )
    assert statuses == [0, 0] and kept.read() == []
    ids = [request.headers["x-hotline400-id"] for request in crm.received]
    assert sorted(ids) == sorted(f"c.{n}/end" for n in range(10))


@pytest.mark.usefixtures("crm_key")
async def test_a_replay_to_a_crm_that_moved_says_where_it_points_now(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with HttpReceiver("moved") as crm:
        kept = kept_events(workdir, crm.url, 1)
        status = await asyncio.to_thread(main, ["webhooks", "replay"])
        moved = crm.moved_to.split("?")[0]
    error = f"HTTP 308: moved to {moved}?***; not followed: correct the plan's crm.url"
    assert status == 1 and len(crm.received) == 1
    assert [record["error"] for record in kept.read()] == [error]
    assert capsys.readouterr().out.splitlines()[-1] == f"  c.0/end: {error}"


@pytest.mark.usefixtures("crm_key")
async def test_a_replay_interrupted_keeps_only_what_it_did_not_deliver(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C halfway: the events the CRM took leave the file, so the next replay does not
    send them twice."""
    posted = webhooks_command._post

    def post_until_interrupted(client: httpx.Client, record: dict, crm: CrmEvents) -> str | None:
        if record["id"] == "c.2/end":
            raise KeyboardInterrupt
        return posted(client, record, crm)

    monkeypatch.setattr(webhooks_command, "_post", post_until_interrupted)
    async with HttpReceiver("ok") as crm:
        kept = kept_events(workdir, crm.url, 4)
        status = await asyncio.to_thread(main, ["webhooks", "replay"])
    assert status == 130
    assert len(crm.received) == 2
    assert [record["id"] for record in kept.read()] == ["c.2/end", "c.3/end"]


@pytest.mark.usefixtures("crm_key")
async def test_a_replay_to_a_crm_name_resolving_to_loopback_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The replay sends to the URL the plan names now, the subscriber's to write: without
    the operator allowing loopback, a name resolving there is refused, the event kept."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    monkeypatch.chdir(tmp_path)
    async with HttpReceiver("ok") as crm:
        kept = kept_events(tmp_path, crm.url.replace("127.0.0.1", "localhost"), 1)
        status = await asyncio.to_thread(main, ["webhooks", "replay"])
    assert status == 1 and crm.received == []
    (record,) = kept.read()
    assert record["error"].startswith("crm.url: localhost (")
    assert "crm_allowed_networks (router.yaml)" in capsys.readouterr().out


def test_drop_shows_then_removes_only_the_events_chosen(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An event whose plan names no CRM any more is kept for good by replay (exit 1 for
    ever); drop lets it go, and nothing else."""
    kept = kept_events(workdir, "http://127.0.0.1:9/events", 3)
    assert main(["webhooks", "drop", "--id", "c.1/end"]) == 0
    assert capsys.readouterr().out.endswith(
        "would drop 1 event(s); run again with --yes to drop them\n"
    )
    assert len(kept.read()) == 3
    assert main(["webhooks", "drop", "--id", "c.1/end", "--yes"]) == 0
    assert capsys.readouterr().out.endswith("dropped 1 event(s)\n")
    assert [record["id"] for record in kept.read()] == ["c.0/end", "c.2/end"]
    assert main(["webhooks", "drop", "--id", "c.1/end", "--yes"]) == 1
    assert capsys.readouterr().err == "webhooks: no undelivered event c.1/end\n"
    assert main(["webhooks", "drop", "--number", CRM_PLAN, "--yes"]) == 0
    assert kept.read() == []


@pytest.mark.usefixtures("crm_key")
@pytest.mark.parametrize("proxy", ["", "crm_proxy: http://127.0.0.1:9\n"])
def test_a_replay_to_a_crm_name_that_does_not_resolve_keeps_the_event_with_why(
    workdir: Path, capsys: pytest.CaptureFixture[str], proxy: str
) -> None:
    """A name the DNS does not know (a typo in crm.url, a CRM gone) is a failure like any
    other, with or without the operator's proxy: the event stays, its error the lookup's."""
    with (workdir / "config" / "router.yaml").open("a", encoding="utf-8") as settings:
        settings.write(proxy)
    kept = kept_events(workdir, "http://crm.hotline400-test.invalid/events", 1)
    assert main(["webhooks", "replay"]) == 1
    (record,) = kept.read()
    assert record["error"].startswith("gaierror: ") and record["attempts"] == 6
    assert capsys.readouterr().out.startswith("delivered 0, still undelivered 1\n")
