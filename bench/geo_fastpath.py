"""Whether the index answers exactly what parsing answers, over every mobile block and every
area code: the full check behind dialplan.geo_index. Takes about six minutes on two
cores; it is not a test.

Mobiles: every 7-digit prefix 1300000..1999999. Each block's answer is worked out from one
number (+86 format, a random suffix) and then checked on another (bare, another random
suffix); both are compared with `locate_by_parsing`. Where the index leaves a block to
parsing, it must be one parsing calls something other than a mobile, or a carrier-selection
block (179XX).

Fixed lines: every area code x every first three subscriber digits 200..899 x subscriber
lengths 6-9, with a random rest, in the 0 area-code format or the +86 one. Where the index
answers, it must answer what parsing answers; where parsing calls the number a fixed line,
the index must answer.

One number per combination suffices because no data reads further into a number; the
premises are computed and printed first. Prints, per shape, the numbers the index answers,
those it leaves to parsing, and the disagreements (which must be 0), then what an eager
build of all mobile blocks would cost at import.

    python bench/geo_fastpath.py
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import astuple, dataclass, field

from phonenumbers.carrierdata import CARRIER_DATA
from phonenumbers.geodata import GEOCODE_DATA

from dialplan.geo import CallerInfo, locate_by_parsing, locate_from_index
from dialplan.geo_index import FIRST_MOBILE_BLOCK, LAST_MOBILE_BLOCK, MOBILE_BLOCK_DIGITS
from dialplan.regions import AREA_CODES

BLOCK = 10_000  # one three-digit block (130, 131, ...) of 7-digit prefixes
SUBSCRIBER_LENGTHS = (6, 7, 8, 9)
SHOWN_DISAGREEMENTS = 5


@dataclass
class Tally:
    """Counts of one walk, and the first disagreements found."""

    counts: Counter[str] = field(default_factory=Counter)
    disagreements: list[str] = field(default_factory=list)
    answers: set[tuple[object, ...]] = field(default_factory=set)
    work_out_seconds: float = 0.0

    def check(
        self, raw: str, indexed: CallerInfo | None, parsed: CallerInfo, must_answer: bool
    ) -> None:
        """A disagreement: the index answers otherwise than parsing, or leaves to parsing
        a number it must answer."""
        if indexed is None:
            self.counts["parsed"] += 1
            agrees = not must_answer
        else:
            self.counts["indexed"] += 1
            agrees = indexed == parsed
        if not agrees:
            self.counts["disagreements"] += 1
            if len(self.disagreements) < SHOWN_DISAGREEMENTS:
                self.disagreements.append(f"{raw!r}: index {indexed}, parsing {parsed}")

    def merge(self, other: Tally) -> Tally:
        self.counts += other.counts
        self.disagreements += other.disagreements[: SHOWN_DISAGREEMENTS - len(self.disagreements)]
        self.answers |= other.answers
        self.work_out_seconds += other.work_out_seconds
        return self


def walk_mobile_block(first: int) -> Tally:
    """Both checks for the 10,000 7-digit prefixes of one three-digit block."""
    rng = random.Random(first)
    tally = Tally()
    for prefix in range(first, first + BLOCK):
        warming, checked = (f"{prefix}{rng.randrange(10_000):04d}" for _ in range(2))
        started = time.thread_time()
        indexed = locate_from_index(f"+86 {warming}")
        tally.work_out_seconds += time.thread_time() - started
        parsed = locate_by_parsing(f"+86 {warming}")
        must_answer = parsed.kind == "mobile" and not warming.startswith("179")
        tally.check(f"+86 {warming}", indexed, parsed, must_answer)
        tally.check(checked, locate_from_index(checked), locate_by_parsing(checked), must_answer)
        if indexed is not None:
            tally.answers.add(astuple(indexed)[2:])  # all but raw and number
    return tally


def walk_area_code(code: str) -> Tally:
    """Every first three subscriber digits 200-899 at every length, in either format."""
    rng = random.Random(code)
    tally = Tally()
    for start in range(200, 900):
        for length in SUBSCRIBER_LENGTHS:
            rest = length - 3
            subscriber = f"{start}{rng.randrange(10**rest):0{rest}d}"
            raw = rng.choice((f"{code}-{subscriber}", f"+86 {code[1:]} {subscriber}"))
            parsed = locate_by_parsing(raw)
            tally.check(raw, locate_from_index(raw), parsed, parsed.kind == "fixed")
    return tally


def premises() -> list[str]:
    """How far into a number each data source reads, from the installed data."""
    mobile_geo = max(len(key) for key in GEOCODE_DATA if key.startswith("861")) - 2
    mobile_carrier = max(len(key) for key in CARRIER_DATA if key.startswith("861")) - 2
    past_code = max(
        len(key) - 2 - len(code)
        for key in GEOCODE_DATA
        if key.startswith("86")
        and f"0{(code := key[2:4] if key[2] in '12' else key[2:5])}" in AREA_CODES
    )
    return [
        f"geocoder keys read up to {mobile_geo} digits of a mobile, carrier keys up to "
        f"{mobile_carrier}; blocks are {MOBILE_BLOCK_DIGITS} digits",
        f"geocoder keys read up to {past_code} subscriber digits past an area code; "
        "the walk covers 3",
    ]


def report(title: str, tally: Tally) -> None:
    counts = tally.counts
    print(
        f"{title}: {counts['indexed'] + counts['parsed']:,} numbers, "
        f"{counts['indexed']:,} answered by the index, {counts['parsed']:,} left to parsing, "
        f"disagreements: {counts['disagreements']}"
    )
    for line in tally.disagreements:
        print(f"  {line}")


def main() -> int:
    for line in premises():
        print(line)
    started = time.perf_counter()
    with ProcessPoolExecutor() as pool:
        mobiles = Tally()
        for block in pool.map(
            walk_mobile_block, range(FIRST_MOBILE_BLOCK, LAST_MOBILE_BLOCK, BLOCK)
        ):
            mobiles.merge(block)
        fixed = Tally()
        for area in pool.map(walk_area_code, sorted(AREA_CODES)):
            fixed.merge(area)
    report("mobiles (2 per 7-digit block)", mobiles)
    report("fixed lines (area code x 3 subscriber digits x length)", fixed)
    blocks = LAST_MOBILE_BLOCK - FIRST_MOBILE_BLOCK + 1
    print(
        f"working out all {blocks:,} blocks took {mobiles.work_out_seconds:.1f} s of CPU "
        f"(what an eager build at import would cost); {len(mobiles.answers):,} distinct answers"
    )
    print(f"walked in {time.perf_counter() - started:.0f} s")
    return 1 if mobiles.counts["disagreements"] or fixed.counts["disagreements"] else 0


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    sys.exit(main())
