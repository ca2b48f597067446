"""Answers for the two caller-ID shapes most calls carry, looked up instead of parsed.

Parsing a number with phonenumbers and asking it for a type, an area-code length and a
description costs some 100-200 us, and on a 400 platform nearly every caller is new. Yet
for the two shapes most calls carry, the answer depends on far less than the number:

  - an 11-digit mobile (13X-19X), written as such or after +86: its type, place and
    carrier depend on its first seven digits only (phonenumbers' mobile pattern reads
    five, its geocoder keys reach seven, its carrier keys four, the phone table is keyed
    by seven). The answer for a 7-digit block is worked out on its first caller and kept
    in one slot of a fixed array, so memory does not grow with traffic.
  - a fixed line, as 0 + area code + subscriber or after +86: its place depends on the
    area code only, provided the subscriber number is an ordinary one. The area code is
    010 or 02X (two digits after the 0), otherwise three digits after the 0; the answer
    per area code is worked out once, when the index is built.

An ordinary subscriber number starts with 2-8 and is one phonenumbers' fixed-line pattern
accepts. Those starting 1 or 9 are service forms (0531-12345, 0531-96123) that
phonenumbers reads as other types or places by longer geocoder keys, those starting 0
are not dialled; all three are left to the full path. So is every mobile-shaped number
that starts with a carrier-selection prefix (179XX), which phonenumbers strips or keeps
depending on the digits that follow.

The index holds no geolocation logic of its own: it is given the functions that work out
an answer, and every answer it returns is one they produced. tests/dialplan/test_geo.py and
bench/geo_fastpath.py check that it agrees with the full path.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Hashable, Mapping
from typing import Generic, TypeVar

import phonenumbers

__all__ = ["FIRST_MOBILE_BLOCK", "LAST_MOBILE_BLOCK", "MOBILE_BLOCK_DIGITS", "CallerIndex"]

Answer = TypeVar("Answer", bound=Hashable)

MOBILE_BLOCK_DIGITS = 7
FIRST_MOBILE_BLOCK, LAST_MOBILE_BLOCK = 1_300_000, 1_999_999
_UNSEEN = 0  # slot value of a block no caller has come from yet

_CN_METADATA = phonenumbers.PhoneMetadata.metadata_for_region("CN")
_MOBILE_SHAPE = re.compile(r"1[3-9][0-9]{9}")
# phonenumbers' own fixed-line test: a possible length, then the whole pattern.
_FIXED_LINE = re.compile(_CN_METADATA.fixed_line.national_number_pattern)
_FIXED_LINE_LENGTHS = frozenset(_CN_METADATA.fixed_line.possible_length)
_CARRIER_SELECTION = re.compile(
    f"(?:{_CN_METADATA.international_prefix})|(?:{_CN_METADATA.national_prefix_for_parsing})"
)
_ORDINARY_SUBSCRIBER_FIRST_DIGITS = frozenset("2345678")


class CallerIndex(Generic[Answer]):
    """Answers for 11-digit mobiles by 7-digit block and for fixed lines by area code.

    `mobile_block_answer(national)` answers for every mobile of that number's block, or
    None where the index should not answer for the block; `area_code_answers` maps an
    area code with its 0 (0531) to the answer for every ordinary fixed line in it.
    """

    def __init__(
        self,
        mobile_block_answer: Callable[[str], Answer | None],
        area_code_answers: Mapping[str, Answer],
    ) -> None:
        self._mobile_block_answer = mobile_block_answer
        self._area_code_answers = dict(area_code_answers)
        block_count = LAST_MOBILE_BLOCK - FIRST_MOBILE_BLOCK + 1
        # One slot per block: the position of its answer in _answers; 4 bytes x 700,000.
        self._slots = array("I", bytes(array("I").itemsize * block_count))
        self._answers: list[Answer | None] = [None]  # position _UNSEEN: never read
        self._position_of: dict[Answer | None, int] = {}

    def answer(self, parseable: str) -> tuple[str, Answer] | None:
        """(normalised number, answer) for a number as geo hands it to phonenumbers
        (+86..., 0..., or bare digits); None for every other shape."""
        if parseable.startswith("+86"):
            national = parseable[3:]
            return self._mobile(national) or self._fixed(national)
        if parseable.startswith("0"):
            return self._fixed(parseable[1:])
        if parseable.startswith("+"):
            return None
        return self._mobile(parseable)

    def blocks_seen(self) -> int:
        """How many 7-digit mobile blocks have an answer worked out."""
        return len(self._slots) - self._slots.count(_UNSEEN)

    def forget_mobile_blocks(self) -> None:
        """Drop every block's answer, to be worked out again on its next caller."""
        self._slots = array("I", bytes(len(self._slots) * self._slots.itemsize))
        self._answers[1:] = []
        self._position_of.clear()

    def _mobile(self, national: str) -> tuple[str, Answer] | None:
        if not _MOBILE_SHAPE.fullmatch(national):
            return None
        block = int(national[:MOBILE_BLOCK_DIGITS]) - FIRST_MOBILE_BLOCK
        position = self._slots[block]
        if position == _UNSEEN:
            position = self._slots[block] = self._position(self._work_out_block(national))
        found = self._answers[position]
        return None if found is None else (national, found)

    def _work_out_block(self, national: str) -> Answer | None:
        # A carrier-selection prefix is at most seven digits: it marks the whole block.
        if _CARRIER_SELECTION.match(national[:MOBILE_BLOCK_DIGITS]):
            return None
        return self._mobile_block_answer(national)

    def _position(self, answer: Answer | None) -> int:
        """Where this answer is kept; equal answers of different blocks share one place."""
        position = self._position_of.get(answer)
        if position is None:
            position = self._position_of[answer] = len(self._answers)
            self._answers.append(answer)
        return position

    def _fixed(self, national: str) -> tuple[str, Answer] | None:
        code_digits = 2 if national[:1] in ("1", "2") else 3
        found = self._area_code_answers.get(f"0{national[:code_digits]}")
        if (
            found is None
            or national[code_digits : code_digits + 1] not in _ORDINARY_SUBSCRIBER_FIRST_DIGITS
            or len(national) not in _FIXED_LINE_LENGTHS
            or not _FIXED_LINE.fullmatch(national)
        ):
            return None
        return f"0{national}", found
