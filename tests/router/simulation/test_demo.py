"""`hotline400 demo` routes its tour through the example plans shipped in the package, from
any directory, into a data directory of its own, and says where the records are. It is a
newcomer's first command: what it shows works, and it warns of nothing that is not wrong."""

import os
import re
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from router.cli import main
from tests.conftest import REPO

CONFIG = REPO / "config"
TOUR_OUTCOMES = [
    "answered",
    "answered",
    "answered",
    "blocked",
    "answered",
    "answered",
    "answered",
    "answered",
    "rejected",
    "blocked",
    "answered",
    "blocked",
    "answered",
    "answered",
    "pin_failed",
]

Capture = pytest.CaptureFixture[str]
DEMO = (sys.executable, "-m", "router.cli", "demo")
SHOP = "4008207788"
SHOP_CRM = "https://crm.lanhua.example/hotline400/events"


def outcomes(out: str) -> list[str]:
    return [line.rsplit("=> ", 1)[1] for line in out.splitlines() if "=> " in line]


def calls(out: str) -> dict[int, list[str]]:
    """The tour's calls as the demo prints them: by number, the lines below each title."""
    found: dict[int, list[str]] = {}
    for line in out.splitlines():
        if title := re.match(r"^ ?(\d+)\. ", line):
            found[int(title[1])] = []
        elif found and line.startswith("    "):
            found[max(found)].append(line.strip())
    return found


def test_the_demo_runs_anywhere_and_leaves_its_records_in_its_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./config here: the demo brings its own
    assert main(["demo", "--data", "run1"]) == 0
    out = capsys.readouterr().out
    assert outcomes(out) == TOUR_OUTCOMES
    assert "rule national-sales: 01088887777 BUSY > 053188886667 ANSWER => answered" in out
    assert "rule duty-doctor (PIN asked): 13926005678 NOANSWER > 13926001234 ANSWER" in out
    assert "15 calls placed, 0 failed." in out
    data = tmp_path / "run1"
    assert f"The records are in {data}. Read them with:" in out
    assert f"  hotline400 cdr --config {data / 'config'}" in out
    with sqlite3.connect(data / "hotline400.db") as db:
        stored = db.execute("SELECT outcome, count(*) FROM cdrs GROUP BY outcome").fetchall()
    assert dict(stored) == {"answered": 10, "blocked": 3, "rejected": 1, "pin_failed": 1}
    with sqlite3.connect(data / "hotline400.db") as db:
        billed = dict(db.execute("SELECT rule, max(billable_seconds) FROM cdrs GROUP BY rule"))
    # Every destination talks 95 s after 6 s of ringing. Behind a menu or a PIN the router
    # answered first: neither the prompts nor the ring are billed (the Dial's U() hook
    # stamps the destination's answer, without an AMI link).
    assert (billed["shandong-factory"], billed["order-hotline"], billed["duty-doctor"]) == (
        95,
        95,
        95,
    )
    assert not (tmp_path / "var").exists()

    assert main(["cdr", "--config", str(data / "config"), "--format", "csv"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + 15


def test_only_a_call_asked_for_its_pin_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    """A menu's key or the survey's score is read like a PIN entry, one key instead of
    several: neither is a PIN asked."""
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--data", "run"]) == 0
    routes = [line.strip() for line in capsys.readouterr().out.splitlines() if "=> " in line]
    assert routes[0] == "rule shandong-factory: 053188886666 ANSWER => answered"  # surveyed
    assert routes[4] == "rule order-hotline: 02155556666 ANSWER => answered"  # a menu
    assert [index for index, route in enumerate(routes) if "(PIN asked)" in route] == [
        12,
        13,
        14,
    ]


def test_each_run_starts_from_fresh_books(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    balances = []
    for _ in range(2):
        assert main(["demo", "--config", str(CONFIG)]) == 0
        out = capsys.readouterr().out
        balances.append([line for line in out.splitlines() if "charged call(s)" in line])
    assert balances[0] == balances[1]
    assert all("(postpaid)" in line for line in balances[0])
    assert len(list(tmp_path.glob("hotline400-demo-*"))) == 2


def test_a_missing_configuration_is_one_line_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--config", "/nonexistent", "--data", "run"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "demo: no configuration directory /nonexistent\n"
    assert list(tmp_path.iterdir()) == []


def test_a_broken_router_file_is_one_line_naming_file_line_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    config = Path(shutil.copytree(CONFIG, tmp_path / "config"))
    router = config / "router.yaml"
    router.write_text(router.read_text().replace("drain_timeout: 30", "drain_timeout: soon"))
    assert main(["demo", "--config", str(config), "--data", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"demo: {router}:")
    assert "drain_timeout" in err
    assert not (tmp_path / "run").exists()


def test_a_newcomers_first_run_warns_of_nothing(tmp_path: Path) -> None:
    """The README's first command, as a newcomer runs it: from an empty directory, under a
    desktop's modest open-files limit, with no CRM key in the environment. The demo places
    its calls one at a time, and its web shop's CRM is its own: nothing to warn of."""
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {name: value for name, value in os.environ.items() if name != "LANHUA_CRM_KEY"}

    def modest_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    done = subprocess.run(
        DEMO,
        cwd=empty,
        env={**env, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path)},
        preexec_fn=modest_limit,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "WARNING" not in done.stdout
    assert outcomes(done.stdout) == TOUR_OUTCOMES
    assert "15 calls placed, 0 failed." in done.stdout
    assert list(empty.iterdir()) == []


def test_the_web_shops_screen_pops_reach_the_demos_own_crm_signed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Capture,
) -> None:
    """The shop's plan sends its calls' events to its CRM on the Internet, signed with a key
    the environment holds. The demo's copy of the plan sends them to a CRM the demo runs on
    loopback, which its router.yaml allows, signed with a key the demo makes up; that CRM
    checks each signature and tells which events it took; none goes to the shop's CRM."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LANHUA_CRM_KEY", raising=False)
    code = main(["demo", "--data", "run"])
    out = capsys.readouterr().out
    assert code == 0, out  # warnings: test_a_newcomers_first_run_warns_of_nothing
    crm = re.search(
        rf"^CRM events of {SHOP} go to a CRM the demo runs at (\S+), in place of {SHOP_CRM}$",
        out,
        re.M,
    )
    assert crm is not None, out
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/events", crm[1])
    told = {
        index: line.removeprefix("CRM took ")
        for index, lines in calls(out).items()
        for line in lines
        if line.startswith("CRM took ")
    }
    assert told == {
        5: "call.arrived, call.answered, call.ended",
        6: "call.arrived, call.answered, call.ended",
        7: "call.arrived, call.answered, call.ended",
        8: "call.arrived, call.answered, call.ended",
        9: "call.arrived, call.ended",
        10: "call.arrived, call.ended",
    }
    assert "16 CRM events delivered, each signature checked; 0 not delivered." in out
    data = tmp_path / "run"
    assert not (data / "spool" / "webhooks.undelivered").exists()
    plan = (data / "config" / "plans" / f"{SHOP}.yaml").read_text(encoding="utf-8")
    assert f"url: {crm[1]}" in plan
    assert main(["check", "--config", str(data / "config")]) == 0
    capsys.readouterr()
    assert main(["webhooks", "list", "--config", str(data / "config")]) == 0
    assert capsys.readouterr().out.startswith("0 undelivered event(s)")


def test_the_demo_texts_no_one_posts_no_warning_and_leaves_asterisk_alone(
    tmp_path: Path, capsys: Capture
) -> None:
    """A configuration toured with --config may be a production one: its calls are the
    demo's, so its router links to no Asterisk and sends no text message or low-balance
    warning anywhere, whatever router.yaml names."""
    with socket.create_server(("127.0.0.1", 0)) as asterisk:
        asterisk.setblocking(False)
        port = asterisk.getsockname()[1]
        config = Path(shutil.copytree(CONFIG, tmp_path / "config"))
        with (config / "router.yaml").open("a", encoding="utf-8") as router:
            router.write(
                f"ami_host: 127.0.0.1\nami_port: {port}\n"
                f"sms_gateway: http://127.0.0.1:{port}/send\n"
                f"low_balance_webhook: http://127.0.0.1:{port}/low-balance\n"
            )
        assert main(["demo", "--config", str(config), "--data", str(tmp_path / "run")]) == 0
        assert "15 calls placed, 0 failed." in capsys.readouterr().out
        with pytest.raises(BlockingIOError):
            asterisk.accept()  # nothing connected
    copy = (tmp_path / "run" / "config" / "router.yaml").read_text(encoding="utf-8")
    assert not re.findall(r"^(ami_host|sms_gateway|low_balance_webhook):", copy, re.M)


def test_a_store_named_in_the_environment_is_refused_not_written_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    """HOTLINE400_STORE names the store every command reads, a production one maybe: the
    demo would write its calls there, and the commands it prints would read them there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOTLINE400_STORE", "postgresql://hotline400@db.example/hotline400")
    assert main(["demo", "--data", "run"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "demo: HOTLINE400_STORE names a store, and the demo keeps its records in a SQLite "
        "file of its own that commands run with it set would not read; run the demo "
        "without it: env -u HOTLINE400_STORE hotline400 demo\n"
    )
    assert list(tmp_path.iterdir()) == []
