"""What one caller lookup costs on the call path: uncached (first call from a number) and
cached (the same caller ID again).

Builds a fixed, seeded mix of distinct caller IDs as Asterisk hands them over (valid
mobiles in several formats, valid fixed lines with area codes, 400/800 numbers,
international numbers, withheld and garbage IDs), times each `locate()` call alone with
the cache and the index emptied, so that nearly every mobile is the first caller of its
7-digit block; then new mobiles from the same blocks (the index's steady state once a
platform has seen its callers' blocks); then the first mix again with every answer
cached. Prints p50/p99 in microseconds, the import time and the peak memory. It is not
a test.

    python bench/geo_lookup.py
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import time
from collections import defaultdict
from collections.abc import Callable

import phonenumbers

_started = time.perf_counter()
from dialplan import geo, regions  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - _started
CALLERS = 10_000  # distinct caller IDs, fewer than the cache holds
SEED = 400


def _valid(make: Callable[[], str]) -> str:
    """A number phonenumbers accepts: random digits mostly land in unallocated ranges."""
    while True:
        national = make()
        if phonenumbers.is_valid_number(phonenumbers.parse(national, "CN")):
            return national


def _mobile(rng: random.Random) -> str:
    national = _valid(lambda: f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}")
    style = rng.choice(("{n}", "+86{n}", "0086{n}", "86{n}", "+86 {a} {b} {c}"))
    return style.format(n=national, a=national[:3], b=national[3:7], c=national[7:])


def _fixed(rng: random.Random, codes: list[str]) -> str:
    def number() -> str:
        rest = rng.choice((6, 7))
        return f"{rng.choice(codes)}{rng.randrange(2, 9)}{rng.randrange(10**rest):0{rest}d}"

    national = _valid(number)
    code = next(code for code in codes if national.startswith(code))
    subscriber = national[len(code) :]
    style = rng.choice(("{c}{s}", "{c}-{s}", "({c}) {s}", "+86 {bare} {s}"))
    return style.format(c=code, bare=code[1:], s=subscriber)


def _service(rng: random.Random) -> str:
    return f"{rng.choice(('400', '800'))}{rng.randrange(10**7):07d}"


def _international(rng: random.Random) -> str:
    return rng.choice(("+44 20 7946 {:04d}", "0044 7700 900{:03d}", "+1 202 555 {:04d}")).format(
        rng.randrange(1000)
    )


def _withheld_or_garbage(rng: random.Random) -> str:
    return rng.choice(("anonymous", "unknown", "Restricted", "", "abc", "1" * 80)) + " " * (
        rng.randrange(3)
    )


def caller_ids(count: int, seed: int) -> list[str]:
    """A realistic mix: 60% mobile, 25% fixed, 5% each service, international, other."""
    rng = random.Random(seed)
    codes = sorted(regions.AREA_CODES)
    makers: list[tuple[float, Callable[[random.Random], str]]] = [
        (0.60, _mobile),
        (0.25, lambda r: _fixed(r, codes)),
        (0.05, _service),
        (0.05, _international),
        (0.05, _withheld_or_garbage),
    ]
    weights = [weight for weight, _ in makers]
    chosen: dict[str, None] = {}
    while len(chosen) < count:
        make = rng.choices([maker for _, maker in makers], weights)[0]
        chosen[make(rng)] = None
    ids = list(chosen)
    rng.shuffle(ids)
    return ids


def from_the_same_blocks(ids: list[str], seed: int) -> list[str]:
    """A new mobile from the 7-digit block of every mobile in `ids`."""
    rng = random.Random(seed)
    siblings = []
    for raw in ids:
        info = geo.locate(raw)
        if info.kind == "mobile":
            suffix = (int(info.number[7:]) + rng.randrange(1, 10_000)) % 10_000
            siblings.append(f"+86 {info.number[:7]}{suffix:04d}")
    return siblings


def timed(ids: list[str]) -> tuple[list[float], dict[str, list[float]]]:
    """Microseconds per locate() call, overall and per resulting kind."""
    overall: list[float] = []
    by_kind: defaultdict[str, list[float]] = defaultdict(list)
    for raw in ids:
        start = time.perf_counter_ns()
        info = geo.locate(raw)
        elapsed = (time.perf_counter_ns() - start) / 1000
        overall.append(elapsed)
        by_kind[info.kind].append(elapsed)
    return overall, by_kind


def _percentiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100)
    return f"p50 {cuts[49]:8.1f} us  p99 {cuts[98]:8.1f} us  ({len(samples):,} lookups)"


def _peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    print(
        f"import dialplan.geo (data tables built): {IMPORT_SECONDS:.2f} s, "
        f"peak memory {_peak_memory_mb():.0f} MB"
    )
    ids = caller_ids(CALLERS, SEED)
    siblings = from_the_same_blocks(ids, SEED)
    geo.clear_lookup_cache()
    uncached, uncached_by_kind = timed(ids)
    print(f"uncached  {'':<20} {_percentiles(uncached)}")
    for kind in geo.KINDS:
        if len(uncached_by_kind[kind]) > 1:
            print(f"  {kind:<28} {_percentiles(uncached_by_kind[kind])}")
    _, sibling_by_kind = timed(siblings)
    print(f"  {'mobile, from a block seen':<28} {_percentiles(sibling_by_kind['mobile'])}")
    cached, _ = timed(ids)
    print(f"cached    {'':<20} {_percentiles(cached)}")
    print(f"cache: {geo.lookup_cache_info()}")
    print(
        f"index: {geo.indexed_mobile_blocks():,} mobile blocks worked out, "
        f"peak memory {_peak_memory_mb():.0f} MB"
    )


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    main()
