"""The protocol ceiling for bench/agi_load.py: a FastAGI server with no routing and no CDRs.

It speaks the same AGI round trips the router sends for the end-to-end plans
4000000001-4000000003 (tests/e2e_config): per attempt `EXEC Dial` and one
`GET FULL VARIABLE` of DIALSTATUS, ANSWEREDTIME_MS and DIALEDTIME_MS, the next destination on
anything but ANSWER, then one `EXEC MSet` of the three HOTLINE_* variables, byte for
byte. What it leaves out is exactly what the router adds on top of the wire: the caller
lookup, the plan and decide(), the quoting of
untrusted values, the CDR writes and the session bookkeeping. Same runtime (asyncio
streams), so the gap between the two is the router's own cost.

    python bench/bare_fastagi.py --listen 127.0.0.1:4574
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource

from router.call.channel_contract import ChannelVariable, Outcome

DIAL_TEMPLATE = "Local/{number}@phones"
RING_TIMEOUT_S = 20
DIAL_CHAINS: dict[str, tuple[str, ...]] = {
    "4000000001": ("13800000011",),
    "4000000002": ("13800000021", "13800000011"),
    "4000000003": ("13800000031", "13800000032", "13800000033"),
}
"""Destinations tried in order per dialled number, as the e2e plans forward them."""
DIAL_VARIABLES = "${DIALSTATUS},${ANSWEREDTIME_MS},${DIALEDTIME_MS}"
STATUS_OF_DIAL = {"ANSWER": Outcome.ANSWERED, "BUSY": Outcome.BUSY, "NOANSWER": Outcome.NOANSWER}
LISTEN_BACKLOG = 4096


class SessionLost(Exception):
    """Asterisk closed the connection while a reply was due."""


async def _reply(reader: asyncio.StreamReader) -> str:
    """The `200 result=...` line answering the last command, HANGUP notices skipped."""
    while True:
        line = await reader.readline()
        if not line:
            raise SessionLost
        text = line.rstrip(b"\r\n").decode()
        if text != "HANGUP":
            return text


async def _command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: str) -> str:
    writer.write(line.encode() + b"\n")
    await writer.drain()
    return await _reply(reader)


def _value(reply: str) -> str:
    """The value of a GET FULL VARIABLE reply: `200 result=1 (BUSY,,)` -> BUSY,,."""
    opening = reply.find("(")
    return reply[opening + 1 : -1] if opening >= 0 else ""


async def _serve_call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    env: dict[str, str] = {}
    while line := (await reader.readline()).rstrip(b"\r\n"):
        name, _, value = line.decode().partition(": ")
        env[name] = value
    status, destination = Outcome.ERROR, ""
    for number in DIAL_CHAINS.get(env.get("agi_extension", ""), ()):
        destination = number
        dial = DIAL_TEMPLATE.format(number=number)
        await _command(reader, writer, f'EXEC Dial "{dial},{RING_TIMEOUT_S}"')
        outcome = await _command(reader, writer, f"GET FULL VARIABLE {DIAL_VARIABLES}")
        dial_status = _value(outcome).partition(",")[0]
        status = STATUS_OF_DIAL.get(dial_status, Outcome.BUSY)
        if dial_status == "ANSWER":
            break
    variables = ",".join(
        f"{name}={value}"
        for name, value in (
            (ChannelVariable.STATUS, status),
            (ChannelVariable.DESTINATION, destination),
            (ChannelVariable.RULE, "default"),
        )
    )
    await _command(reader, writer, f'EXEC MSet "{variables}"')


async def _accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await _serve_call(reader, writer)
    except (SessionLost, ConnectionError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def serve(host: str, port: int) -> None:
    server = await asyncio.start_server(
        _accept, host, port, backlog=LISTEN_BACKLOG, reuse_address=True
    )
    async with server:
        await server.serve_forever()


def raise_fd_limit() -> int:
    """Lift the soft open-files limit to the hard one: every held call is a socket."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return wanted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:4574", metavar="HOST:PORT")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    raise_fd_limit()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(host, int(port)))


if __name__ == "__main__":
    main()
