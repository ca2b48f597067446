"""`hotline400 callgen` loads a real router with a mix of call behaviours and reports on it.

The mix is played exactly (20 calls at 50/25/25 are 10, 5 and 5 calls), each behaviour
shows in the outcome the router leaves on the channel and in the CDRs it stores, and the
report carries throughput and latency figures. Time is virtual unless a test says so.
"""

import asyncio
import itertools
import signal
import socket
import sys
from collections import Counter
from pathlib import Path

import pytest

from router.cli import main
from router.daemon import Daemon
from router.simulation.callgen import (
    CallgenReport,
    CallgenSpec,
    apportion,
    build_calls,
    parse_mix,
    read_callers,
    run_callgen,
    spread,
    wrong_pins_per_caller,
)
from router.storage.cdr import CDR
from router.storage.sqlite import SQLiteStore
from tests.conftest import E2E_CONFIG, PROCESS_START_S, running_router

PLANS = sorted(path.stem for path in (E2E_CONFIG / "plans").glob("*.yaml"))

DIRECT = "4000000001"
"""Dials 13800000011 only: each behaviour ends the call with its own outcome."""
BUSY_FORWARD = "4000000002"
"""Dials 13800000021, forwards to 13800000011 on busy."""
PIN_LINE = "4000000006"
"""Asks every caller for the PIN 2468 (three attempts, up to 6 digits), then dials 13800000011."""


def load(router: Daemon, numbers: list[str], mix: str, calls: int, **fields: object) -> CallgenSpec:
    return CallgenSpec(
        host=router.host,
        port=router.port,
        calls=calls,
        numbers=numbers,
        mix=parse_mix(mix),
        **{"concurrency": 5, **fields},  # type: ignore[arg-type]
    )


async def stored_cdrs(database: str) -> list[CDR]:
    store = SQLiteStore(database)
    await store.open()
    try:
        return await store.query_cdrs()
    finally:
        await store.close()


async def run_and_store(
    tmp_path: Path, numbers: list[str], mix: str, calls: int, **fields: object
) -> tuple[CallgenReport, list[CDR]]:
    """Run callgen against a fresh router; the CDRs once the router has stopped and flushed."""
    async with running_router(tmp_path) as router:
        report = await run_callgen(load(router, numbers, mix, calls, **fields))
        database = router.settings.database
    return report, await stored_cdrs(database)


# --- the mix ------------------------------------------------------------------------------


def test_a_mix_names_behaviours_with_percentages_summing_to_100() -> None:
    assert parse_mix("answer=70, busy=10,noanswer=15,hangup=5") == {
        "answer": 70,
        "busy": 10,
        "noanswer": 15,
        "hangup": 5,
    }
    assert parse_mix("busy=100") == {"busy": 100}
    assert parse_mix("answer=90,wrong_pin=10") == {"answer": 90, "wrong_pin": 10}


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("answer=70,busy=20", "sum to 90, not 100"),
        ("answer=50,ringing=50", "unknown behaviour 'ringing'"),
        ("answer=50,answer=50", "answer is given twice"),
        ("answer:100", "'answer:100' is not BEHAVIOUR=PERCENT"),
    ],
)
def test_a_wrong_mix_is_refused_with_the_reason(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_mix(text)


def test_calls_follow_the_mix_exactly_and_interleaved() -> None:
    mix = parse_mix("answer=50,busy=25,noanswer=25")
    order = list(spread(mix, 20))
    assert Counter(order) == {"answer": 10, "busy": 5, "noanswer": 5}
    assert Counter(order[:4]) == {"answer": 2, "busy": 1, "noanswer": 1}


def test_counts_that_do_not_divide_evenly_go_to_the_largest_remainders() -> None:
    mix = parse_mix("answer=70,busy=10,noanswer=15,hangup=5")
    assert apportion(mix, 7) == {"answer": 5, "busy": 1, "noanswer": 1, "hangup": 0}
    assert apportion(mix, 1000) == {"answer": 700, "busy": 100, "noanswer": 150, "hangup": 50}
    assert Counter(spread(mix, 7)) == {"answer": 5, "busy": 1, "noanswer": 1}


def test_every_number_gets_the_whole_mix_from_every_caller() -> None:
    spec = CallgenSpec(
        host="127.0.0.1",
        port=4573,
        calls=40,
        concurrency=1,
        numbers=[DIRECT, BUSY_FORWARD],
        callers=["053188889999", "13916012345", "02087654321", "01062345678", "anonymous"],
        mix=parse_mix("answer=50,busy=25,noanswer=25"),
    )
    calls = list(build_calls(spec))
    assert Counter((behaviour, call.dialled) for behaviour, call in calls) == {
        ("answer", DIRECT): 10,
        ("answer", BUSY_FORWARD): 10,
        ("busy", DIRECT): 5,
        ("busy", BUSY_FORWARD): 5,
        ("noanswer", DIRECT): 5,
        ("noanswer", BUSY_FORWARD): 5,
    }
    busy_to_direct = [c.caller_id for b, c in calls if (b, c.dialled) == ("busy", DIRECT)]
    assert sorted(busy_to_direct) == sorted(spec.callers)
    assert len({call.uniqueid for _, call in calls}) == 40


def test_a_callers_file_skips_blank_lines_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "callers.txt"
    path.write_text("# regulars\n053188889999\n\n  13916012345  \n#02087654321\n")
    assert read_callers(path) == ("053188889999", "13916012345")
    path.write_text("# nobody\n\n")
    with pytest.raises(ValueError, match="holds no caller IDs"):
        read_callers(path)


def test_callers_type_the_pin_they_were_given_and_wrong_pin_callers_another() -> None:
    spec = CallgenSpec(
        host="127.0.0.1",
        port=4573,
        calls=8,
        concurrency=1,
        numbers=[PIN_LINE, DIRECT],
        mix=parse_mix("answer=50,wrong_pin=50"),
        pins={PIN_LINE: "2468"},
    )
    entries = Counter((b, c.dialled, c.pin_entry) for b, c in build_calls(spec))
    assert entries == {
        ("answer", PIN_LINE, "2468#"): 2,
        ("wrong_pin", PIN_LINE, "3579#"): 2,  # every digit another: wrong, whatever the plan
        ("answer", DIRECT, None): 2,  # no PIN known: silence at a PIN prompt, as ever
        ("wrong_pin", DIRECT, None): 2,
    }


def test_a_run_knows_how_many_wrong_pins_one_caller_types_to_one_number() -> None:
    """What the router's PIN guard counts: wrong_pin calls of one caller to one number
    whose PIN was given (elsewhere they type nothing, which the guard does not count)."""

    def most(callers: int, pins: dict[str, str]) -> dict[str, int]:
        spec = CallgenSpec(
            host="127.0.0.1",
            port=4573,
            calls=100,
            concurrency=1,
            numbers=[PIN_LINE, DIRECT],
            callers=[f"1391601{n:04d}" for n in range(callers)],
            mix=parse_mix("answer=89,wrong_pin=11"),  # 11 calls: 6 to PIN_LINE, 5 to DIRECT
            pins=pins,
        )
        return wrong_pins_per_caller(spec)

    assert most(1, {PIN_LINE: "2468"}) == {PIN_LINE: 6}
    assert most(4, {PIN_LINE: "2468"}) == {PIN_LINE: 2}
    assert most(1, {}) == {}


@pytest.mark.parametrize(
    ("pins", "complaint"),
    [
        ({PIN_LINE: "24a8"}, "a PIN is 4 to 12 digits"),
        ({PIN_LINE: "246"}, "a PIN is 4 to 12 digits"),
        ({"4000000099": "2468"}, "--pin names 4000000099, which is not called"),
    ],
)
def test_a_pin_must_be_digits_for_a_number_called(pins: dict[str, str], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        CallgenSpec(host="127.0.0.1", port=4573, calls=1, concurrency=1, numbers=[PIN_LINE],
                    pins=pins)  # fmt: skip


# --- against the real router --------------------------------------------------------------


async def test_each_behaviour_of_the_mix_ends_as_its_own_outcome_on_a_direct_plan(
    tmp_path: Path,
) -> None:
    report, cdrs = await run_and_store(tmp_path, [DIRECT], "answer=50,busy=25,noanswer=25", 20)
    assert report.outcomes_by_behaviour == {
        "answer": {"answered": 10},
        "busy": {"busy": 5},
        "noanswer": {"noanswer": 5},
    }
    assert report.outcomes == {"answered": 10, "busy": 5, "noanswer": 5}
    assert (report.placed, report.error_count, report.ok) == (20, 0, True)
    assert Counter(cdr.legs[0].dial_status for cdr in cdrs) == {
        "ANSWER": 10,
        "BUSY": 5,
        "NOANSWER": 5,
    }


async def test_callers_given_the_pin_get_through_to_the_destination(tmp_path: Path) -> None:
    report, cdrs = await run_and_store(
        tmp_path, [PIN_LINE], "answer=50,busy=25,noanswer=25", 8, pins={PIN_LINE: "2468"}
    )
    assert report.outcomes_by_behaviour == {
        "answer": {"answered": 4},
        "busy": {"busy": 2},
        "noanswer": {"noanswer": 2},
    }
    assert (report.pin_asked, report.pin_refused, report.pin_unknown) == (8, 0, ())
    assert "pin            asked on 8 calls: 8 let through, 0 refused (pin_failed)" in (
        report.lines()
    )
    assert Counter(cdr.legs[0].dial_status for cdr in cdrs) == {
        "ANSWER": 4,
        "BUSY": 2,
        "NOANSWER": 2,
    }


async def test_wrong_pin_callers_are_refused_at_the_pin(tmp_path: Path) -> None:
    report, cdrs = await run_and_store(
        tmp_path, [PIN_LINE], "answer=50,wrong_pin=50", 8, pins={PIN_LINE: "2468"}
    )
    assert report.outcomes_by_behaviour == {
        "answer": {"answered": 4},
        "wrong_pin": {"pin_failed": 4},
    }
    assert (report.pin_asked, report.pin_refused) == (8, 4)
    assert Counter((cdr.outcome, cdr.note) for cdr in cdrs if not cdr.legs) == {
        ("pin_failed", "wrong PIN 3 times"): 4
    }


async def test_without_the_pin_every_caller_is_refused_at_the_pin_as_before(
    tmp_path: Path,
) -> None:
    report, _ = await run_and_store(tmp_path, [PIN_LINE, DIRECT], "answer=100", 6)
    assert report.outcomes == {"pin_failed": 3, "answered": 3}
    assert (report.pin_asked, report.pin_refused, report.pin_unknown) == (3, 3, (PIN_LINE,))
    assert report.lines()[-5:-3] == [  # before the errors and the two timings
        "pin            asked on 3 calls: 0 let through, 3 refused (pin_failed)",
        f"  no --pin for {PIN_LINE}: its callers typed nothing",
    ]


async def test_wrong_pin_callers_count_for_the_routers_pin_guard(tmp_path: Path) -> None:
    """One caller's failed PIN calls to a number: the router refuses its sixth before the
    prompt (pin_guard.max_failed_calls 5), whatever the caller would type."""
    report, _ = await run_and_store(
        tmp_path,
        [PIN_LINE],
        "wrong_pin=100",
        7,
        pins={PIN_LINE: "2468"},
        callers=["13916012345"],
        concurrency=1,
    )
    assert report.outcomes == {"pin_failed": 5, "blocked": 2}
    assert (report.pin_asked, report.pin_refused) == (5, 5)


async def test_the_report_carries_throughput_and_latency_figures(tmp_path: Path) -> None:
    report, _ = await run_and_store(tmp_path, [DIRECT], "answer=100", 20)
    assert report.calls_per_s > 0
    for figures in (report.first_command_s, report.wall_s):
        assert figures is not None
        assert 0 < figures.p50 <= figures.p95 <= figures.p99 <= figures.max < 5
    assert report.first_command_s.max <= report.wall_s.max  # type: ignore[union-attr]


async def test_busy_callers_reach_the_forward_on_a_plan_that_forwards_on_busy(
    tmp_path: Path,
) -> None:
    report, cdrs = await run_and_store(tmp_path, [BUSY_FORWARD], "busy=100", 6)
    assert report.outcomes == {"answered": 6}
    assert {tuple((leg.destination, leg.dial_status) for leg in cdr.legs) for cdr in cdrs} == {
        (("13800000021", "BUSY"), ("13800000011", "ANSWER"))
    }


async def test_hanging_up_callers_cancel_the_ringing_dial(tmp_path: Path) -> None:
    report, cdrs = await run_and_store(tmp_path, [DIRECT], "hangup=100", 4)
    assert report.outcomes == {"noanswer": 4}
    assert {(cdr.legs[0].dial_status, cdr.note) for cdr in cdrs} == {
        ("CANCEL", "caller hung up while ringing")
    }


async def test_numbers_and_callers_are_used_in_rotation(tmp_path: Path) -> None:
    callers = ("053188889999", "13916012345", "anonymous")
    _, cdrs = await run_and_store(
        tmp_path, [DIRECT, BUSY_FORWARD], "answer=100", 6, callers=callers
    )
    assert Counter(cdr.number for cdr in cdrs) == {DIRECT: 3, BUSY_FORWARD: 3}
    assert Counter(cdr.caller_raw for cdr in cdrs) == dict.fromkeys(callers, 2)


async def test_with_a_time_scale_the_calls_really_take_their_scaled_time(
    tmp_path: Path,
) -> None:
    report, _ = await run_and_store(tmp_path, [DIRECT], "answer=100", 4, time_scale=0.002)
    assert report.wall_s is not None
    assert report.wall_s.p50 >= (1.0 + 10.0) * 0.002  # shortest ring + shortest talk


# --- the command --------------------------------------------------------------------------


async def test_the_command_calls_every_plan_of_the_config_and_prints_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    callers = tmp_path / "callers.txt"
    callers.write_text("# one caller\n01062345678\n")
    async with running_router(tmp_path) as router:
        argv = ["callgen", "--config", str(E2E_CONFIG), "--target", f"127.0.0.1:{router.port}"]
        argv += ["--calls", str(2 * len(PLANS)), "--concurrency", "4", "--mix", "answer=100"]
        argv += ["--callers", str(callers)]
        code = await asyncio.to_thread(main, argv)
        database = router.settings.database
    output = capsys.readouterr().out
    assert code == 0
    cdrs = await stored_cdrs(database)
    assert Counter(cdr.number for cdr in cdrs) == {number: 2 for number in PLANS}
    assert {cdr.caller for cdr in cdrs} == {"01062345678"}
    lines = output.splitlines()
    assert lines[0].startswith(
        f"placed         {2 * len(PLANS)} calls to 127.0.0.1:{router.port} in "
    )
    assert "concurrency 4, time scale 0" in lines[0]
    # the PIN line hears silence, Beijing is screened out of the Guangdong line, the prepaid
    # line has no balance (arrears) and 4000000007 is suspended; the menu line takes its
    # default when nobody presses a key; the recorded lines answer after their notice, the
    # surveyed ones are asked for a score nobody gives
    assert lines[1] == "outcomes       answered 22, suspended 4, blocked 2, pin_failed 2"
    assert "errors         0" in lines
    assert lines[-2].startswith("first command  p50 ")
    assert lines[-1].startswith("call wall      p50 ")


async def test_the_command_types_the_pin_given_and_no_caller_types_a_wrong_one_unasked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --pin and the default mix every caller types the right PIN: wrong ones are a
    mix entry of their own, since they feed the router's PIN guard."""
    async with running_router(tmp_path) as router:
        argv = ["callgen", "--config", str(E2E_CONFIG), "--target", f"127.0.0.1:{router.port}"]
        argv += ["--calls", "20", "--concurrency", "4", "--number", PIN_LINE]
        argv += ["--pin", f"{PIN_LINE}=2468"]
        code = await asyncio.to_thread(main, argv)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert code == 0
    assert err == ""
    assert "pin_failed" not in lines[1]
    assert "pin            asked on 20 calls: 20 let through, 0 refused (pin_failed)" in lines


async def test_the_command_warns_when_its_wrong_pins_will_get_callers_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The router's PIN guard refuses a caller after 5 failed PIN calls to a number (the
    default of router.yaml's pin_guard): for an hour, so later runs meet it too."""
    callers = tmp_path / "callers.txt"
    callers.write_text("13916012345\n")
    async with running_router(tmp_path) as router:
        argv = ["callgen", "--config", str(E2E_CONFIG), "--target", f"127.0.0.1:{router.port}"]
        argv += ["--calls", "7", "--concurrency", "1", "--number", PIN_LINE, "--mix"]
        argv += ["wrong_pin=100", "--pin", f"{PIN_LINE}=2468", "--callers", str(callers)]
        code = await asyncio.to_thread(main, argv)
    out, err = capsys.readouterr()
    assert code == 0
    assert err == (
        f"warning: up to 7 wrong_pin calls of one caller to {PIN_LINE}: the router's "
        "pin_guard refuses a caller (blocked) after 5 failed PIN calls to a number within "
        "3600 s, for 3600 s; give more --callers, fewer wrong_pin, or run the router under "
        "test with pin_guard.max_failed_calls: 0\n"
    )
    assert "outcomes       pin_failed 5, blocked 2" in out


@pytest.mark.parametrize(
    ("pins", "complaint"),
    [
        (["4000000006"], "argument --pin: '4000000006' is not 400NUMBER=PIN"),
        (["123=2468"], "argument --pin: '123' is not a 400 number like 4006001234"),
        (["4000000006=24a8"], "argument --pin: '24a8': a PIN is 4 to 12 digits"),
        (["4000000006=2468", "400-000-0006=1357"], "argument --pin: 4000000006 is given twice"),
    ],
)
def test_the_command_refuses_a_pin_it_cannot_type(
    pins: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["callgen", "--target", "127.0.0.1:4573", "--calls", "1", "--concurrency", "1"]
    for pin in pins:
        argv += ["--pin", pin]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err


def test_the_command_fails_when_nothing_listens_at_the_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once the probe is closed
    """The run's first calls all refused: one line naming the target, not a report of
    failed calls (a typo in the port, or a router not started)."""
    argv = ["callgen", "--target", f"127.0.0.1:{port}", "--calls", "30", "--concurrency", "2"]
    assert main([*argv, "--number", DIRECT]) == 1
    assert capsys.readouterr() == (
        "",
        f"callgen: nothing accepts connections at 127.0.0.1:{port} (connection refused)\n",
    )


async def test_a_router_that_stops_listening_after_the_first_call_still_gets_its_report() -> None:
    """Only the very first calls all failing to connect is a target where nothing listens:
    once a call got through, the calls refused after it are the run's errors, reported."""

    async def take_one_then_go(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.close()  # nothing listens from now on: the router dies with its first call
        writer.close()

    server = await asyncio.start_server(take_one_then_go, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    spec = CallgenSpec(host="127.0.0.1", port=port, calls=3, concurrency=1, numbers=[DIRECT])
    report = await run_callgen(spec)
    await server.wait_closed()
    assert (report.placed, report.error_count) == (3, 3)
    assert report.errors.most_common(1)[0][1] == 2
    assert next(iter(report.errors.most_common(1)))[0].startswith("connect failed")


def test_the_command_refuses_a_mix_that_does_not_sum_to_100(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["callgen", "--target", "127.0.0.1:4573", "--calls", "1", "--concurrency", "1",
              "--mix", "answer=99"])  # fmt: skip
    assert exit_info.value.code == 2
    assert "sum to 99, not 100" in capsys.readouterr().err


async def test_ctrl_c_stops_the_run_and_prints_the_report_of_the_calls_that_ended(
    tmp_path: Path,
) -> None:
    """Even a run of the largest size: its calls are made as they are placed, so it starts
    at once, holds only the calls in progress and stops when asked."""
    async with running_router(tmp_path) as router:
        callgen = await asyncio.create_subprocess_exec(
            sys.executable,
            "-X",
            "faulthandler",  # SIGABRT prints where it stands, should it not stop
            "-m",
            "router.cli",
            "callgen",
            "--config",
            str(E2E_CONFIG),
            "--target",
            f"{router.host}:{router.port}",
            "--calls",
            "10000000",
            "--concurrency",
            "2",
            "--number",
            DIRECT,
            "--mix",
            "answer=100",
            "--time-scale",
            "0.01",  # about a second a call: the run would take minutes
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        # until calls are under way: the command first loads the router's modules, which
        # takes half a minute on a loaded machine
        async with asyncio.timeout(PROCESS_START_S):
            while len(await router.store.query_cdrs()) < 3:
                assert callgen.returncode is None, await callgen.communicate()
                await asyncio.sleep(0.1)
        callgen.send_signal(signal.SIGINT)
        ended = asyncio.ensure_future(callgen.communicate())
        try:
            out, err = await asyncio.wait_for(asyncio.shield(ended), 60)
        except TimeoutError:
            callgen.send_signal(signal.SIGABRT)
            out, err = await ended
            pytest.fail(f"callgen still running 60 s after SIGINT:\n{out.decode()}{err.decode()}")
    lines = out.decode().splitlines()
    assert callgen.returncode == 130, err.decode()
    assert err.decode() == ""
    placed = int(lines[0].split()[2])
    assert 0 < placed < 100
    assert lines[0] == (
        f"interrupted    after {placed} of 10000000 calls; the figures are of those calls"
    )
    assert lines[1].startswith(f"placed         {placed} calls to {router.host}:{router.port}")
    assert lines[2] == f"outcomes       answered {placed}"


def test_a_runs_calls_are_made_one_by_one_as_they_are_placed() -> None:
    spec = CallgenSpec(
        host="127.0.0.1", port=4573, calls=10_000_000, concurrency=1, numbers=[DIRECT]
    )
    first = list(itertools.islice(build_calls(spec), 3))
    assert [call.uniqueid.rpartition(".")[2] for _, call in first] == ["1", "2", "3"]
