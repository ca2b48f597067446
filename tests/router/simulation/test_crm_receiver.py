"""The demo's CRM checks each event as README "CRM events and text messages" asks of a CRM:
an event signed with its key, within five minutes, is taken once however often it is
posted; one signed with another key, or long ago, is refused."""

import json
import socket
import time

import httpx

from router.notifications.signing import signed_headers
from router.simulation.crm_receiver import CrmReceiver

BODY = json.dumps({"event": "call.arrived", "id": "demo1.5/arrival", "call_id": "demo1.5"})


def headers(key: str, at: float) -> dict[str, str]:
    return signed_headers(key.encode(), int(at), BODY.encode(), "demo1.5/arrival", "call.arrived")


async def test_a_signed_event_is_taken_once_and_a_forged_or_stale_one_refused() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        crm = CrmReceiver(listener)
        async with crm, httpx.AsyncClient(trust_env=False) as client:
            now = time.time()
            answers = [
                (await client.post(crm.url, content=BODY, headers=signed)).status_code
                for signed in (
                    headers(crm.key, now),
                    headers(crm.key, now + 1),  # a retry: the same id, signed anew
                    headers("not the key", now),
                    headers(crm.key, now - 600),
                )
            ]
    assert answers == [204, 204, 401, 401]
    assert crm.taken == {"demo1.5": ["call.arrived"]}
    assert crm.events == 1
