"""The delivery queue on its own, against real HTTP receivers: what counts as delivered, what
is retried, and what a CRM's answer may cost the router."""

from __future__ import annotations

from pathlib import Path

from router.notifications.undelivered import UndeliveredEvents
from router.notifications.webhooks import CallEvent, WebhookDelivery
from tests.conftest import HttpReceiver, eventually

NUMBER = "4000000020"


def event(url: str, event_id: str = "c.1/arrival", kind: str = "call.arrived") -> CallEvent:
    return CallEvent(event_id, kind, NUMBER, url, "CRM_KEY", b'{"event":"call.arrived"}')


def delivery(tmp_path: Path, **settings: float) -> WebhookDelivery:
    return WebhookDelivery(
        UndeliveredEvents(tmp_path / "spool"), secrets=lambda name: "key", **settings
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


def test_an_event_kept_after_a_line_a_crash_cut_short_is_not_lost(tmp_path: Path) -> None:
    """A router killed mid-append leaves a line without its end; the next event kept starts
    a line of its own rather than finishing that one (which is then unreadable)."""
    kept = UndeliveredEvents(tmp_path)
    kept.keep([{"id": "c.1/arrival"}])
    with kept.path.open("ab") as spool:
        spool.write(b'{"id":"c.1/answer","bo')
    kept.keep([{"id": "c.1/end"}])
    assert [record["id"] for record in kept.read()] == ["c.1/arrival", "c.1/end"]
