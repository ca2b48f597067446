"""Which operator a 400 number belongs to, read from its segment (the 4 digits 400x).

Segments of other operators exist or may come; they are accepted as operator unknown,
never refused.
"""

from __future__ import annotations

import re
from enum import StrEnum

_NUMBER = re.compile(r"^400[0-9]{7}$")


class Operator(StrEnum):
    UNICOM = "China Unicom"
    MOBILE = "China Mobile"
    TELECOM = "China Telecom"
    UNKNOWN = "operator unknown"


OPERATOR_OF_SEGMENT: dict[str, Operator] = {
    "4000": Operator.UNICOM,
    "4006": Operator.UNICOM,  # historically China Netcom
    "4001": Operator.MOBILE,
    "4007": Operator.MOBILE,  # historically China Tietong
    "4008": Operator.TELECOM,  # the oldest segment, first block 400-820
    "4009": Operator.TELECOM,
}


def is_400_number(text: str) -> bool:
    return bool(_NUMBER.match(text))


def segment_of(number: str) -> str:
    """The segment, e.g. '4008' of 4008207788."""
    if not is_400_number(number):
        raise ValueError(f"{number!r} is not a 400 number (400 and 7 digits)")
    return number[:4]


def operator_of(number: str) -> Operator:
    return OPERATOR_OF_SEGMENT.get(segment_of(number), Operator.UNKNOWN)
