"""Premium ("good") numbers: what makes a number memorable, and the grade it earns.

The digits after 400 (7 of them) are read for runs of one digit (8888888), ascending or
descending sequences (1234567), a block of 2 or 3 digits repeated (121212, 585858,
123123) and tails such as 888. Which of these make which grade, and each grade's one-off
selection fee, is configuration (`GradeRule`, in numbering.rules); a number that earns no
grade is ordinary and pays the standard fee.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

ORDINARY = "ordinary"


@dataclass(frozen=True, slots=True)
class Pattern:
    """What a number's last 7 digits show; each figure is a length in digits."""

    run: int
    sequence: int
    repeat: int
    tail: str

    def describe(self) -> str:
        return f"run {self.run}, sequence {self.sequence}, repeat {self.repeat}"


def pattern_of(number: str) -> Pattern:
    """Read the digits after 400 of a 10-digit number."""
    digits = number[3:]
    return Pattern(_longest_run(digits), _longest_sequence(digits), _longest_repeat(digits), digits)


def _longest_run(digits: str) -> int:
    best = length = 1
    for previous, current in itertools.pairwise(digits):
        length = length + 1 if current == previous else 1
        best = max(best, length)
    return best


def _longest_sequence(digits: str) -> int:
    """Longest stretch stepping by +1 or by -1 (0123..., 9876...)."""
    best = 1
    for step in (1, -1):
        length = 1
        for previous, current in itertools.pairwise(digits):
            length = length + 1 if ord(current) - ord(previous) == step else 1
            best = max(best, length)
    return best


def _longest_repeat(digits: str) -> int:
    """Longest stretch that repeats a block of 2 or 3 digits at least twice (1212, 123123).

    A block of one digit repeated is a run, not a repeat: 888888 counts as a run only.
    """
    best = 0
    for period in (2, 3):
        matches = 0  # consecutive digits equal to the one a period earlier
        for index in range(period, len(digits)):
            matches = matches + 1 if digits[index] == digits[index - period] else 0
            block = digits[index - period + 1 : index + 1]
            if matches >= period and block.count(block[0]) != period:
                best = max(best, matches + period)
    return best
