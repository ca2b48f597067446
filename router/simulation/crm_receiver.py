"""A subscriber's CRM played on loopback for `hotline400 demo`: the tour's CRM events come
here instead of going to the plan's crm.url, so a newcomer sees screen pops arrive, signed,
with no CRM on the Internet and no key in the environment (the receiver makes one up and
the demo's router signs with it).

It checks each event as README "CRM events and text messages" asks of a CRM: the signature
of the timestamp and body under its key, compared in constant time, and the timestamp
within five minutes; it answers 204 to an event that passes (once per event id: a retry is
taken again but counted once) and 401 to one that does not. It reads what the router sends,
HTTP/1.1 requests with a Content-Length, on a connection kept open between them.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import socket
import time
from typing import Self

from router.notifications.signing import ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature

MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 1024 * 1024
"""Far more than a call's events take: a call.ended carries the CDR, a few kB."""
FRESH_S = 300


class CrmReceiver:
    """An async context manager serving on `listener`, a socket bound to loopback; `url`
    is where the plans' CRM events are to go, `key` what they are signed with."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.key = secrets.token_hex(16)
        self.taken: dict[str, list[str]] = {}
        """The kinds of event taken, by call id, in the order they came."""
        self._ids: set[str] = set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        host, port = self.listener.getsockname()[:2]
        return f"http://{host}:{port}/events"

    def secret(self, _variable: str) -> str:
        """The key the router signs with, whichever variable the plan names."""
        return self.key

    @property
    def events(self) -> int:
        return sum(len(kinds) for kinds in self.taken.values())

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(
            self._serve, sock=self.listener, limit=MAX_HEAD_BYTES
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while request := await _read_request(reader):
                status = self._take(*request)
                writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a request cut short or too large: the connection ends
        finally:
            self._writers.discard(writer)
            writer.close()

    def _take(self, headers: dict[str, str], body: bytes) -> str:
        stamp = headers.get(TIMESTAMP_HEADER.lower(), "")
        signed = headers.get(SIGNATURE_HEADER.lower(), "")
        fresh = stamp.isdigit() and abs(time.time() - int(stamp)) <= FRESH_S
        if not fresh or not hmac.compare_digest(
            signature(self.key.encode(), int(stamp), body), signed
        ):
            return "401 Unauthorized"  # the router keeps the event: the demo says so
        event_id = headers.get(ID_HEADER.lower(), "")
        if event_id not in self._ids:
            self._ids.add(event_id)
            event = json.loads(body)
            self.taken.setdefault(event["call_id"], []).append(event["event"])
        return "204 No Content"


async def _read_request(reader: asyncio.StreamReader) -> tuple[dict[str, str], bytes] | None:
    """The next request's headers (names in lower case) and body; None when the client
    closed the connection between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as ended:
        if ended.partial:
            raise
        return None
    headers = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length", "0")
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        raise ConnectionError(f"no body the router sends: Content-Length {length}")
    return headers, await reader.readexactly(int(length))
