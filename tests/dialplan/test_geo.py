"""Caller-ID normalisation and geolocation: every shape of caller ID Asterisk may hand over."""

from __future__ import annotations

import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dialplan.geo import (
    KINDS,
    MAX_CALLER_ID_CHARS,
    canonical_city,
    canonical_province,
    clear_lookup_cache,
    indexed_mobile_blocks,
    locate,
    locate_by_parsing,
    locate_from_index,
    lookup_cache_info,
)
from dialplan.matchers import describe_caller
from dialplan.regions import (
    AREA_CODES,
    PROVINCES,
    ambiguous_cities,
    area_code_of_city,
    place_name,
)


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "+8613800138000",
        "+86 138 0013 8000",
        "008613800138000",
        "0086 138-0013-8000",
        "8613800138000",
        "86 138 0013 8000",
        " 138 0013 8000 ",
        "1259313800138000",  # IP long-distance prefix before the number
    ],
)
def test_mobile_in_any_format_normalises_to_its_eleven_digits(raw: str) -> None:
    caller = locate(raw)
    assert (caller.kind, caller.number) == ("mobile", "13800138000")


@pytest.mark.parametrize(
    ("raw", "number", "area_code"),
    [
        ("01088889999", "01088889999", "010"),
        ("010-8888-9999", "01088889999", "010"),
        ("(010) 8888 9999", "01088889999", "010"),
        ("+86 10 8888 9999", "01088889999", "010"),
        ("86 10 88889999", "01088889999", "010"),
        ("0086 (0)10 8888 9999", "01088889999", "010"),
        ("021-12345678", "02112345678", "021"),
        ("053188889999", "053188889999", "0531"),
        ("0531-8888-9999", "053188889999", "0531"),
        ("+86 531 8888 9999", "053188889999", "0531"),
        ("86 0531 8888 9999", "053188889999", "0531"),
        ("0755 8888 9999", "075588889999", "0755"),
        ("0755.8888.9999", "075588889999", "0755"),
    ],
)
def test_fixed_line_keeps_leading_zero_and_area_code(raw: str, number: str, area_code: str) -> None:
    caller = locate(raw)
    assert (caller.kind, caller.number, caller.area_code) == ("fixed", number, area_code)


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("4001234567", "4001234567"),
        ("400-123-4567", "4001234567"),
        ("400 123 4567", "4001234567"),
        ("+86 400 123 4567", "4001234567"),
        ("8001234567", "8001234567"),
        ("800-123-4567", "8001234567"),
        ("10086", "10086"),
        ("95588", "95588"),
    ],
)
def test_400_800_and_short_codes_are_service_numbers_with_no_place(raw: str, number: str) -> None:
    caller = locate(raw)
    assert (caller.kind, caller.number) == ("service", number)
    assert (caller.province_zh, caller.city_zh, caller.area_code) == (None, None, None)


@pytest.mark.parametrize(
    ("raw", "number", "country"),
    [
        ("+441234567890", "+441234567890", "GB"),
        ("0044 1234 567890", "+441234567890", "GB"),
        ("+1 202 555 0123", "+12025550123", "US"),
        ("+81 3-1234-5678", "+81312345678", "JP"),
    ],
)
def test_international_number_is_e164_with_its_country(raw: str, number: str, country: str) -> None:
    caller = locate(raw)
    assert (caller.kind, caller.number, caller.country) == ("international", number, country)
    assert caller.province_zh is None and caller.area_code is None


@pytest.mark.parametrize(
    ("raw", "province_zh", "province_en"),
    [("+852 2123 4567", "香港", "Hong Kong"), ("+853 2888 1234", "澳门", "Macau")],
)
def test_hong_kong_and_macau_callers_are_international_but_carry_their_region(
    raw: str, province_zh: str, province_en: str
) -> None:
    caller = locate(raw)
    assert (caller.kind, caller.province_zh, caller.province_en) == (
        "international",
        province_zh,
        province_en,
    )


@pytest.mark.parametrize(
    "raw",
    [
        "anonymous",
        "Anonymous",
        "unknown",
        "UNKNOWN",
        "Restricted",
        "private",
        "withheld",
        "anonymous@anonymous.invalid",
        "",
        "   ",
        None,
        "\x00\x1b",
    ],
)
def test_withheld_or_missing_caller_id_is_unknown_and_anonymous(raw: str | None) -> None:
    caller = locate(raw)
    assert (caller.kind, caller.number, caller.anonymous) == ("unknown", "", True)
    assert caller.province_zh is None and caller.carrier is None


@pytest.mark.parametrize(
    "raw",
    [
        "abc",
        "138abc00138000",
        "DROP TABLE cdr;",
        "12",
        "+",
        "(",
        "1380013800012345678901",
        "1" * 80,
        "13800138000" + "9" * MAX_CALLER_ID_CHARS,
        "13800138000" + " " * MAX_CALLER_ID_CHARS,
        "88889999",  # a local number without its area code cannot be placed
    ],
)
def test_garbage_is_unknown_but_not_anonymous(raw: str) -> None:
    caller = locate(raw)
    assert (caller.kind, caller.number, caller.anonymous) == ("unknown", "", False)


def test_raw_is_bounded_and_free_of_control_characters() -> None:
    caller = locate("\x07138\r\n0013\t8000\x00" + "x" * 1000)
    assert caller.kind == "unknown"
    assert len(caller.raw) <= MAX_CALLER_ID_CHARS
    assert all(char.isprintable() for char in caller.raw)
    assert locate("138\r\n0013\t8000\x00").raw == "13800138000"


@pytest.mark.parametrize(
    ("raw", "province_zh", "province_en", "city_zh", "city_en", "area_code", "carrier"),
    [
        ("13800138000", "北京", "Beijing", "北京", "Beijing", "010", "China Mobile"),
        ("18612345678", "北京", "Beijing", "北京", "Beijing", "010", "China Unicom"),
        ("13312345678", "贵州", "Guizhou", "遵义", "Zunyi", "0851", "China Telecom"),
        ("15866666666", "山东", "Shandong", "滨州", "Binzhou", "0543", "China Mobile"),
        ("13012345678", "重庆", "Chongqing", "重庆", "Chongqing", "023", "China Unicom"),
        ("053188889999", "山东", "Shandong", "济南", "Jinan", "0531", None),
        ("01088889999", "北京", "Beijing", "北京", "Beijing", "010", None),
        ("02112345678", "上海", "Shanghai", "上海", "Shanghai", "021", None),
        ("075588889999", "广东", "Guangdong", "深圳", "Shenzhen", "0755", None),
        ("07711234567", "广西", "Guangxi", "南宁", "Nanning", "0771", None),
        ("04711234567", "内蒙古", "Inner Mongolia", "呼和浩特", "Hohhot", "0471", None),
    ],
)
def test_domestic_caller_is_placed_by_the_geocoder(
    raw: str,
    province_zh: str,
    province_en: str,
    city_zh: str,
    city_en: str,
    area_code: str,
    carrier: str | None,
) -> None:
    caller = locate(raw)
    assert (
        caller.province_zh,
        caller.province_en,
        caller.city_zh,
        caller.city_en,
        caller.area_code,
        caller.carrier,
    ) == (province_zh, province_en, city_zh, city_en, area_code, carrier)
    assert caller.country == "CN" and not caller.anonymous


@pytest.mark.parametrize(
    ("raw", "province_zh", "city_zh", "city_en", "area_code", "carrier"),
    [
        ("17012345678", "浙江", "杭州", "Hangzhou", "0571", "China Telecom"),
        ("19912345678", "河北", "唐山", "Tangshan", "0315", "China Telecom"),
        ("19212345678", "重庆", "重庆", "Chongqing", "023", "China Broadnet"),
    ],
)
def test_mobile_blocks_the_geocoder_places_only_as_china_are_placed_by_the_phone_table(
    raw: str, province_zh: str, city_zh: str, city_en: str, area_code: str, carrier: str
) -> None:
    caller = locate(raw)
    assert (caller.kind, caller.province_zh, caller.city_zh, caller.city_en) == (
        "mobile",
        province_zh,
        city_zh,
        city_en,
    )
    assert (caller.area_code, caller.carrier) == (area_code, carrier)


def test_mobile_placed_only_by_a_catch_all_prefix_takes_the_phone_tables_city() -> None:
    # The geocoder's entry 86173 puts every 173 number in Beijing; the block is not all there.
    caller = locate("17312345678")
    assert (caller.province_zh, caller.city_zh, caller.area_code) == ("江苏", "连云港", "0518")


def test_fixed_line_whose_code_covers_several_cities_has_a_province_but_no_city() -> None:
    caller = locate("0354 1234567")
    assert (caller.kind, caller.province_zh, caller.city_zh, caller.area_code) == (
        "fixed",
        "山西",
        None,
        "0354",
    )


def test_fixed_line_code_described_only_as_china_keeps_its_area_code() -> None:
    caller = locate("0978 1234567")
    assert (caller.kind, caller.province_zh, caller.area_code) == ("fixed", None, "0978")


def test_repeated_lookup_is_answered_from_the_cache() -> None:
    first = locate("+86 139 0000 1111")
    hits = lookup_cache_info().hits
    second = locate("+86 139 0000 1111")
    assert second is first
    assert lookup_cache_info().hits == hits + 1


@given(st.one_of(st.none(), st.text(), st.text(alphabet="+0123456789 ()-.", max_size=40)))
def test_locate_never_raises_and_always_answers_one_of_the_five_kinds(raw: str | None) -> None:
    caller = locate(raw)
    assert caller.kind in KINDS
    assert len(caller.raw) <= MAX_CALLER_ID_CHARS
    assert caller == locate(raw)
    if caller.kind == "unknown":
        assert caller.number == ""


@given(st.text(alphabet="+0123456789 -", min_size=3, max_size=24))
@example("+49000000")  # phonenumbers formats a national number of zeros one zero short
@example("+92- 003-4774666-")  # a trunk 0 after the country code drops on the 2nd reading
@settings(max_examples=500)
def test_a_normalised_number_normalises_to_itself(raw: str) -> None:
    caller = locate(raw)
    if caller.kind != "unknown":
        again = locate(caller.number)
        assert (again.kind, again.number, again.area_code) == (
            caller.kind,
            caller.number,
            caller.area_code,
        )


@pytest.mark.parametrize(
    ("name", "province"),
    [
        ("山东省", "山东"),
        ("山东", "山东"),
        ("Shandong", "山东"),
        ("shandong", "山东"),
        (" SHANDONG ", "山东"),
        ("北京市", "北京"),
        ("内蒙古自治区", "内蒙古"),
        ("Inner Mongolia", "内蒙古"),
        ("inner-mongolia", "内蒙古"),
        ("广西壮族自治区", "广西"),
        ("Guangxi", "广西"),
        ("Shanxi", "山西"),
        ("Shaanxi", "陕西"),
        ("新疆维吾尔自治区", "新疆"),
        ("Tibet", "西藏"),
        ("香港特别行政区", "香港"),
        ("Macao", "澳门"),
    ],
)
def test_canonical_province_accepts_full_short_and_english_names(name: str, province: str) -> None:
    assert canonical_province(name) == province


@pytest.mark.parametrize("name", ["Atlantis", "", "山东市", "Shandongg"])
def test_canonical_province_rejects_names_that_are_no_province(name: str) -> None:
    assert canonical_province(name) is None


def test_all_34_provincial_divisions_are_known_by_both_names() -> None:
    assert len(PROVINCES) == 34
    for province in PROVINCES:
        assert canonical_province(province.zh) == province.zh
        assert canonical_province(province.en) == province.zh


@pytest.mark.parametrize(
    ("name", "city"),
    [
        ("济南市", "济南"),
        ("济南", "济南"),
        ("Jinan", "济南"),
        ("JINAN", "济南"),
        ("Xi'an", "西安"),
        ("北京", "北京"),
        ("Beijing", "北京"),
        ("深圳市", "深圳"),
        ("恩施土家族苗族自治州", "恩施"),
        ("恩施", "恩施"),
        ("兴安盟", "兴安"),
        ("巴州", "巴音郭楞"),
        ("襄樊", "襄阳"),
        ("Xiangfan", "襄阳"),
        ("株州", "株洲"),
    ],
)
def test_canonical_city_accepts_names_the_geocoder_knows(name: str, city: str) -> None:
    assert canonical_city(name) == city


@pytest.mark.parametrize("name", ["Jinann", "济难", "", "Gotham"])
def test_canonical_city_rejects_a_misspelt_city(name: str) -> None:
    assert canonical_city(name) is None


def test_english_name_of_two_cities_needs_the_province() -> None:
    assert canonical_city("Suzhou") is None
    assert canonical_city("Suzhou", province="Jiangsu") == "苏州"
    assert canonical_city("Suzhou", province="安徽") == "宿州"


def test_area_code_of_a_city_comes_from_the_fixed_line_descriptions() -> None:
    assert area_code_of_city("山东", "济南") == "0531"
    assert area_code_of_city("北京", "北京") == "010"
    assert area_code_of_city("广东", "深圳") == "0755"


def test_city_named_under_two_area_codes_gets_none() -> None:
    assert ambiguous_cities()[("山西", "晋中")] == frozenset({"0354", "0358"})
    assert area_code_of_city("山西", "晋中") is None


# The index (dialplan.geo_index) answers the common shapes without parsing; everything
# below holds it to exactly what parsing answers. bench/geo_fastpath.py walks all blocks.

_CALLER_ID_FORMATS = ("{n}", "+86{n}", "+86 {n}", "0086{n}", "86-{n}")


def _mobiles_of_every_block(rng: random.Random) -> list[str]:
    """Ten 7-digit prefixes of every 3-digit block 130-199, each with two suffixes."""
    numbers = []
    for block in range(130, 200):
        for prefix in rng.sample(range(block * 10_000, (block + 1) * 10_000), 10):
            numbers += [f"{prefix}{rng.randrange(10_000):04d}" for _ in range(2)]
    return numbers


def test_index_answers_every_mobile_parsing_calls_mobile_and_answers_it_identically() -> None:
    rng = random.Random(400)
    for national in _mobiles_of_every_block(rng):
        raw = rng.choice(_CALLER_ID_FORMATS).format(n=national)
        parsed = locate_by_parsing(raw)
        expected = parsed if parsed.kind == "mobile" and not national.startswith("179") else None
        assert locate_from_index(raw) == expected, raw


def test_a_mobile_blocks_answer_holds_for_every_number_and_format_in_the_block() -> None:
    clear_lookup_cache()
    first = locate_from_index("+86 158 6666 0000")
    assert first == locate_by_parsing("+86 158 6666 0000")
    assert first is not None and indexed_mobile_blocks() == 1
    for raw in ("15866669999", "0086 158-6666-1234", "86 15866665555"):
        assert locate_from_index(raw) == locate_by_parsing(raw)
    assert indexed_mobile_blocks() == 1


def _subscriber(rng: random.Random, first_digit: int, length: int) -> str:
    return f"{first_digit}{rng.randrange(10 ** (length - 1)):0{length - 1}d}"


@pytest.mark.parametrize("code", sorted(AREA_CODES))
def test_index_answers_every_ordinary_fixed_line_of_an_area_code_identically(code: str) -> None:
    rng = random.Random(code)
    for first_digit in range(2, 9):
        for length in (6, 7, 8, 9):
            subscriber = _subscriber(rng, first_digit, length)
            for raw in (
                f"{code}{subscriber}",
                f"+86 {code[1:]} {subscriber}",
                f"({code}) {subscriber}",
            ):
                parsed = locate_by_parsing(raw)
                assert locate_from_index(raw) == (parsed if parsed.kind == "fixed" else None), raw


@pytest.mark.parametrize("code", sorted(AREA_CODES))
def test_fixed_line_whose_subscriber_starts_0_1_or_9_is_left_to_parsing(code: str) -> None:
    rng = random.Random(code)
    for first_digit in (0, 1, 9):
        for length in (5, 7, 8):
            raw = f"{code}-{_subscriber(rng, first_digit, length)}"
            assert locate_from_index(raw) is None
            assert locate(raw) == locate_by_parsing(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "+86 138 0013 8000",
        "0086 138-0013-8000",
        "86 138 0013 8000",
        "19212345678",
        "17312345678",
        "010-8888-9999",
        "(010) 8888 9999",
        "0086 (0)10 8888 9999",
        "86 0531 8888 9999",
        "0755.8888.9999",
        "0471 2345678",
    ],
)
def test_common_shapes_are_answered_by_the_index(raw: str) -> None:
    assert locate_from_index(raw) == locate_by_parsing(raw) == locate(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "1259313800138000",  # IP long-distance prefix before the number
        "17951 0531 8888 9999",
        "17912345678",  # 179XX is a carrier-selection prefix, not a mobile block
        "0531 96123",  # shared-cost service under an area code
        "010 12345",
        "01080012345",  # 010 8... needs more than its first digit to be a fixed line
        "013800138000",
        "53188889999",
        "4001234567",
        "+441234567890",
        "+852 2123 4567",
        "95588",
        "anonymous",
    ],
)
def test_other_shapes_are_left_to_parsing(raw: str) -> None:
    assert locate_from_index(raw) is None
    assert locate(raw) == locate_by_parsing(raw)


@given(
    st.one_of(
        st.text(alphabet="+0123456789 ()-.", max_size=24),
        st.from_regex(r"(\+86 ?|0086|86)?1[3-9][0-9]{9}", fullmatch=True),
        st.from_regex(
            r"(\+86 ?|0086 ?)?0?(10|2[0-9]|[3-9][0-9]{2})[ -]?[0-9]{5,9}", fullmatch=True
        ),
    )
)
def test_locate_answers_what_parsing_answers(raw: str) -> None:
    assert locate(raw) == locate_by_parsing(raw)


@pytest.mark.parametrize(
    ("province", "city", "shown"),
    [
        ("上海", "上海", "上海"),
        ("山东", "济南", "山东 济南"),
        ("山东", None, "山东"),
        (None, None, ""),
    ],
)
def test_a_region_names_a_municipality_once(
    province: str | None, city: str | None, shown: str
) -> None:
    """Shanghai, Beijing, Tianjin and Chongqing are their own province and city."""
    assert place_name(province, city) == shown


def test_a_trace_names_a_municipal_caller_once() -> None:
    assert describe_caller(locate("02161234567")) == "02161234567 (上海/021)"
