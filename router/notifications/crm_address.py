"""Where call events may be POSTed: a plan's `crm.url` is written by its subscriber (the
console's plan editor), so without a check the router would send signed requests to its own
loopback, to the cloud's metadata service (169.254.169.254) or into the operator's private
network (server-side request forgery).

An address is allowed when it is public (`is_global`), or inside one of the operator's
`crm_allowed_networks` in router.yaml (an on-premises CRM). A literal address in the URL is
checked when a plan is saved from the console and by `hotline400 check`; at send time the
name is resolved and every address it gives is checked, and the connection goes to the
address checked, so a public name that resolves to 127.0.0.1 is refused too. Through the
operator's proxy (`crm_proxy`) the name is checked the same way before the proxy is asked,
and the proxy resolves it again to connect.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from dialplan.errors import Problem
from dialplan.plan import Plan
from dialplan.yaml_source import read_yaml

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
SETTING = "crm_allowed_networks"


class RefusedAddress(Exception):
    """A CRM address outside the public Internet and the operator's allowed networks."""


def address_allowed(address: Address, allowed: Sequence[Network]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return address.is_global or any(address in network for network in allowed)


def refusal(host: str, address: Address) -> str:
    shown = host if host == str(address) else f"{host} ({address})"
    return (
        f"{shown} is not a public address: call events go only to public addresses, or to "
        f"networks the operator lists in {SETTING} (router.yaml)"
    )


def url_problem(url: str, allowed: Sequence[Network]) -> str | None:
    """Why a CRM URL is refused before any lookup: its host is a literal address (or
    `localhost`) outside the allowed ones; None when it is allowed or a name."""
    host = (urlsplit(url).hostname or "").rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        address: Address = ipaddress.IPv4Address("127.0.0.1")
    else:
        try:
            address = ipaddress.ip_address(host.partition("%")[0])
        except ValueError:
            return None
    return None if address_allowed(address, allowed) else refusal(host, address)


def plan_problems(file: str, text: str, plan: Plan, allowed: Sequence[Network]) -> list[Problem]:
    """The plan's `crm.url` refused, located to its line."""
    if plan.crm is None:
        return []
    why = url_problem(plan.crm.url, allowed)
    if why is None:
        return []
    return [read_yaml(file, text).problem(("crm", "url"), why)]


def checked_transport(
    allowed: Sequence[Network], limits: httpx.Limits, proxy: str | None = None
) -> httpx.AsyncBaseTransport:
    """httpx's transport with its connections made through `CheckedBackend`, or, given the
    operator's `proxy` (router.yaml crm_proxy), through that proxy once `ProxiedTransport`
    has checked the CRM's addresses. As any transport given to a client, it takes no proxy
    from the environment (HTTP(S)_PROXY): that one would resolve the CRM's name unchecked."""
    if proxy is not None:
        return ProxiedTransport(allowed, httpx.AsyncHTTPTransport(limits=limits, proxy=proxy))
    transport = httpx.AsyncHTTPTransport(limits=limits)
    transport._pool = httpcore.AsyncConnectionPool(  # httpx takes no network backend
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=CheckedBackend(allowed),
    )
    return transport


def checked_sync_transport(
    allowed: Sequence[Network], proxy: str | None = None
) -> httpx.BaseTransport:
    """`checked_transport` for a command's blocking client (`webhooks replay`)."""
    if proxy is not None:
        return ProxiedSyncTransport(allowed, httpx.HTTPTransport(proxy=proxy))
    transport = httpx.HTTPTransport()
    transport._pool = httpcore.ConnectionPool(  # httpx takes no network backend
        ssl_context=httpx.create_ssl_context(), network_backend=CheckedSyncBackend(allowed)
    )
    return transport


def _checked(host: str, found: Iterable[tuple[Any, ...]], allowed: Sequence[Network]) -> Address:
    """The first address `getaddrinfo` found for `host`, once all of them are allowed (a
    name giving one private address among public ones is refused: which one is used is
    not ours to choose)."""
    addresses = [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in found]
    for address in addresses:
        if not address_allowed(address, allowed):
            raise RefusedAddress(refusal(host, address))
    return addresses[0]


def _target(url: httpx.URL) -> tuple[str, int]:
    """The host a request is for as the proxy is given it (an international name in its
    ASCII form), and its port, the scheme's when the URL names none."""
    return url.raw_host.decode("ascii"), url.port or (443 if url.scheme == "https" else 80)


class ProxiedSyncTransport(httpx.BaseTransport):
    """`ProxiedTransport` for a command's blocking client."""

    def __init__(self, allowed: Sequence[Network], proxied: httpx.HTTPTransport) -> None:
        self._allowed = tuple(allowed)
        self._proxied = proxied

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host, port = _target(request.url)
        _checked(host, socket.getaddrinfo(host, port, type=socket.SOCK_STREAM), self._allowed)
        return self._proxied.handle_request(request)

    def close(self) -> None:
        self._proxied.close()


class ProxiedTransport(httpx.AsyncBaseTransport):
    """Sends through the operator's HTTP proxy (a CONNECT tunnel to an https CRM, the whole
    URL to an http one), once every address the CRM's name resolves to here is allowed. The
    proxy resolves the name again to connect: a name that changes between the two lookups
    is the proxy's to police. The proxy's own address is the operator's and is not checked."""

    def __init__(self, allowed: Sequence[Network], proxied: httpx.AsyncHTTPTransport) -> None:
        self._allowed = tuple(allowed)
        self._proxied = proxied

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host, port = _target(request.url)
        loop = asyncio.get_running_loop()
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        _checked(host, found, self._allowed)
        return await self._proxied.handle_async_request(request)

    async def aclose(self) -> None:
        await self._proxied.aclose()


class CheckedSyncBackend(httpcore.NetworkBackend):
    """httpcore's blocking network backend with every address checked before connecting."""

    def __init__(self, allowed: Sequence[Network]) -> None:
        self._allowed = tuple(allowed)
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        address = _checked(host, found, self._allowed)
        return self._inner.connect_tcp(str(address), port, timeout, local_address, socket_options)


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with every address checked before it is connected to."""

    def __init__(self, allowed: Sequence[Network]) -> None:
        self._allowed = tuple(allowed)
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        address = _checked(host, found, self._allowed)
        return await self._inner.connect_tcp(
            str(address), port, timeout, local_address, socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
