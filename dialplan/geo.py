"""Caller-ID normalisation and geolocation: where a call comes from, from what Asterisk says.

`locate()` takes any string Asterisk may hand over as the caller ID and never raises:
+86 / 0086 / 86 prefixes, a leading 0 area code, spaces, dashes, dots and parentheses,
mobiles, 400/800 and short service numbers (10086, 95588), international numbers, the
withheld markers ("anonymous", "unknown", "Restricted", ...), empty strings and garbage.
The input is cut to MAX_CALLER_ID_CHARS before anything else looks at it, and a longer
one is unknown: a caller ID that long is not a number, whatever its first characters say.

Where a number comes from is read from phonenumbers' geocoder and carrier data. For a
mobile, phonenumbers falls short in two ways, and the `phone` package's prefix table is
asked instead: it places a block only as "China" (every 16x and 19x block, most of 17x),
or it places it only through a catch-all prefix shorter than MIN_PRECISE_PREFIX_DIGITS
digits (86173 puts every 173 number in Beijing), where the phone table names another
province for about 70% of numbers. bench/geo_coverage.py measures both sources over every
mobile block.

A mobile's area code is its city's fixed-line code, found by inverting phonenumbers'
fixed-line descriptions (see dialplan.regions for when none can be derived); only a
location that came from the phone table and that the inversion cannot place falls back
to the phone table's own code.

Every lookup is cached on the bounded raw string: the same caller ID costs one dict lookup
the second time (bench/geo_lookup.py measures both). A caller ID seen for the first time
is, for the two shapes most calls carry (11-digit mobiles, fixed lines after a 0 area
code), answered from dialplan.geo_index: per 7-digit mobile block, worked out on the
block's first caller by the path below minus the parsing, and per area code, from the
area-code table. Every other shape is parsed by phonenumbers. `locate_by_parsing()` is
the path without the index, which tests and bench/geo_fastpath.py check it against.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, fields
from functools import cache, lru_cache
from typing import Literal, NamedTuple

import phone
import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberType, carrier, geocoder
from phonenumbers.geodata import GEOCODE_DATA, GEOCODE_LONGEST_PREFIX

from dialplan.geo_index import CallerIndex
from dialplan.regions import (
    AREA_CODES,
    MUNICIPALITIES,
    area_code_of_city,
    canonical_city,
    canonical_province,
    city_en,
    is_country_only,
    province_en,
    short_city_name,
    split_place,
)

__all__ = [
    "KINDS",
    "CacheStats",
    "CallerInfo",
    "Kind",
    "canonical_city",
    "canonical_province",
    "clear_lookup_cache",
    "geocoder_prefix_digits",
    "indexed_mobile_blocks",
    "locate",
    "locate_by_parsing",
    "locate_from_index",
    "lookup_cache_info",
]

Kind = Literal["mobile", "fixed", "service", "international", "unknown"]
KINDS: tuple[Kind, ...] = ("mobile", "fixed", "service", "international", "unknown")

MAX_CALLER_ID_CHARS = 64
MAX_DIGITS = 17  # 00 + a 15-digit E.164 number
_E164_READINGS = 3
LOOKUP_CACHE_SIZE = 16384
MIN_PRECISE_PREFIX_DIGITS = 5
CN_COUNTRY_CODE = 86

_WITHHELD_MARKERS = frozenset(
    {"anonymous", "unknown", "restricted", "private", "withheld", "unavailable", "blocked"}
)
_DIALLABLE = re.compile(r"\+?[0-9 ()\-.]+")
_NON_DIGITS = re.compile(r"[^0-9]")
_MOBILE_SHAPE = re.compile(r"1[3-9][0-9]{9}")
_AREA_CODE_SHAPE = re.compile(r"0[1-9][0-9]{1,2}")
_SERVICE_TYPES = frozenset(
    {
        PhoneNumberType.TOLL_FREE,
        PhoneNumberType.SHARED_COST,
        PhoneNumberType.PREMIUM_RATE,
        PhoneNumberType.UAN,
    }
)
_GREATER_CHINA = {"HK": "香港", "MO": "澳门", "TW": "台湾"}
_PHONE_CARRIERS = {
    "移动": "China Mobile",
    "联通": "China Unicom",
    "电信": "China Telecom",
    "广电": "China Broadnet",
}
_CN_MOBILE = phonenumbers.PhoneMetadata.metadata_for_region("CN").mobile
_CN_MOBILE_PATTERN = re.compile(_CN_MOBILE.national_number_pattern)
_CN_MOBILE_LENGTHS = frozenset(_CN_MOBILE.possible_length)
# Read once at import (4.5 MB of package data) so no lookup ever touches the disk.
_PHONE_PREFIXES = phone.Phone()


@dataclass(frozen=True, slots=True)
class CallerInfo:
    """What a caller ID says about the caller; None wherever the data does not know."""

    raw: str
    number: str
    kind: Kind
    province_zh: str | None
    province_en: str | None
    city_zh: str | None
    city_en: str | None
    area_code: str | None
    carrier: str | None
    anonymous: bool
    country: str | None = None  # ISO 3166 region of the number: "CN", "GB", "HK"


@dataclass(frozen=True, slots=True)
class _Place:
    """A province and city; when the phone table was the source, also its area code and
    carrier, used only where phonenumbers' own data gives none."""

    province: str | None
    city: str | None
    fallback_area_code: str | None = None
    fallback_carrier: str | None = None


def locate(raw: str | None) -> CallerInfo:
    """Normalise and place a caller ID; cached, never raises."""
    return _locate_bounded(_bounded(raw))


def locate_by_parsing(raw: str | None) -> CallerInfo:
    """What locate() answers, worked out without its cache and without the index: every
    number parsed by phonenumbers. The reference the index is checked against."""
    shown, parseable = _screened(_bounded(raw))
    return parseable if isinstance(parseable, CallerInfo) else _by_parsing(shown, parseable)


def locate_from_index(raw: str | None) -> CallerInfo | None:
    """The index's answer for a caller ID, without locate()'s cache; None where locate()
    parses the number instead, or where the caller ID is no number at all."""
    shown, parseable = _screened(_bounded(raw))
    return None if isinstance(parseable, CallerInfo) else _from_index(shown, parseable)


class CacheStats(NamedTuple):
    """The lookup cache's counters, as functools reports them."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


def lookup_cache_info() -> CacheStats:
    """Hits, misses and size of the lookup cache, for metrics and benchmarks."""
    hits, misses, maxsize, currsize = _locate_bounded.cache_info()
    return CacheStats(hits, misses, maxsize or 0, currsize)


def indexed_mobile_blocks() -> int:
    """How many 7-digit mobile blocks the index has an answer for, for metrics and benchmarks."""
    return _INDEX.blocks_seen()


def clear_lookup_cache() -> None:
    """Forget every cached lookup and every mobile block's answer (after a data upgrade, or
    to measure uncached cost)."""
    _locate_bounded.cache_clear()
    _INDEX.forget_mobile_blocks()


def _bounded(raw: str | None) -> str:
    return (raw or "")[: MAX_CALLER_ID_CHARS + 1]


@lru_cache(maxsize=LOOKUP_CACHE_SIZE)
def _locate_bounded(bounded: str) -> CallerInfo:
    shown, parseable = _screened(bounded)
    if isinstance(parseable, CallerInfo):
        return parseable
    return _from_index(shown, parseable) or _by_parsing(shown, parseable)


def _screened(bounded: str) -> tuple[str, str | CallerInfo]:
    """The caller ID as shown, and either the string phonenumbers is to parse or, for
    what is no number (withheld, too long, not diallable), the answer already."""
    shown = _without_control_chars(bounded[:MAX_CALLER_ID_CHARS]).strip()
    if len(bounded) > MAX_CALLER_ID_CHARS:
        return shown, _unknown(shown)
    if not shown or shown.casefold().partition("@")[0] in _WITHHELD_MARKERS:
        return shown, _unknown(shown, anonymous=True)
    if not _DIALLABLE.fullmatch(shown):
        return shown, _unknown(shown)
    digits = _NON_DIGITS.sub("", shown)
    if not 3 <= len(digits) <= MAX_DIGITS:
        return shown, _unknown(shown)
    return shown, _parseable(shown.startswith("+"), digits)


def _from_index(shown: str, parseable: str) -> CallerInfo | None:
    found = _INDEX.answer(parseable)
    if found is None:
        return None
    number, answer = found
    return CallerInfo(shown, number, *answer)


def _by_parsing(shown: str, parseable: str) -> CallerInfo:
    try:
        number = phonenumbers.parse(parseable, "CN")
    except NumberParseException:
        return _unknown(shown)
    if number.country_code != CN_COUNTRY_CODE:
        return _international(shown, number)
    return _domestic(shown, number)


def _without_control_chars(text: str) -> str:
    # Printable ASCII, what Asterisk nearly always sends, has no control character to drop.
    if text.isascii() and text.isprintable():
        return text
    return "".join(char for char in text if unicodedata.category(char)[0] != "C")


def _parseable(plus: bool, digits: str) -> str:
    """The digits as phonenumbers should read them: +CC... when a country code is present.

    00 is the international prefix; a bare 86 followed by at least 10 digits is the country
    code, since no domestic number of that length starts with 86; the trunk 0 some
    carriers leave after 86 (86 0531 ...) is dropped.
    """
    if plus:
        body = digits
    elif digits.startswith("00"):
        body = digits[2:]
    elif digits.startswith("86") and len(digits) >= 12:
        body = digits
    else:
        return digits
    if body.startswith("860"):
        body = "86" + body[3:]
    return "+" + body


def _domestic(shown: str, number: phonenumbers.PhoneNumber) -> CallerInfo:
    national = phonenumbers.national_significant_number(number)
    number_type = phonenumbers.number_type(number)
    if number_type == PhoneNumberType.MOBILE:
        return _mobile(shown, number, national)
    if number_type == PhoneNumberType.FIXED_LINE:
        return _fixed(shown, number, national)
    if number_type in _SERVICE_TYPES or phonenumbers.is_valid_short_number_for_region(number, "CN"):
        return _service(shown, national)
    if _MOBILE_SHAPE.fullmatch(national) and _phone_record(national) is not None:
        return _mobile(shown, None, national)
    return _unknown(shown)


def _mobile(shown: str, number: phonenumbers.PhoneNumber | None, national: str) -> CallerInfo:
    """A mobile; `number` is None for a block only the phone table knows."""
    description = "" if number is None else geocoder.description_for_valid_number(number, "zh")
    place = None
    if is_country_only(description) or geocoder_prefix_digits(national) < MIN_PRECISE_PREFIX_DIGITS:
        place = _place_from_phone_table(national)
    if place is None:
        place = _place_from_description(description)
    carrier_name = None if number is None else carrier.name_for_valid_number(number, "en")
    return _caller(
        shown,
        national,
        "mobile",
        place,
        _area_code_of(place),
        carrier_name or place.fallback_carrier,
    )


def _fixed(shown: str, number: phonenumbers.PhoneNumber, national: str) -> CallerInfo:
    code_length = phonenumbers.length_of_geographical_area_code(number)
    area_code = f"0{national[:code_length]}" if code_length else None
    place = _place_from_description(geocoder.description_for_valid_number(number, "zh"))
    return _caller(shown, f"0{national}", "fixed", place, area_code, None)


def _service(shown: str, national: str) -> CallerInfo:
    return _caller(shown, national, "service", _Place(None, None), None, None)


def _international(shown: str, number: phonenumbers.PhoneNumber) -> CallerInfo:
    e164 = _stable_e164(number)
    if e164 is None or not phonenumbers.is_possible_number(number):
        return _unknown(shown)
    country = phonenumbers.region_code_for_number(number)
    return _caller(
        shown,
        e164,
        "international",
        _Place(_GREATER_CHINA.get(country or ""), None),
        None,
        carrier.name_for_number(number, "en"),
        country,
    )


def _stable_e164(number: phonenumbers.PhoneNumber) -> str | None:
    """The E.164 form that reads back as itself; None when there is none.

    phonenumbers may format a number into a string it parses differently: a national
    number of zeros alone loses a zero (+49000000 -> +4900000), and a trunk 0 written after
    the country code is dropped only on the second reading (+92 003... -> +92034... ->
    +9234...). A caller's number must normalise to itself, so formatting is repeated until
    it is stable.
    """
    if number.national_number == 0:
        return None
    text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    for _ in range(_E164_READINGS):
        try:
            again = phonenumbers.format_number(
                phonenumbers.parse(text), phonenumbers.PhoneNumberFormat.E164
            )
        except NumberParseException:
            return None
        if again == text:
            return text
        text = again
    return None


def _caller(
    shown: str,
    number: str,
    kind: Kind,
    place: _Place,
    area_code: str | None,
    carrier_name: str | None,
    country: str | None = "CN",
) -> CallerInfo:
    province, city = place.province, place.city
    return CallerInfo(
        raw=shown,
        number=number,
        kind=kind,
        province_zh=province,
        province_en=province_en(province) if province else None,
        city_zh=city,
        city_en=city_en(province, city) if province and city else None,
        area_code=area_code,
        carrier=carrier_name or None,
        anonymous=False,
        country=country,
    )


def _unknown(shown: str, anonymous: bool = False) -> CallerInfo:
    return CallerInfo(
        raw=shown,
        number="",
        kind="unknown",
        province_zh=None,
        province_en=None,
        city_zh=None,
        city_en=None,
        area_code=None,
        carrier=None,
        anonymous=anonymous,
    )


def geocoder_prefix_digits(national: str) -> int:
    """Digits in the longest geocoder prefix that matches a CN national number; 0 for none.

    A mobile placed through fewer than MIN_PRECISE_PREFIX_DIGITS digits was placed by a
    catch-all entry (86173 -> Beijing for the whole 173 block), not by its own block.
    """
    key = f"{CN_COUNTRY_CODE}{national}"
    country_digits = len(str(CN_COUNTRY_CODE))
    return next(
        (
            length - country_digits
            for length in range(min(len(key), GEOCODE_LONGEST_PREFIX), country_digits, -1)
            if key[:length] in GEOCODE_DATA
        ),
        0,
    )


@cache  # keyed by geocoder descriptions, a few hundred strings of package data
def _place_from_description(description_zh: str) -> _Place:
    province, cities = split_place(description_zh)
    return _Place(province, cities[0] if len(cities) == 1 else None)


def _phone_record(national: str) -> dict[str, str] | None:
    return _PHONE_PREFIXES.find(national[:7])


def _place_from_phone_table(national: str) -> _Place | None:
    """The phone table's province, city, area code and carrier, in the geocoder's names."""
    record = _phone_record(national)
    if record is None:
        return None
    return _place_of_phone_record(
        record["province"], record["city"], record["area_code"], record["phone_type"]
    )


@cache  # keyed by the phone table's distinct records, a few thousand of package data
def _place_of_phone_record(
    province_name: str, city_name: str, code: str, phone_type: str | None
) -> _Place | None:
    province = canonical_province(province_name)
    if province is None:
        return None
    if province in MUNICIPALITIES:
        city = province
    else:
        city = canonical_city(city_name, province) or short_city_name(city_name)
    host_network = (phone_type or "").removesuffix("虚拟运营商")
    return _Place(
        province,
        city,
        code if _AREA_CODE_SHAPE.fullmatch(code) else None,
        _PHONE_CARRIERS.get(host_network),
    )


def _area_code_of(place: _Place) -> str | None:
    if place.province is None or place.city is None:
        return None
    return area_code_of_city(place.province, place.city) or place.fallback_area_code


_Answer = tuple[object, ...]  # a CallerInfo's fields after raw and number, in their order
_ANSWER_FIELDS = tuple(field.name for field in fields(CallerInfo))[2:]


def _answer_of(caller: CallerInfo) -> _Answer:
    return tuple(getattr(caller, name) for name in _ANSWER_FIELDS)


def _mobile_block_answer(national: str) -> _Answer | None:
    """What the parsing path says of every mobile in this number's 7-digit block; None
    where it says something else (an unallocated block).

    phonenumbers reads an 11-digit 13X-19X string outside the carrier-selection blocks as
    exactly this national number, and no CN pattern but the mobile one accepts it, so of
    `_domestic` only the mobile pattern and the phone-table test remain; `_mobile` runs
    as it does for a parsed number.
    """
    if _is_cn_mobile(national):
        number = PhoneNumber(country_code=CN_COUNTRY_CODE, national_number=int(national))
        return _answer_of(_mobile("", number, national))
    if _phone_record(national) is not None:
        return _answer_of(_mobile("", None, national))
    return None


def _is_cn_mobile(national: str) -> bool:
    """phonenumbers' own mobile test: a possible length, then the whole pattern."""
    return len(national) in _CN_MOBILE_LENGTHS and bool(_CN_MOBILE_PATTERN.fullmatch(national))


def _area_code_answer(code: str, description_zh: str) -> _Answer:
    """What the parsing path says of an ordinary fixed line in this area code."""
    return _answer_of(_caller("", "", "fixed", _place_from_description(description_zh), code, None))


# Built at import (under 10 ms, 3 MB, most of it the block slots); blocks fill on first sight.
_INDEX = CallerIndex(
    _mobile_block_answer,
    {code: _area_code_answer(code, description) for code, description in AREA_CODES.items()},
)
