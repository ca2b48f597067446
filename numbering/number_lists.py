"""Lists of numbers as an operator hands them over: one number a line, or a range
`4006000000-4006009999`; blank lines and `#` comments are skipped.

Pure: the caller reads the file and passes its lines, and gets every problem at once with
its line number, so a file with a typo imports nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from numbering.segments import is_400_number

MAX_RANGE = 10_000_000
"""Numbers one range may hold: all 400x numbers of a segment are 1,000,000."""


@dataclass(frozen=True, slots=True)
class ListProblem:
    line: int
    message: str


def read_number_list(lines: Iterable[str]) -> tuple[list[range], list[ListProblem]]:
    """The ranges of numbers the lines name (a single number is a range of one), and the
    problems, each with its line number."""
    ranges: list[range] = []
    problems: list[ListProblem] = []
    for line_number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip().replace(" ", "")
        if not text:
            continue
        first, _, last = text.partition("-") if text.count("-") == 1 else (text, "", "")
        last = last or first
        bad = next((part for part in (first, last) if not is_400_number(part)), None)
        if bad is not None:
            problems.append(
                ListProblem(line_number, f"{bad!r} is not a 400 number (400 and 7 digits)")
            )
        elif int(last) < int(first):
            problems.append(ListProblem(line_number, f"the range {text} ends before it starts"))
        elif int(last) - int(first) + 1 > MAX_RANGE:
            problems.append(ListProblem(line_number, f"the range {text} is too long"))
        else:
            ranges.append(range(int(first), int(last) + 1))
    return ranges, problems


def numbers_of(ranges: Iterable[range]) -> Iterator[str]:
    """Every number of the ranges once, in order."""
    seen: set[int] = set()
    for span in ranges:
        for value in span:
            if value not in seen:
                seen.add(value)
                yield str(value)


def distinct_count(ranges: Iterable[range]) -> int:
    """How many numbers the ranges name, each once however often listed (`numbers_of`
    yields that many), counted without listing them."""
    count, end = 0, None
    for span in sorted(ranges, key=lambda span: span.start):
        start = span.start if end is None else max(span.start, end)
        if span.stop > start:
            count += span.stop - start
        end = span.stop if end is None else max(end, span.stop)
    return count
