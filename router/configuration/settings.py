"""config/router.yaml: the daemon's own settings, validated like plans (file, line, field).

Relative paths in router.yaml resolve against the current directory, as an admin running
`hotline400 serve` from a deployment directory expects.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from dialplan.errors import ConfigError, Problem
from dialplan.validation import IanaZone, problems_from_validation
from dialplan.yaml_source import read_config_text, read_yaml
from rating.tariff import DEFAULT_TIMEZONE
from router.monitoring.logs import CallLines
from router.storage.store_url import parse_store_url, redacted

ROUTER_FILE = "router.yaml"
CRM_PROXY_ENV = "HOTLINE400_CRM_PROXY"
"""The whole `crm_proxy` URL, its password included, from the service's environment."""


def parse_listen(value: str) -> tuple[str, int]:
    """'127.0.0.1:4573' or '[::1]:4573' -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise ValueError(f"{value} is not HOST:PORT")
    return host.strip("[]"), int(port)


def is_proxy_url(value: str) -> bool:
    """An HTTP proxy's address as httpx takes it: the scheme, host and port, no more."""
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:  # not a number, or beyond 65535
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and bool(port)
        and parts.path in ("", "/")
        and not parts.query
        and not parts.fragment
    )


class PinGuardSettings(BaseModel):
    """Refusing callers who guess a 400 number's PIN over many calls (the plan's `attempts`
    limit one call only). Counted per caller and 400 number through the store, so the
    routers sharing it count together; a withheld caller ID is one shared caller."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_failed_calls: int = Field(
        5,
        ge=0,
        description="failed PIN calls of one caller to one number within `window` after "
        "which the caller is refused before the prompt; 0 turns the guard off",
    )
    window: float = Field(3600.0, gt=0, description="seconds the failed calls are counted over")
    block: float = Field(
        3600.0, gt=0, description="seconds a caller is refused after reaching the threshold"
    )
    check_workers: int = Field(
        1,
        ge=1,
        le=64,
        description="threads checking entered PINs against their hash at once (scrypt, some "
        "30 ms of a core each): the most of the router's cores a flood of wrong PINs from "
        "ever new caller IDs can take from the other calls",
    )
    max_waiting_checks: int = Field(
        64,
        ge=0,
        le=100_000,
        description="entered PINs waiting for a check thread; an entry beyond them is not "
        "checked: the caller's attempt is spent, nothing is counted against the caller",
    )


class RouterSettings(BaseModel):
    """Everything the daemon needs besides the plans."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = Field("127.0.0.1:4573", description="FastAGI address, HOST:PORT")
    allowed_peers: list[str] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="networks Asterisk servers connect from; others are closed at once",
    )
    dial_template: str = Field(
        "PJSIP/{number}@carrier", description="Dial string; {number} is the destination"
    )
    header_timeout: float = Field(5.0, gt=0, le=60, description="seconds to read the agi_ block")
    header_max_bytes: int = Field(65536, ge=1024, le=1048576)
    command_timeout: float = Field(
        120.0,
        gt=0,
        le=3600,
        description="seconds Asterisk has to answer an AGI command other than Dial (the "
        "longest prompt or announcement must fit; GET DATA also has its own wait for each "
        "key); a peer silent longer loses the call",
    )
    drain_timeout: float = Field(30.0, ge=0, description="seconds calls may finish on SIGTERM")
    store_timeout: float = Field(
        5.0,
        gt=0,
        le=60,
        description="seconds a call waits for the store in all, however many times it asks "
        "(PostgreSQL's connect and statement timeout, SQLite's busy timeout); then it is "
        "routed as when the store is down",
    )
    database: str = Field(
        "var/hotline400.db", description="SQLite file (WAL mode), the store when `store` is unset"
    )
    store: str | None = Field(
        None,
        description="sqlite:///PATH or postgresql://USER@HOST/DB; HOTLINE400_STORE overrides it",
    )
    router_name: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="this router's name in a shared store (default HOSTNAME:PORT)",
    )
    spool_dir: str = Field("var/spool", description="journal of CDR writes the database refused")
    cdr_batch_interval: float = Field(
        0.25,
        gt=0,
        le=5,
        description="seconds the CDR writer gathers writes after the first before committing "
        "them in one transaction: a commit costs as much as writing several calls, and what is "
        "gathered is lost if the process is killed",
    )
    timezone: IanaZone = Field(
        DEFAULT_TIMEZONE,
        description="the billing time zone, named here only: the days and months of usage "
        "counters, caps, rate periods, the ledger and bills, and the router's clock",
    )
    watch_plans: bool = Field(True, description="reload plans when their files change")
    metrics_listen: str | None = Field(
        "127.0.0.1:9400", description="HOST:PORT serving /metrics to Prometheus; null turns it off"
    )
    event_loop: Literal["auto", "asyncio", "uvloop"] = Field(
        "auto",
        description="auto: uvloop when it is installed (pip install 'hotline400[uvloop]'; "
        "it spends less CPU per call), else asyncio's loop; uvloop: the same, with a warning "
        "when it is not installed; asyncio: asyncio's loop whatever is installed",
    )
    numbers_tick: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="seconds between runs of the numbers' time-driven transitions (expired "
        "reservations, reviews, notices, freezes, keeping months, arrears); several routers "
        "may run them at once",
    )
    status_refresh: float = Field(
        2.0,
        gt=0,
        le=60,
        description="seconds between reads of the planned numbers' statuses in the inventory: "
        "a suspension, arrears, a cancellation or a freeze counts within this on every router",
    )
    balance_refresh: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="seconds between reads of every prepaid balance for the low-balance gauge "
        "(top-ups, fees and other routers' calls move balances without a call here)",
    )
    console_excel_calls: int = Field(
        50_000,
        ge=1,
        le=10_000_000,
        description="most calls the console's Excel export of a search holds: a workbook is "
        "written whole before its first byte is sent, which for more calls takes longer than "
        "a reverse proxy waits; beyond it the console offers the CSV (sent as it is read) and "
        "`hotline400 cdr --format xlsx`",
    )
    log_format: Literal["logfmt", "json"] = "logfmt"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_calls: CallLines = Field(
        "unanswered",
        description="the per-call INFO line: for every call (all), for the calls nobody "
        "answered (unanswered: refused, blocked, busy, not answered, failed, what an operator "
        "looks into), or none; every call is in the CDRs whatever this says. The line costs "
        "about a tenth of the router's CPU for a plain answered call",
    )
    mask_caller_numbers: bool = Field(
        True, description="false writes full caller numbers (personal data) into the logs"
    )
    ami_host: str | None = Field(None, description="Asterisk manager interface; null: no AMI link")
    ami_port: int = Field(5038, ge=1, le=65535)
    ami_username: str = "hotline400"
    ami_secret: str | None = Field(
        None, description="better given as HOTLINE400_AMI_SECRET in the environment"
    )
    ami_reconnect_max: float = Field(30.0, gt=0, description="longest wait between reconnects")
    ami_read_interval: float = Field(
        0.05,
        ge=0,
        le=1,
        description="seconds the AMI socket is left unread after a read, so that events come "
        "in batches instead of one wake-up each (0: read every event as it comes)",
    )
    adopt_cdr_window: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="seconds to wait for Asterisk's Cdr record of a call left in progress "
        "that Asterisk no longer has (at start, and when the AMI link is back after a loss), "
        "before closing it as interrupted",
    )
    adopt_login_wait: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="at start, seconds to wait for the AMI link before closing the calls "
        "left in progress as interrupted without asking Asterisk",
    )
    adopt_calls_of: list[str] = Field(
        default_factory=list,
        description="router_name of routers that will not come back: this router adopts "
        "their calls left in progress too, as it starts",
    )
    lease_heartbeat: float = Field(
        5.0,
        gt=0,
        le=600,
        description="seconds between renewals of this router's lease on its router_name in "
        "the store (router.lease)",
    )
    lease_timeout: float = Field(
        15.0,
        gt=0,
        le=3600,
        description="seconds a lease lasts unrenewed: a router of the same name that died "
        "holds its name that long, then the next one takes it over and adopts its calls; at "
        "least twice lease_heartbeat",
    )
    pin_guard: PinGuardSettings = Field(
        default_factory=PinGuardSettings,
        description="refuse a caller after repeated failed PIN calls (PIN guessing)",
    )
    sounds_dir: str | None = Field(
        None,
        description="Asterisk's sounds directory (e.g. /var/lib/asterisk/sounds): `check` "
        "then verifies every prompt of every plan exists in each language the plan uses",
    )
    recordings_dir: str = Field(
        "/var/spool/asterisk/monitor/hotline400",
        pattern=r"^/[A-Za-z0-9_./-]*$",
        description="where Asterisk writes call recordings (MixMonitor), an absolute path on "
        "the Asterisk host; the console and `recordings purge` read the same directory",
    )
    recording_retention_days: int = Field(
        365,
        ge=1,
        le=36500,
        description="days a recording is kept at least, unless its account in tariffs.yaml "
        "keeps it longer or shorter (recording_retention_days there)",
    )
    low_balance_webhook: str | None = Field(
        None,
        pattern=r"^https?://",
        description="URL that receives a JSON POST when a prepaid balance falls below its warning",
    )
    low_balance_webhook_retry_for: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="seconds a low-balance warning the webhook did not take is tried again for, "
        "before it is kept in spool_dir/low_balance.undelivered for `hotline400 low-balance "
        "replay`",
    )
    low_balance_webhook_secret_env: str | None = Field(
        None,
        pattern=r"^[A-Z][A-Z0-9_]{0,63}$",
        description="environment variable holding the key the low-balance webhook's POSTs are "
        "signed with (X-Hotline400-Signature, as CRM events are); none: they go unsigned",
    )
    low_balance_webhook_backoff: float = Field(
        1.0,
        gt=0,
        le=60,
        description="seconds before a low-balance webhook's first retry, doubled at each next",
    )
    crm_allowed_networks: list[str] = Field(
        default_factory=list,
        description="networks besides the public Internet that plans' crm.url may point to "
        "(an on-premises CRM, e.g. 10.20.0.0/16); loopback, link-local and private addresses "
        "are refused unless listed here",
    )
    crm_proxy: str | None = Field(
        None,
        description="HTTP proxy CRM events go through, http://HOST:PORT or https://HOST:PORT "
        "(USER@ before HOST if it asks for a user; its password, or the whole URL, in "
        "HOTLINE400_CRM_PROXY, which wins), for a router that reaches the Internet only so; "
        "the router still checks the CRM's addresses first, and HTTP(S)_PROXY of the "
        "environment is never used",
    )
    webhook_queue: int = Field(
        10000,
        ge=10,
        le=1_000_000,
        description="CRM events waiting for delivery at most; beyond it an event is kept as "
        "undelivered at once (calls never wait for a CRM)",
    )
    webhook_timeout: float = Field(5.0, gt=0, le=60, description="seconds one CRM POST may take")
    webhook_attempts: int = Field(
        5, ge=1, le=20, description="POSTs of one event before it is kept as undelivered"
    )
    webhook_backoff: float = Field(
        1.0, gt=0, le=300, description="seconds before the first retry, doubled at each next one"
    )
    webhook_workers: int = Field(4, ge=1, le=64, description="CRM POSTs under way at once")
    sms_gateway: str | None = Field(
        None,
        pattern=r"^https?://",
        description="HTTP SMS gateway that receives {to, text} as a JSON POST; null: text "
        "messages are only logged",
    )
    sms_token_env: str = Field(
        "HOTLINE400_SMS_TOKEN",
        pattern=r"^[A-Z][A-Z0-9_]{0,63}$",
        description="environment variable holding the gateway's bearer token (if it needs one)",
    )
    sms_per_number: int = Field(
        5,
        ge=1,
        le=1000,
        description="text messages of one kind (missed call, low balance) to one mobile per "
        "sms_window at most",
    )
    sms_window: float = Field(3600.0, gt=0, le=86400, description="seconds of sms_per_number")
    sms_timeout: float = Field(5.0, gt=0, le=60, description="seconds one gateway POST may take")
    sms_retry_for: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="seconds a text message the gateway did not take is tried again for, "
        "before it is kept in spool_dir/sms.undelivered for `hotline400 sms replay`",
    )
    sms_backoff: float = Field(
        1.0, gt=0, le=60, description="seconds before an SMS's first retry, doubled at each next"
    )

    @field_validator("listen", "metrics_listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parse_listen(value)
        except ValueError:
            raise PydanticCustomError(
                "listen", "{value} is not HOST:PORT", {"value": repr(value)}
            ) from None
        return value

    @field_validator("store")
    @classmethod
    def _store(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_store_url(value)
            except ValueError as error:
                raise PydanticCustomError("store", "{reason}", {"reason": str(error)}) from None
        return value

    @field_validator("lease_timeout")
    @classmethod
    def _lease_timeout(cls, value: float, info: ValidationInfo) -> float:
        """A lease must outlast a late heartbeat, or a busy router would lose its name."""
        heartbeat = info.data.get("lease_heartbeat")
        if heartbeat is not None and value < 2 * heartbeat:
            raise PydanticCustomError(
                "lease_timeout",
                "{value} is less than twice lease_heartbeat ({heartbeat})",
                {"value": value, "heartbeat": heartbeat},
            )
        return value

    @field_validator("allowed_peers", "crm_allowed_networks")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise PydanticCustomError(
                    "network", "{value} is not an address or network", {"value": repr(value)}
                ) from None
        return values

    @field_validator("crm_proxy")
    @classmethod
    def _crm_proxy(cls, value: str | None) -> str | None:
        if value is not None and not is_proxy_url(value):
            raise PydanticCustomError(
                "crm_proxy",
                "{value} is not http://HOST:PORT or https://HOST:PORT (with USER:PASSWORD@ "
                "before HOST if the proxy asks for them)",
                {"value": repr(redacted(value))},
            )
        return value

    @field_validator("dial_template")
    @classmethod
    def _template(cls, value: str) -> str:
        if "{number}" not in value or any(c in value for c in ',|\r\n"'):
            raise PydanticCustomError(
                "dial_template",
                "must contain {number} and no comma, pipe, quote or line break",
            )
        return value

    def zone(self) -> ZoneInfo:
        """The billing time zone, passed down to everything that reads a day or a month."""
        return ZoneInfo(self.timezone)

    def crm_proxy_url(self) -> str | None:
        """The proxy CRM events go through: CRM_PROXY_ENV wins over router.yaml's
        `crm_proxy`, so a proxy's password stays out of router.yaml (deployment.md:
        secrets come from the service's environment)."""
        value = os.environ.get(CRM_PROXY_ENV)
        if not value:
            return self.crm_proxy
        if not is_proxy_url(value):
            raise ValueError(
                f"{CRM_PROXY_ENV}: {redacted(value)!r} is not http://HOST:PORT or "
                "https://HOST:PORT (with USER:PASSWORD@ before HOST if the proxy asks for them)"
            )
        return value

    def ami_password(self) -> str | None:
        """The AMI secret: the environment wins over router.yaml."""
        return os.environ.get("HOTLINE400_AMI_SECRET") or self.ami_secret

    def peer_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(value, strict=False) for value in self.allowed_peers]

    def crm_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """The private networks CRM events may go to, besides public addresses."""
        return [ipaddress.ip_network(value, strict=False) for value in self.crm_allowed_networks]


def load_settings(config_dir: str | Path) -> RouterSettings:
    """router.yaml of a config directory; defaults when the file does not exist."""
    path = Path(config_dir) / ROUTER_FILE
    if not path.exists():
        return RouterSettings()
    text = read_config_text(path)  # refused like a plan file: never a traceback
    source = read_yaml(str(path), text)
    problems: list[Problem] = list(source.problems)
    data: Any = source.data if source.data is not None else {}
    if not isinstance(data, dict):
        problems.append(source.problem((), "router.yaml is a mapping of settings"))
        raise ConfigError(problems)
    try:
        settings = RouterSettings.model_validate(data)
    except ValidationError as error:
        found = [*problems, *problems_from_validation(source, error, RouterSettings)]
        raise ConfigError(sorted(found, key=lambda p: p.line)) from None
    if problems:
        raise ConfigError(problems)
    return settings
