"""The delivery queue on its own, against real HTTP receivers: what counts as delivered, what
is retried, and what a CRM's answer may cost the router; and the file of events kept."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from ipaddress import ip_network
from pathlib import Path

from router.monitoring.metrics import Metrics
from router.notifications.undelivered import RECOUNT_EVERY_S, UndeliveredEvents
from router.notifications.webhooks import CallEvent, WebhookDelivery
from tests.conftest import HttpReceiver, eventually

NUMBER = "4000000020"


def event(url: str, event_id: str = "c.1/arrival", kind: str = "call.arrived") -> CallEvent:
    return CallEvent(event_id, kind, NUMBER, url, "CRM_KEY", b'{"event":"call.arrived"}')


def delivery(tmp_path: Path, **settings: float) -> WebhookDelivery:
    return WebhookDelivery(
        UndeliveredEvents(tmp_path / "spool"),
        secrets=lambda name: "key",
        allowed_networks=[ip_network("127.0.0.0/8")],  # the test CRMs listen here
        **settings,
    )


async def test_a_crm_answering_2xx_with_an_endless_body_took_the_event_and_costs_no_memory(
    tmp_path: Path,
) -> None:
    """The status is the CRM's answer: a 200 whose body never ends is a delivered event, not
    a timeout to retry, and the router reads a little of that body, not gigabytes."""
    async with HttpReceiver("endless") as crm:
        webhooks = delivery(tmp_path, timeout=3.0, backoff=0.05)
        await webhooks.start()
        try:
            webhooks.submit(event(crm.url))
            await eventually(lambda: webhooks.stats.delivered == 1, timeout=2.5)
        finally:
            await webhooks.close(grace=0)
    assert (webhooks.stats.retried, webhooks.stats.undelivered) == (0, 0)
    assert len(crm.received) == 1
    assert crm.streamed < 16 * 2**20  # the router hung up: it did not take the 64 MB offered


async def test_a_crm_that_moved_is_posted_once_and_the_event_kept_with_where_it_points(
    tmp_path: Path,
) -> None:
    """A redirect is not followed (the signed event would go to a URL no plan names) and not
    retried (it answers the same every time): the event is kept for replay at once, its error
    says where the CRM points now (query hidden) so the operator fixes crm.url, and the
    metrics count it."""
    async with HttpReceiver("moved") as crm:
        webhooks = delivery(tmp_path, backoff=0.01, attempts=5)
        metrics = Metrics(lambda number: True)
        metrics.watch_webhooks(webhooks)
        await webhooks.start()
        try:
            webhooks.submit(event(crm.url))
            await eventually(lambda: webhooks.stats.undelivered == 1, timeout=2)
        finally:
            await webhooks.close(grace=0)
        moved = crm.moved_to.split("?")[0]
    assert [request.path for request in crm.received] == ["/events"]
    assert webhooks.stats.retried == 0
    (kept,) = webhooks.undelivered.read()
    assert kept["error"] == (
        f"HTTP 308: moved to {moved}?***; not followed: correct the plan's crm.url"
    )
    assert metrics.registry.get_sample_value("hotline400_webhook_redirects_total") == 1


async def test_a_crm_name_resolving_to_loopback_is_refused_at_send_time(tmp_path: Path) -> None:
    """A plan's crm.url is the subscriber's: a name that resolves to the router's own
    loopback (DNS can point any public name there) is refused at send time, before a byte
    is sent, not retried (the plan must change), and kept with a message naming the field
    and the setting that would allow it."""
    async with HttpReceiver("ok") as crm:
        webhooks = WebhookDelivery(
            UndeliveredEvents(tmp_path / "spool"), secrets=lambda name: "key", backoff=0.01
        )
        await webhooks.start()
        try:
            webhooks.submit(event(crm.url.replace("127.0.0.1", "localhost")))
            await eventually(lambda: webhooks.stats.undelivered == 1, timeout=2)
        finally:
            await webhooks.close(grace=0)
    assert crm.received == []
    assert webhooks.stats.retried == 0
    (kept,) = webhooks.undelivered.read()
    assert kept["error"].startswith("crm.url: localhost (")
    assert "is not a public address" in kept["error"]
    assert "crm_allowed_networks (router.yaml)" in kept["error"]


def test_an_event_kept_after_a_line_a_crash_cut_short_is_not_lost(tmp_path: Path) -> None:
    """A router killed mid-append leaves a line without its end; the next event kept starts
    a line of its own rather than finishing that one (which is then unreadable)."""
    kept = UndeliveredEvents(tmp_path)
    kept.keep([{"id": "c.1/arrival"}])
    with kept.path.open("ab") as spool:
        spool.write(b'{"id":"c.1/answer","bo')
    kept.keep([{"id": "c.1/end"}])
    assert [record["id"] for record in kept.read()] == ["c.1/arrival", "c.1/end"]


def test_a_replay_killed_while_rewriting_the_file_loses_no_kept_event(tmp_path: Path) -> None:
    """The rewrite runs out of room half way (a process limited to 4 KiB a file, as a full
    disk stops it) and the replay dies: the events are all still there."""
    kept = UndeliveredEvents(tmp_path)
    kept.keep([{"id": f"c.{n}/end", "body": "x" * 100} for n in range(100)])
    before = kept.path.read_bytes()
    script = textwrap.dedent(
        f"""
        import resource
        from router.notifications.undelivered import UndeliveredEvents
        kept = UndeliveredEvents({str(tmp_path)!r})
        retried = {{r["id"]: {{**r, "tries": 2}} for r in kept.read()}}
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        kept.settle(set(), retried)
        """
    )
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
    assert child.returncode == 1 and b"File too large" in child.stderr
    assert kept.path.read_bytes() == before
    assert len(kept.read()) == 100


def test_an_event_kept_while_a_replay_replaced_the_file_goes_into_the_new_one(
    tmp_path: Path,
) -> None:
    kept = UndeliveredEvents(tmp_path)
    kept.keep([{"id": "c.1/end"}])
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import fcntl, os, sys, time
                fd = os.open({str(kept.path)!r}, os.O_RDWR)
                fcntl.flock(fd, fcntl.LOCK_EX)
                print("locked", flush=True)
                sys.stdin.readline()
                with open({str(kept.path)!r} + ".new", "wb") as new:
                    new.write(b'{{"id":"c.1/end","tries":2}}\\n')
                os.replace({str(kept.path)!r} + ".new", {str(kept.path)!r})
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline() == "locked\n"
    appending = threading.Thread(target=kept.keep, args=([{"id": "c.2/end"}],))
    appending.start()
    time.sleep(0.2)  # the append waits for the lock the replay holds
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.wait(10) == 0
    appending.join(10)
    assert [(r["id"], r.get("tries")) for r in kept.read()] == [("c.1/end", 2), ("c.2/end", None)]


def test_the_kept_count_follows_the_routers_appends_and_a_replay_in_another_process(
    tmp_path: Path,
) -> None:
    """The router counts what it appends without reading the file back; a replay or drop
    rewrites the file from another process, which the router sees within RECOUNT_EVERY_S."""
    now = [0.0]
    router = UndeliveredEvents(tmp_path, clock=lambda: now[0])
    assert router.count() == 0
    router.keep([{"id": "a"}, {"id": "b"}])
    router.keep([{"id": "c"}])
    assert router.count() == 3
    UndeliveredEvents(tmp_path).settle({"a", "b"}, {})  # `hotline400 webhooks replay`
    assert router.count() == 3  # not re-read at every scrape
    now[0] += RECOUNT_EVERY_S
    assert router.count() == 1
    router.keep([{"id": "d"}])
    assert router.count() == 2
    assert UndeliveredEvents(tmp_path).count() == 2  # a router started on a kept file
