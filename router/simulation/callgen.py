"""Traffic for a FastAGI router: many simulated Asterisk calls with a chosen mix of behaviours.

What SIPp is to a SIP server, this is to the router: it plays Asterisk's side
(router/simulation/asterisk_agi.py) for N calls at a given concurrency and reports what an operator
sizes a deployment by: the outcome the router left on each channel (HOTLINE_STATUS), the
calls that failed on the wire, calls per second, and the routing-decision latency as
Asterisk sees it (environment sent -> first command back).

The mix says how the far side behaves, per call:
- answer: every destination dialled answers after a few seconds' ring and talks a while;
- busy: the first destination dialled is busy, any forward answers;
- noanswer: every destination rings out;
- hangup: the caller hangs up while the first Dial still rings;
- wrong_pin: the caller types a wrong PIN at every PIN prompt (the one given for the number
  with every digit changed); every destination answers.
Callers type the PIN given for a number (`pins`; a plan keeps only its hash) at its PIN
prompt, ended by `#`; where no PIN is given they type nothing, and the router refuses
them at the PIN (pin_failed), wrong_pin callers too. Calls get their behaviour by exact
proportions, evenly interleaved, so a run of 20 calls at answer=50,busy=25,noanswer=25
always holds 10, 5 and 5 of them: a load test repeats.
Numbers and callers rotate so that every number sees the whole mix from every caller.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import re
import secrets
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from dialplan.pin import MAX_PIN_DIGITS, MIN_PIN_DIGITS, PIN_DIGITS
from router.call.channel_contract import ChannelVariable
from router.call.channel_contract import Outcome as Ending
from router.simulation.asterisk_agi import (
    CallerHangup,
    CallResult,
    Outcome,
    SimulatedCall,
    run_call,
    split_agi_args,
)

Behaviour = Literal["answer", "busy", "noanswer", "hangup", "wrong_pin"]
BEHAVIOURS: tuple[Behaviour, ...] = get_args(Behaviour)
DEFAULT_MIX: dict[Behaviour, int] = {"answer": 70, "busy": 10, "noanswer": 15, "hangup": 5}
"""The mix unless one is given; no wrong_pin: wrong PINs feed the router's PIN guard, so a
run has them only when its mix asks."""

DEFAULT_CALLERS = (
    "053188889999",  # Jinan fixed line
    "01062345678",  # Beijing fixed line
    "13916012345",  # Shanghai mobile
    "02087654321",  # Guangzhou fixed line
    "+8613800138000",  # Beijing mobile, international format
    "075588886666",  # Shenzhen fixed line
    "18612345678",  # Beijing mobile (China Unicom)
    "057188887777",  # Hangzhou fixed line
    "+85221234567",  # Hong Kong
    "anonymous",  # withheld
)

RING_S = (1.0, 4.0)
"""An answering destination rings this long: below any plan's ring timeout (>= 5 s)."""
TALK_S = (10.0, 90.0)
HANGUP_AFTER_S = (1.0, 4.0)
"""A hanging-up caller leaves this far into the first Dial, before any ring timeout."""
LONGEST_VIRTUAL_CALL_S = 4 * 120 + TALK_S[1] + 30
"""Four legs at the longest ring timeout, the longest talk, prompts: the bound of one call."""
NO_STATUS = "(none)"
"""Outcome key of a call that ended without HOTLINE_STATUS on its channel."""

_MIX_ITEM = re.compile(r"\s*([a-z_]+)\s*=\s*(\d+)\s*")
_GET_DATA = re.compile(r"get\s+data\b", re.IGNORECASE)


def parse_mix(text: str) -> dict[Behaviour, int]:
    """'answer=65,busy=10,noanswer=15,hangup=5,wrong_pin=5' -> percentages, which must sum
    to 100."""
    mix: dict[Behaviour, int] = {}
    for item in text.split(","):
        match = _MIX_ITEM.fullmatch(item)
        if match is None:
            raise ValueError(f"{item.strip()!r} is not BEHAVIOUR=PERCENT")
        name, percent = match[1], int(match[2])
        if name not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {name!r}; known: {', '.join(BEHAVIOURS)}")
        if name in mix:
            raise ValueError(f"{name} is given twice")
        mix[name] = percent  # type: ignore[index]  # checked against BEHAVIOURS above
    total = sum(mix.values())
    if total != 100:
        raise ValueError(f"percentages sum to {total}, not 100")
    return mix


def apportion(mix: Mapping[Behaviour, int], calls: int) -> dict[Behaviour, int]:
    """Exact call counts per behaviour (largest remainder; ties go to the earlier one)."""
    total = sum(mix.values())
    shares = {name: calls * percent / total for name, percent in mix.items()}
    counts = {name: math.floor(share) for name, share in shares.items()}
    left = calls - sum(counts.values())
    by_remainder = sorted(shares, key=lambda name: counts[name] - shares[name])
    for name in by_remainder[:left]:
        counts[name] += 1
    return counts


def spread(mix: Mapping[Behaviour, int], calls: int) -> Iterator[Behaviour]:
    """The behaviour of each call, as the calls are placed: exact counts, interleaved by
    smooth weighted round-robin so a short prefix of the run already holds the mix (no
    burst of hang-ups at the end)."""
    counts = apportion(mix, calls)
    current = dict.fromkeys(counts, 0)
    for _ in range(calls):
        for name, count in counts.items():
            current[name] += count
        chosen = max(current, key=lambda name: current[name])
        current[chosen] -= calls
        yield chosen


def check_pin(pin: str) -> str:
    """A PIN a caller can type: 4 to 12 digits, as `hotline400 pin-hash` takes them."""
    if not PIN_DIGITS.match(pin):
        raise ValueError(f"{pin!r}: a PIN is {MIN_PIN_DIGITS} to {MAX_PIN_DIGITS} digits")
    return pin


def wrong_pin(pin: str) -> str:
    """A PIN of the same length differing in every digit: wrong whichever digit the plan
    checks first, and never the right one by chance."""
    return "".join(str((int(digit) + 1) % 10) for digit in pin)


def pin_entry(behaviour: Behaviour, pin: str | None) -> str | None:
    """What a caller of this behaviour types at the PIN prompt: the PIN (wrong for
    `wrong_pin`) and `#`, which ends the entry before the plan's max_digits; nothing when
    no PIN is known."""
    if pin is None:
        return None
    return f"{wrong_pin(pin) if behaviour == 'wrong_pin' else pin}#"


def asks_pin(commands: Sequence[str]) -> bool:
    """Whether the router asked for a PIN: a GET DATA reading several digits (menus and
    surveys read one key)."""
    for line in commands:
        if _GET_DATA.match(line):
            words = split_agi_args(line)
            if len(words) < 5 or not words[4].isdigit() or int(words[4]) != 1:
                return True
    return False


def read_callers(path: str | Path) -> tuple[str, ...]:
    """Caller IDs from a file, one a line; blank lines and # comments are skipped."""
    callers = tuple(
        stripped
        for line in Path(path).read_text(encoding="utf-8").splitlines()
        if (stripped := line.strip()) and not stripped.startswith("#")
    )
    if not callers:
        raise ValueError(f"{path} holds no caller IDs")
    return callers


@dataclass
class _FirstBusy:
    """The first destination dialled is busy; every other one behaves as `others`."""

    others: Outcome
    first: str | None = None

    def __call__(self, number: str) -> Outcome:
        if self.first is None:
            self.first = number
        return Outcome.busy() if number == self.first else self.others


def _every(outcome: Outcome) -> Callable[[str], Outcome]:
    return lambda number: outcome


def far_side(
    behaviour: Behaviour, rng: random.Random
) -> tuple[Callable[[str], Outcome], CallerHangup | None]:
    """The destinations of one call and, for `hangup`, when its caller leaves."""
    answers = Outcome.answers(
        talk_s=round(rng.uniform(*TALK_S), 1), ring_s=round(rng.uniform(*RING_S), 1)
    )
    if behaviour in ("answer", "wrong_pin"):
        return _every(answers), None
    if behaviour == "busy":
        return _FirstBusy(answers), None
    if behaviour == "noanswer":
        return _every(Outcome.no_answer()), None
    leaves = CallerHangup.during_dial(1, after_s=round(rng.uniform(*HANGUP_AFTER_S), 1))
    return _every(Outcome.no_answer()), leaves


@dataclass(frozen=True)
class CallgenSpec:
    """One load run: where, how many, how fast, and who calls which number how."""

    host: str
    port: int
    calls: int
    concurrency: int
    numbers: Sequence[str]
    callers: Sequence[str] = DEFAULT_CALLERS
    mix: Mapping[Behaviour, int] = field(default_factory=lambda: dict(DEFAULT_MIX))
    time_scale: float = 0.0
    seed: int = 1
    """Seeds the ring, talk and hang-up durations, so a run can be repeated exactly."""
    pins: Mapping[str, str] = field(default_factory=dict)
    """400 number -> the PIN its callers type when asked (plans keep only a hash)."""

    def __post_init__(self) -> None:
        if self.calls < 1 or self.concurrency < 1:
            raise ValueError("calls and concurrency must be at least 1")
        if not self.numbers or not self.callers:
            raise ValueError("at least one 400 number and one caller are needed")
        if set(self.mix) - set(BEHAVIOURS) or min(self.mix.values(), default=0) < 0:
            raise ValueError(f"a mix gives each of {', '.join(BEHAVIOURS)} a weight >= 0")
        if sum(self.mix.values()) == 0:
            raise ValueError("a mix needs at least one behaviour with a weight above 0")
        if self.time_scale < 0:
            raise ValueError("time scale must not be negative")
        for number, pin in self.pins.items():
            if number not in self.numbers:
                raise ValueError(f"--pin names {number}, which is not called")
            check_pin(pin)


def build_calls(spec: CallgenSpec) -> Iterator[tuple[Behaviour, SimulatedCall]]:
    """The calls of a run, numbers and callers in rotation, made as they are placed: a run
    of millions holds only the calls in progress.

    Each behaviour rotates through the numbers on its own, and each (behaviour, number)
    through the callers: one rotation over all calls would fall into step with the
    behaviours' period and send, say, every busy call to the same number from the same
    caller. So every number sees the whole mix, from every caller.

    Call ids carry a per-run tag: Asterisk's own `epoch.counter` form would repeat between
    two runs in the same second, and the router keeps the first CDR of a repeated id.
    """
    rng = random.Random(spec.seed)
    run_tag = f"{int(time.time())}-{secrets.token_hex(3)}"
    calls_of_behaviour: Counter[Behaviour] = Counter()
    calls_of_pair: Counter[tuple[Behaviour, str]] = Counter()
    for index, behaviour in enumerate(spread(spec.mix, spec.calls)):
        number = spec.numbers[calls_of_behaviour[behaviour] % len(spec.numbers)]
        caller = spec.callers[calls_of_pair[behaviour, number] % len(spec.callers)]
        calls_of_behaviour[behaviour] += 1
        calls_of_pair[behaviour, number] += 1
        destinations, hangup = far_side(behaviour, rng)
        simulated = SimulatedCall(
            dialled=number,
            caller_id=caller,
            caller_name="callgen",
            uniqueid=f"{run_tag}.{index + 1}",
            destinations=destinations,
            hangup=hangup,
            pin_entry=pin_entry(behaviour, spec.pins.get(number)),
        )
        yield behaviour, simulated


def wrong_pins_per_caller(spec: CallgenSpec) -> dict[str, int]:
    """Number with a PIN given -> the most wrong_pin calls one caller makes to it in the
    run: what the router's PIN guard counts (typing nothing, elsewhere, it does not count).
    Follows the rotation of `build_calls`."""
    wrong = apportion(spec.mix, spec.calls).get("wrong_pin", 0)
    numbers, callers = len(spec.numbers), len(spec.callers)
    most: dict[str, int] = {}
    for index, number in enumerate(spec.numbers):
        calls = wrong // numbers + (index < wrong % numbers)
        if number in spec.pins and calls:
            most[number] = math.ceil(calls / callers)
    return most


@dataclass(frozen=True)
class Percentiles:
    """Nearest-rank percentiles of a set of durations, in seconds."""

    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Percentiles | None:
        if not values:
            return None
        ordered = sorted(values)

        def rank(percent: int) -> float:
            return ordered[math.ceil(percent / 100 * len(ordered)) - 1]

        return cls(rank(50), rank(95), rank(99), ordered[-1])

    def __str__(self) -> str:
        figures = {"p50": self.p50, "p95": self.p95, "p99": self.p99, "max": self.max}
        return "  ".join(f"{name} {value * 1000:.1f} ms" for name, value in figures.items())


@dataclass(frozen=True)
class CallgenReport:
    """What a run did: outcomes per behaviour, wire errors, throughput and latency."""

    target: str
    concurrency: int
    time_scale: float
    elapsed_s: float
    outcomes_by_behaviour: dict[Behaviour, Counter[str]]
    """Behaviour played -> HOTLINE_STATUS the router left -> calls (completed calls only)."""
    errors: Counter[str]
    """Simulator error message -> calls that failed with it."""
    first_command_s: Percentiles | None
    """Time from the environment to the router's first command: the routing decision."""
    wall_s: Percentiles | None
    """Whole-call wall time of the completed calls (includes sleeps when time_scale > 0)."""
    planned: int | None = None
    """Set when the run was interrupted: how many calls it meant to place."""
    pin_asked: int = 0
    """Completed calls the router asked for a PIN."""
    pin_refused: int = 0
    """Of those, the calls it refused at the PIN (pin_failed)."""
    pin_unknown: tuple[str, ...] = ()
    """Numbers that asked for a PIN no `pins` entry gives: their callers typed nothing."""

    @property
    def interrupted(self) -> bool:
        return self.planned is not None

    @property
    def placed(self) -> int:
        return self.completed + self.error_count

    @property
    def completed(self) -> int:
        return sum(sum(found.values()) for found in self.outcomes_by_behaviour.values())

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def outcomes(self) -> Counter[str]:
        """HOTLINE_STATUS -> calls, over every behaviour."""
        return sum(self.outcomes_by_behaviour.values(), Counter())

    @property
    def calls_per_s(self) -> float:
        return self.placed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.error_count == 0 and not self.interrupted

    def lines(self) -> list[str]:
        """The report as printed by `hotline400 callgen`."""
        lines = (
            [
                f"interrupted    after {self.placed} of {self.planned} calls; "
                "the figures are of those calls"
            ]
            if self.interrupted
            else []
        )
        lines += [
            f"placed         {self.placed} calls to {self.target} in {self.elapsed_s:.2f} s "
            f"({self.calls_per_s:.1f} calls/s), concurrency {self.concurrency}, "
            f"time scale {self.time_scale:g}",
            f"outcomes       {_counts(self.outcomes)}",
        ]
        for behaviour, found in self.outcomes_by_behaviour.items():
            lines.append(f"  {behaviour:<12} {sum(found.values()):>5} calls: {_counts(found)}")
        lines += self._pin_lines()
        lines.append(f"errors         {self.error_count}")
        lines += [f"  {count:>5} x {message}" for message, count in self.errors.most_common(5)]
        for label, figures in (("first command", self.first_command_s), ("call wall", self.wall_s)):
            lines.append(f"{label:<14} {figures or 'none measured'}")
        return lines

    def _pin_lines(self) -> list[str]:
        """How the PIN prompts went, when the router asked for any."""
        if not self.pin_asked:
            return []
        through = self.pin_asked - self.pin_refused
        lines = [
            f"pin            asked on {self.pin_asked} calls: {through} let through, "
            f"{self.pin_refused} refused ({Ending.PIN_FAILED})"
        ]
        unknown = self.pin_unknown
        lines += [f"  no --pin for {number}: its callers typed nothing" for number in unknown]
        return lines


def _counts(counter: Counter[str]) -> str:
    """'answered 8, blocked 2, busy 2': most calls first, then by name."""
    ordered = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{name} {count}" for name, count in ordered) or "-"


class TargetUnreachable(Exception):
    """The run's first calls all failed to connect: there is no router to report on."""


class Tally:
    """The results of a run folded in as each call ends: counts, and the two durations
    per call as 8-byte floats, so ten million calls keep some 160 MB, not their results."""

    def __init__(self, mix: Mapping[Behaviour, int], pins: Mapping[str, str]) -> None:
        self.by_behaviour: dict[Behaviour, Counter[str]] = {name: Counter() for name in mix}
        self.errors: Counter[str] = Counter()
        self.first_commands = array("d")
        self.walls = array("d")
        self.pins = pins
        self.pin_asked = self.pin_refused = 0
        self.pin_unknown: set[str] = set()
        self.connected = self.unconnected = self.refused = 0
        self.connect_error = ""

    def add(self, behaviour: Behaviour, result: CallResult) -> None:
        if result.env:
            self.connected += 1
        elif result.error is not None:
            self.unconnected += 1
            self.refused += result.refused
            self.connect_error = self.connect_error or result.error
        if result.first_command_s is not None:
            self.first_commands.append(result.first_command_s)
        if result.error is not None:
            self.errors[result.error] += 1
            return
        status = result.variables.get(ChannelVariable.STATUS, NO_STATUS)
        self.by_behaviour[behaviour][status] += 1
        self.walls.append(result.wall_s)
        if asks_pin(result.commands):
            self._count_pin(result.call.dialled, refused=status == Ending.PIN_FAILED)

    def _count_pin(self, number: str, *, refused: bool) -> None:
        self.pin_asked += 1
        self.pin_refused += refused
        if number not in self.pins:
            self.pin_unknown.add(number)

    def unreachable(self, first_calls: int) -> bool:
        """The first `first_calls` calls all failed to connect, and none got through."""
        return not self.connected and self.unconnected >= first_calls

    def report(self, spec: CallgenSpec, elapsed_s: float) -> CallgenReport:
        return CallgenReport(
            target=f"{spec.host}:{spec.port}",
            concurrency=spec.concurrency,
            time_scale=spec.time_scale,
            elapsed_s=elapsed_s,
            outcomes_by_behaviour={
                name: found for name, found in self.by_behaviour.items() if found
            },
            errors=self.errors,
            first_command_s=Percentiles.of(self.first_commands),
            wall_s=Percentiles.of(self.walls),
            pin_asked=self.pin_asked,
            pin_refused=self.pin_refused,
            pin_unknown=tuple(sorted(self.pin_unknown)),
        )


async def run_callgen(spec: CallgenSpec) -> CallgenReport:
    """Place the run's calls against the router and report on them.

    `concurrency` workers each take the next call as the last one ends, so memory follows
    the concurrency, not the number of calls. Cancelled (Ctrl-C), it stops placing calls
    and reports on the calls that ended, so a long run interrupted still says what it
    measured.

    Raises TargetUnreachable when the first calls (one per worker) all fail to connect:
    a report of calls that never reached a router says less than where it was looked for.
    A router that stops listening later in the run leaves its failed calls in the report.
    """
    planned = build_calls(spec)
    timeout = 30.0 + LONGEST_VIRTUAL_CALL_S * spec.time_scale
    tally = Tally(spec.mix, spec.pins)
    workers = min(spec.concurrency, spec.calls)

    async def worker() -> None:
        for behaviour, simulated in planned:  # one iterator shared: each call placed once
            result = await run_call(
                spec.host, spec.port, simulated, time_scale=spec.time_scale, timeout=timeout
            )
            tally.add(behaviour, result)
            if tally.unreachable(workers):
                return

    started = time.monotonic()
    interrupted = False
    try:
        await asyncio.gather(*(worker() for _ in range(workers)))
    except asyncio.CancelledError:
        interrupted = True
    if not interrupted and tally.unreachable(workers):
        target = f"{spec.host}:{spec.port}"
        if tally.refused == tally.unconnected:
            raise TargetUnreachable(f"nothing accepts connections at {target} (connection refused)")
        raise TargetUnreachable(f"cannot connect to {target}: {tally.connect_error}")
    report = tally.report(spec, time.monotonic() - started)
    return dataclasses.replace(report, planned=spec.calls) if interrupted else report
