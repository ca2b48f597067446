"""Names of China's regions, as routing plans and caller lookups spell them.

Provinces come from a fixed table of the 34 provincial-level divisions (a table of names,
not geolocation data). Cities and area codes come from phonenumbers' own CN geocoder data,
so a plan can only name a city the geocoder can put a caller in, and a misspelt city is
rejected instead of silently matching nobody.

A city's canonical name is its short Chinese name: 济南 for 济南市, 恩施 for 恩施土家族苗族自治州,
兴安 for 兴安盟, 喀什 for 喀什地区; a municipality is its own city (北京). English names are
those the geocoder pairs with the Chinese one (Jinan), compared without case, spaces,
hyphens or apostrophes, so "Xi'an", "XiAn" and "xian" are one name. A few other names
of one city are folded into it: 巴州/克州/博州 (short forms of Xinjiang prefectures), 株州
(a misspelling in the data) and 襄樊 (襄阳's name until 2010).

Area codes are found by inverting the geocoder's fixed-line prefix data: every area code
phonenumbers accepts as a fixed-line prefix (010, 02X, 0XXX) is described ("86531" ->
山东省济南市), and each city named in that description maps back to the code. No area code
is derived, and `area_code_of_city` answers None, when:
  - a city is named under several codes, because the data describes two codes alike
    (0354 and 0358 are both 山西省晋中市、吕梁市, so neither 晋中 nor 吕梁 gets a code; so
    too 海西 under 0977 and 0979, 伊犁 under 0992 and 0999);
  - a city is named only in mobile data and in no fixed-line description, typically where
    its fixed lines were merged into a neighbour's code (开封 into 0371, described as 郑州;
    莱芜 into 0531; 巢湖 into 0551);
  - the description is only the country ("中国"): service numbers, the valid code 0978,
    and mobile blocks the geocoder places nowhere more precise.
`ambiguous_cities()` lists the cities of the first kind in the installed data. A city the
geocoder only ever names together with others (三亚 in 海南省海口市、三亚市) has no English
name of its own, since the data never pairs it alone.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import phonenumbers
from phonenumbers import PhoneNumberType, geocoder
from phonenumbers.geodata import GEOCODE_DATA


@dataclass(frozen=True, slots=True)
class Province:
    """One provincial-level division: its short name, English name and other spellings."""

    zh: str
    en: str
    aliases: tuple[str, ...]


PROVINCES: tuple[Province, ...] = (
    Province("北京", "Beijing", ("北京市", "Peking")),
    Province("天津", "Tianjin", ("天津市",)),
    Province("上海", "Shanghai", ("上海市",)),
    Province("重庆", "Chongqing", ("重庆市",)),
    Province("河北", "Hebei", ("河北省",)),
    Province("山西", "Shanxi", ("山西省",)),
    Province("辽宁", "Liaoning", ("辽宁省",)),
    Province("吉林", "Jilin", ("吉林省",)),
    Province("黑龙江", "Heilongjiang", ("黑龙江省",)),
    Province("江苏", "Jiangsu", ("江苏省",)),
    Province("浙江", "Zhejiang", ("浙江省",)),
    Province("安徽", "Anhui", ("安徽省",)),
    Province("福建", "Fujian", ("福建省",)),
    Province("江西", "Jiangxi", ("江西省",)),
    Province("山东", "Shandong", ("山东省",)),
    Province("河南", "Henan", ("河南省",)),
    Province("湖北", "Hubei", ("湖北省",)),
    Province("湖南", "Hunan", ("湖南省",)),
    Province("广东", "Guangdong", ("广东省",)),
    Province("海南", "Hainan", ("海南省",)),
    Province("四川", "Sichuan", ("四川省",)),
    Province("贵州", "Guizhou", ("贵州省",)),
    Province("云南", "Yunnan", ("云南省",)),
    Province("陕西", "Shaanxi", ("陕西省",)),
    Province("甘肃", "Gansu", ("甘肃省",)),
    Province("青海", "Qinghai", ("青海省",)),
    Province("台湾", "Taiwan", ("台湾省",)),
    Province("内蒙古", "Inner Mongolia", ("内蒙古自治区", "Nei Mongol", "Neimenggu")),
    Province("广西", "Guangxi", ("广西壮族自治区",)),
    Province("西藏", "Tibet", ("西藏自治区", "Xizang")),
    Province("宁夏", "Ningxia", ("宁夏回族自治区",)),
    Province("新疆", "Xinjiang", ("新疆维吾尔自治区",)),
    Province("香港", "Hong Kong", ("香港特别行政区", "Hongkong", "HKSAR")),
    Province("澳门", "Macau", ("澳门特别行政区", "Macao")),
)
MUNICIPALITIES = frozenset({"北京", "天津", "上海", "重庆"})

# Other names of one city: common short forms of Xinjiang prefectures (the phone package
# uses them), a misspelling in the geocoder data (株州), a former name (襄樊, until 2010).
_CITY_NAME_VARIANTS = {
    "巴州": "巴音郭楞",
    "克州": "克孜勒苏",
    "博州": "博尔塔拉",
    "株州": "株洲",
    "襄樊": "襄阳",
}
_ETHNIC_GROUPS = (
    "土家族|布依族|景颇族|傈僳族|哈尼族|朝鲜族|蒙古族|白族|傣族|壮族|苗族|彝族|藏族|羌族|回族|侗族"
    "|哈萨克|柯尔克孜|蒙古"
)
_AUTONOMOUS_PREFECTURE = re.compile(rf"(.{{2,}}?)(?:{_ETHNIC_GROUPS})+自治州")
_CITY_SUFFIXES = ("市", "地区", "林区", "盟")
_COUNTRY_ONLY = frozenset({"中国", "China"})


def _fold(name: str) -> str:
    """Spelling-insensitive key for English names: case, spaces, hyphens, apostrophes."""
    return re.sub(r"[\s\-'’.]", "", name).casefold()


_PROVINCE_BY_NAME = {
    _fold(name): province.zh
    for province in PROVINCES
    for name in (province.zh, province.en, *province.aliases)
}
_PROVINCE_EN = {province.zh: province.en for province in PROVINCES}
# Longest first, so 广西壮族自治区南宁市 loses its whole province name, not just 广西.
_PROVINCE_PREFIXES = sorted(
    ((name, province.zh) for province in PROVINCES for name in (province.zh, *province.aliases)),
    key=lambda pair: len(pair[0]),
    reverse=True,
)


def canonical_province(name: str) -> str | None:
    """山东省 / 山东 / Shandong / shandong -> 山东; None for a name that is no province."""
    return _PROVINCE_BY_NAME.get(_fold(name))


def province_en(province_zh: str) -> str | None:
    """English name of a canonical province: 内蒙古 -> Inner Mongolia."""
    return _PROVINCE_EN.get(province_zh)


def place_name(province: str | None, city: str | None, separator: str = " ") -> str:
    """'山东 济南' as people read a caller's region; a municipality is its own city, so
    上海/上海 is named once ('上海'); '' when neither is known."""
    return separator.join(dict.fromkeys(part for part in (province, city) if part))


def short_city_name(name: str) -> str:
    """济南市 -> 济南, 恩施土家族苗族自治州 -> 恩施, 兴安盟 -> 兴安; two-character names stay."""
    name = name.strip()
    prefecture = _AUTONOMOUS_PREFECTURE.fullmatch(name)
    if prefecture:
        return prefecture.group(1)
    for suffix in _CITY_SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            name = name.removesuffix(suffix)
            break
    return _CITY_NAME_VARIANTS.get(name, name)


def split_place(description_zh: str) -> tuple[str | None, tuple[str, ...]]:
    """A geocoder description -> (province, cities): 辽宁省沈阳市、铁岭市 -> (辽宁, (沈阳, 铁岭)).

    A municipality is its own city; a description that is only the country, or that names
    no province, gives (None, ()).
    """
    found = next((pair for pair in _PROVINCE_PREFIXES if description_zh.startswith(pair[0])), None)
    if found is None:
        return None, ()
    prefix, province = found
    rest = description_zh.removeprefix(prefix)
    if province in MUNICIPALITIES:
        return province, (province,)
    cities = dict.fromkeys(short_city_name(part) for part in rest.split("、") if part.strip())
    return province, tuple(cities)


def _split_place_en(description_en: str) -> tuple[str | None, tuple[str, ...]]:
    """'Jinan, Shandong' -> (山东, ('Jinan',)); 'Beijing' -> (北京, ('Beijing',))."""
    city_part, _, province_part = description_en.rpartition(", ")
    province = canonical_province(province_part)
    if province is None:
        return None, ()
    if not city_part:
        return province, (province_part,)
    return province, tuple(city_part.split("/"))


@dataclass(frozen=True, slots=True)
class _CityIndex:
    """Cities the CN geocoder knows, their English names, and the names that find them."""

    english: dict[tuple[str, str], str | None]
    by_name: dict[str, frozenset[tuple[str, str]]]


def _build_city_index() -> _CityIndex:
    """Every city of the CN geocoder data, with the English name paired with it.

    English names come from descriptions that name one city in both languages, the most
    frequent pairing winning (a stray 'Jinchang' paired once with 武威 loses to 'Wuwei').
    Descriptions that write the city as it is canonically written (湖北省襄阳市) outvote
    those under another of its names (湖北省襄樊市), however many; the English name paired
    with another of its names (Xiangfan) still finds the city.
    """
    direct_votes: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    variant_votes: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    cities: set[tuple[str, str]] = set()
    seen: set[tuple[str, str]] = set()
    for prefix, names in GEOCODE_DATA.items():
        pair = (names.get("zh", ""), names.get("en", ""))
        if not prefix.startswith("86") or pair in seen:
            continue
        seen.add(pair)
        province, cities_zh = split_place(pair[0])
        if province is None:
            continue
        cities.update((province, city) for city in cities_zh)
        province_of_en, cities_en = _split_place_en(pair[1])
        if len(cities_zh) == 1 and len(cities_en) == 1 and province_of_en == province:
            place = (province, cities_zh[0])
            votes = direct_votes if cities_zh[0] in pair[0] else variant_votes
            votes[place][cities_en[0]] += 1
    english = {}
    by_name: defaultdict[str, set[tuple[str, str]]] = defaultdict(set)
    for place in cities:
        votes = direct_votes[place] or variant_votes[place]
        english[place] = votes.most_common(1)[0][0] if votes else None
        by_name[place[1]].add(place)
        for name in {english[place], *variant_votes[place]} - {None}:
            by_name[_fold(name)].add(place)
    return _CityIndex(english, {name: frozenset(found) for name, found in by_name.items()})


def canonical_city(name: str, province: str | None = None) -> str | None:
    """济南市 / 济南 / Jinan -> 济南; None if the geocoder knows no such city.

    An English name shared by cities of different provinces (Suzhou: 苏州 and 宿州) is
    None unless `province` tells which one is meant.
    """
    found = cities_named(name)
    if province is not None:
        wanted = canonical_province(province)
        found = frozenset(place for place in found if place[0] == wanted)
    names = {city for _, city in found}
    return names.pop() if len(names) == 1 else None


def cities_named(name: str) -> frozenset[tuple[str, str]]:
    """Every (province, city) a name may mean: two for an English name two cities share
    (Suzhou: 江苏 苏州 and 安徽 宿州), none for a name the geocoder does not know."""
    short = short_city_name(name)
    return _CITIES.by_name.get(short) or _CITIES.by_name.get(_fold(short), frozenset())


def known_cities() -> frozenset[tuple[str, str]]:
    """Every (province, city) the CN geocoder names."""
    return frozenset(_CITIES.english)


def city_en(province: str, city: str) -> str | None:
    """English name the geocoder gives a canonical city: (山东, 济南) -> Jinan."""
    return _CITIES.english.get((province, city))


def _area_code_candidates() -> list[str]:
    """Every shape a CN area code can take without its 0: 10, 2X, and 3XX to 9XX."""
    return ["10", *(f"2{d}" for d in range(10)), *(str(n) for n in range(300, 1000))]


def _fixed_line_sample(code: str) -> phonenumbers.PhoneNumber | None:
    """A fixed-line number in this area code, if phonenumbers accepts the code at all."""
    for subscriber in ("23456789", "2345678"):
        number = phonenumbers.parse(f"0{code}{subscriber}", "CN")
        if phonenumbers.number_type(number) == PhoneNumberType.FIXED_LINE:
            return number
    return None


def _build_area_codes() -> dict[str, str]:
    """Every fixed-line area code phonenumbers knows, with its description: 0531 -> 山东省济南市."""
    table = {}
    for code in _area_code_candidates():
        sample = _fixed_line_sample(code)
        if sample is not None:
            table[f"0{code}"] = geocoder.description_for_valid_number(sample, "zh")
    return table


def _build_codes_by_city(area_codes: Mapping[str, str]) -> dict[tuple[str, str], frozenset[str]]:
    codes: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for code, description in area_codes.items():
        province, cities = split_place(description)
        for city in cities:
            codes[province, city].add(code)
    return {city: frozenset(found) for city, found in codes.items()}


# Built at import (about 0.2 s) so that no call pays for it.
_CITIES = _build_city_index()
AREA_CODES: Mapping[str, str] = MappingProxyType(_build_area_codes())
_CODES_BY_CITY = _build_codes_by_city(AREA_CODES)


def area_code_of_city(province: str, city: str) -> str | None:
    """The one area code of a city: (山东, 济南) -> 0531; None when there is not exactly one."""
    codes = _CODES_BY_CITY.get((province, city), frozenset())
    return next(iter(codes)) if len(codes) == 1 else None


def ambiguous_cities() -> dict[tuple[str, str], frozenset[str]]:
    """Cities named under several area codes, for which no single code can be derived."""
    return {city: codes for city, codes in _CODES_BY_CITY.items() if len(codes) > 1}


def is_country_only(description: str) -> bool:
    """Whether a geocoder description says no more than the country."""
    return description in _COUNTRY_ONLY or not description
