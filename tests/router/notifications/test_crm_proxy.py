"""CRM events through the operator's HTTP proxy (router.yaml `crm_proxy`), against a real
proxy and real CRMs on 127.0.0.1: an https CRM through a CONNECT tunnel, an http one by a
request naming its whole URL; the router checks the CRM's addresses itself before the proxy
is asked, and a proxy that is down is a failure like any other."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from ipaddress import ip_network
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from router.cli import main
from router.configuration.settings import CRM_PROXY_ENV, load_settings
from router.notifications.undelivered import UndeliveredEvents
from router.notifications.webhooks import CallEvent, WebhookDelivery
from tests.conftest import REPO, HttpReceiver, LoopbackServer, call, eventually, running_router
from tests.router.commands.test_webhooks_command import kept_events
from tests.router.notifications.test_call_events import CRM_NUMBER, crm_config, verified

LOOPBACK = [ip_network("127.0.0.0/8")]  # the test CRMs listen here


class TinyProxy(LoopbackServer):
    """An HTTP proxy on 127.0.0.1 as operators run them: CONNECT opens a tunnel to the host
    and port it names; a request naming a whole URL (absolute form) is passed on to that
    host with its path alone. It counts the connections it took and what it relayed."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(tls)
        self.connections = 0
        self.tunnels: list[str] = []
        """CONNECT targets, HOST:PORT."""
        self.forwarded: list[str] = []
        """"METHOD URL" of each request relayed in absolute form."""
        self.credentials: list[str] = []
        """USER:PASSWORD of each Proxy-Authorization received."""

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        head = await reader.readuntil(b"\r\n\r\n")
        self._note_credentials(head)
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ")
        if method == "CONNECT":
            await self._tunnel(target, reader, writer)
        else:
            await self._forward(head, reader, writer)

    def _note_credentials(self, head: bytes) -> None:
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "proxy-authorization":
                encoded = value.strip().removeprefix("Basic ")
                self.credentials.append(base64.b64decode(encoded).decode())

    async def _tunnel(
        self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        host, _, port = target.rpartition(":")
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        self.tunnels.append(target)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    async def _forward(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Relay requests in absolute form, one after another on the connection, each with
        its body and its answer read by Content-Length (all the test CRMs give one)."""
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while True:
            line, rest = head.split(b"\r\n", 1)
            method, target, version = line.decode().split(" ")
            url = urlsplit(target)
            if upstream is None:
                upstream = await asyncio.open_connection(url.hostname, url.port)
            self.forwarded.append(f"{method} {target}")
            path = url.path + (f"?{url.query}" if url.query else "")
            body = await reader.readexactly(_content_length(head))
            upstream[1].write(f"{method} {path} {version}\r\n".encode() + rest + body)
            answer = await upstream[0].readuntil(b"\r\n\r\n")
            answer += await upstream[0].readexactly(_content_length(answer))
            writer.write(answer)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")


def _content_length(head: bytes) -> int:
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return int(value)
    return 0


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate for 127.0.0.1 (certificate, key), for an https CRM."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the https CRM's certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=crm",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    yield cert, key


@pytest.fixture
def trusted_crm(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """The https CRM's server context; the router trusts its certificate (SSL_CERT_FILE,
    which httpx reads as any client does)."""
    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def event(url: str) -> CallEvent:
    return CallEvent("c.1/arrival", "call.arrived", CRM_NUMBER, url, "CRM_KEY", b'{"id":"c.1"}')


def delivery(tmp_path: Path, proxy: str, **settings: object) -> WebhookDelivery:
    return WebhookDelivery(
        UndeliveredEvents(tmp_path / "spool"),
        secrets=lambda name: "key",
        allowed_networks=settings.pop("allowed_networks", LOOPBACK),  # type: ignore[arg-type]
        proxy=proxy,
        **settings,  # type: ignore[arg-type]
    )


async def deliver_one(webhooks: WebhookDelivery, url: str) -> None:
    """Submit one event and wait until it is delivered or kept."""
    await webhooks.start()
    try:
        webhooks.submit(event(url))
        await eventually(lambda: webhooks.stats.delivered + webhooks.stats.undelivered == 1)
    finally:
        await webhooks.close(grace=0)


async def test_an_https_crm_is_reached_through_a_tunnel_the_proxy_opens(
    tmp_path: Path, trusted_crm: ssl.SSLContext
) -> None:
    """The proxy is asked to CONNECT to the CRM and sees only TLS: the event, signed, is
    the CRM's to read."""
    async with TinyProxy() as proxy, HttpReceiver("ok", tls=trusted_crm) as crm:
        webhooks = delivery(tmp_path, proxy.url)
        await deliver_one(webhooks, crm.url)
    assert webhooks.stats.delivered == 1
    assert proxy.tunnels == [f"127.0.0.1:{crm.port}"] and proxy.forwarded == []
    (received,) = crm.received
    assert received.path == "/events" and received.body == b'{"id":"c.1"}'
    assert received.headers["x-hotline400-signature"].startswith("v1=")


async def test_a_tls_proxy_is_trusted_as_the_crms_are(
    tmp_path: Path, trusted_crm: ssl.SSLContext
) -> None:
    """An https:// proxy's certificate is checked against the certificates the router
    trusts for CRMs (SSL_CERT_FILE included: an operator's proxy often has its own CA)."""
    async with TinyProxy(tls=trusted_crm) as proxy, HttpReceiver("ok", tls=trusted_crm) as crm:
        webhooks = delivery(tmp_path, proxy.url)
        await deliver_one(webhooks, crm.url)
    assert webhooks.stats.delivered == 1, webhooks.undelivered.read()
    assert proxy.tunnels == [f"127.0.0.1:{crm.port}"] and len(crm.received) == 1


async def test_an_http_crm_is_reached_by_requests_naming_its_whole_url(tmp_path: Path) -> None:
    """A plain-http CRM's events are handed to the proxy as requests naming the CRM's URL
    (absolute form), with the proxy's user and password when the setting has them."""
    async with TinyProxy() as proxy, HttpReceiver("ok") as crm:
        webhooks = delivery(tmp_path, f"http://ops:s3cret@127.0.0.1:{proxy.port}")
        await deliver_one(webhooks, crm.url)
    assert webhooks.stats.delivered == 1
    assert proxy.forwarded == [f"POST {crm.url}"] and proxy.tunnels == []
    assert proxy.credentials == ["ops:s3cret"]
    assert [request.path for request in crm.received] == ["/events"]


@pytest.mark.parametrize("host", ["localhost", "169.254.169.254"])
async def test_a_crm_at_a_refused_address_is_refused_before_the_proxy_is_asked(
    tmp_path: Path, host: str
) -> None:
    """The proxy would resolve and reach any name it is given: the router resolves the
    CRM's name itself and refuses it as it does without a proxy; the proxy, at an address
    of the operator's own (loopback here, not in crm_allowed_networks), is never asked."""
    async with TinyProxy() as proxy:
        webhooks = delivery(tmp_path, proxy.url, allowed_networks=[], backoff=0.01)
        await deliver_one(webhooks, f"http://{host}:8080/events")
    assert proxy.connections == 0
    assert (webhooks.stats.undelivered, webhooks.stats.retried) == (1, 0)
    (kept,) = webhooks.undelivered.read()
    assert kept["error"].startswith(f"crm.url: {host}")
    assert "is not a public address" in kept["error"]


async def test_with_the_proxy_down_an_event_is_retried_then_kept(tmp_path: Path) -> None:
    async with HttpReceiver("ok") as crm:
        webhooks = delivery(tmp_path, HttpReceiver.refusing(), attempts=3, backoff=0.01)
        await deliver_one(webhooks, crm.url)
    assert crm.received == []
    assert (webhooks.stats.retried, webhooks.stats.undelivered) == (2, 1)
    (kept,) = webhooks.undelivered.read()
    assert kept["attempts"] == 3 and kept["error"].startswith("ConnectError")


async def test_the_environments_proxy_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP(S)_PROXY would let a proxy resolve the CRM's name unchecked: without crm_proxy
    events go straight to the CRM whatever the environment names."""
    async with TinyProxy() as proxy, HttpReceiver("ok") as crm:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy.url)
        webhooks = WebhookDelivery(
            UndeliveredEvents(tmp_path / "spool"), secrets=lambda n: "k", allowed_networks=LOOPBACK
        )
        await deliver_one(webhooks, crm.url)
    assert webhooks.stats.delivered == 1 and proxy.connections == 0


@pytest.fixture
def crm_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE400_TEST_CRM_KEY", "a-long-random-key-shared-with-the-crm")
    monkeypatch.setenv("LANHUA_CRM_KEY", "a-long-random-key")


@pytest.mark.usefixtures("crm_key")
async def test_a_router_with_crm_proxy_sends_a_calls_events_through_it(tmp_path: Path) -> None:
    async with TinyProxy() as proxy, HttpReceiver("ok") as crm:
        config = crm_config(tmp_path, crm.url)
        async with running_router(tmp_path, config, crm_proxy=proxy.url) as router:
            await call(router, dialled=CRM_NUMBER, uniqueid="proxied.1")
            await eventually(lambda: len(crm.received) == 3)
    assert len(proxy.forwarded) == 3 and all(f"POST {crm.url}" == f for f in proxy.forwarded)
    assert {verified(request)["event"] for request in crm.received} == {
        "call.arrived",
        "call.answered",
        "call.ended",
    }


@pytest.mark.usefixtures("crm_key")
async def test_webhooks_replay_goes_through_crm_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(REPO / "config", tmp_path / "config")
    monkeypatch.chdir(tmp_path)
    async with TinyProxy() as proxy, HttpReceiver("ok") as crm:
        with (tmp_path / "config" / "router.yaml").open("a", encoding="utf-8") as settings:
            settings.write(f"crm_allowed_networks: [127.0.0.0/8]\ncrm_proxy: {proxy.url}\n")
        kept = kept_events(tmp_path, crm.url, 2)
        status = await asyncio.to_thread(main, ["webhooks", "replay"])
    assert status == 0 and kept.read() == []
    assert proxy.forwarded == [f"POST {crm.url}"] * 2
    assert len(crm.received) == 2


@pytest.mark.usefixtures("crm_key")
async def test_the_proxy_with_its_password_comes_from_the_environment_over_router_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with TinyProxy() as proxy, HttpReceiver("ok") as crm:
        monkeypatch.setenv(CRM_PROXY_ENV, proxy.url)
        config = crm_config(tmp_path, crm.url)
        async with running_router(tmp_path, config, crm_proxy="http://10.255.0.1:9") as router:
            await call(router, dialled=CRM_NUMBER, uniqueid="proxied.env")
            await eventually(lambda: len(crm.received) == 3)
    assert len(proxy.forwarded) == 3


def test_a_bad_proxy_in_the_environment_stops_serve_and_replay_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(REPO / "config", tmp_path / "config")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(CRM_PROXY_ENV, "socks5://ops:s3cret@10.0.0.8:1080")
    assert main(["webhooks", "replay"]) == 1
    assert capsys.readouterr().err == (
        f"error: {CRM_PROXY_ENV}: 'socks5://ops:***@10.0.0.8:1080' is not http://HOST:PORT or "
        "https://HOST:PORT (with USER:PASSWORD@ before HOST if the proxy asks for them)\n"
    )
    # serve in a process of its own: it installs its log handler on the process's stderr
    serve = [sys.executable, "-c", "import sys; from router.cli import main; sys.exit(main())"]
    started = subprocess.run(
        [*serve, "serve", "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert started.returncode == 1
    assert "cannot start: HOTLINE400_CRM_PROXY: 'socks5://ops:***@" in started.stderr


@pytest.mark.parametrize(
    "value",
    [
        "http://10.0.0.8:3128",
        "https://proxy.example.net:8443/",
        "http://ops:p%40ss@[fd00::8]:3128",
    ],
)
def test_crm_proxy_takes_an_http_or_https_url_with_host_and_port(
    tmp_path: Path, value: str
) -> None:
    (tmp_path / "router.yaml").write_text(f"crm_proxy: {value}\n", encoding="utf-8")
    assert load_settings(tmp_path).crm_proxy == value


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("socks5://10.0.0.8:1080", "'socks5://10.0.0.8:1080'"),
        ("http://10.0.0.8", "'http://10.0.0.8'"),
        ("10.0.0.8:3128", "'10.0.0.8:3128'"),
        ("http://:3128", "'http://:3128'"),
        ("http://10.0.0.8:3128/cgi?x=1", "'http://10.0.0.8:3128/cgi?x=1'"),
        ("http://ops:s3cret@10.0.0.8:99999", "'http://ops:***@10.0.0.8:99999'"),
    ],
)
def test_hotline400_check_names_the_file_line_and_field_of_a_bad_crm_proxy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, shown: str
) -> None:
    """The error names the file, the line and the field, and never shows the password."""
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    path = config / "router.yaml"
    line = len(path.read_text(encoding="utf-8").splitlines()) + 1
    with path.open("a", encoding="utf-8") as settings:
        settings.write(f"crm_proxy: {value}\n")
    assert main(["check", "--config", str(config)]) == 1
    assert f"{path}:{line} crm_proxy: {shown} is not http://HOST:PORT or https://HOST:PORT" in (
        capsys.readouterr().out
    )


def test_check_refuses_a_crm_url_on_loopback_behind_a_proxy_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The proxy loosens nothing: `check` judges crm.url as without one."""
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    with (config / "router.yaml").open("a", encoding="utf-8") as settings:
        settings.write("crm_proxy: http://10.0.0.8:3128\n")
    plan = config / "plans" / "4008207788.yaml"
    text = plan.read_text(encoding="utf-8")
    plan.write_text(
        text.replace("https://crm.lanhua.example", "http://127.0.0.1:8080"), encoding="utf-8"
    )
    assert main(["check", "--config", str(config), "--today", "2026-06-01"]) == 1
    assert " crm.url: 127.0.0.1 is not a public address" in capsys.readouterr().out
