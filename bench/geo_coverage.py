"""How much of China's mobile numbering each location source places, and how they agree.

Walks every 7-digit mobile prefix from 1300000 to 1999999 (one number per prefix, the
prefix followed by 0000) and counts what phonenumbers' geocoder and carrier data resolve,
what the `phone` package's prefix table resolves, and what `dialplan.geo.locate` makes of
the two. Then lists the cases where no area code can be derived from phonenumbers'
fixed-line data. Takes two to four minutes on two cores; it is not a test.

    python bench/geo_coverage.py
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import phone
import phonenumbers
from phonenumbers import PhoneNumberType, carrier, geocoder

from dialplan import regions
from dialplan.geo import MIN_PRECISE_PREFIX_DIGITS, geocoder_prefix_digits, locate

FIRST_PREFIX, LAST_PREFIX = 1_300_000, 1_999_999
BLOCK = 10_000  # one three-digit block (130, 131, ...) of 7-digit prefixes


def _phone_city(record: dict[str, str]) -> tuple[str | None, str | None]:
    province = regions.canonical_province(record["province"])
    if province in regions.MUNICIPALITIES:
        return province, province
    if province is None:
        return None, None
    return province, regions.canonical_city(record["city"], province) or regions.short_city_name(
        record["city"]
    )


def count_block(first: int) -> Counter[str]:
    """Counters for the 10,000 prefixes of one three-digit block."""
    table = phone.Phone()
    counts: Counter[str] = Counter()
    block = str(first)[:3]
    for prefix in range(first, first + BLOCK):
        national = f"{prefix}0000"
        number = phonenumbers.parse(national, "CN")
        record = table.find(str(prefix))
        info = locate(national)
        valid = phonenumbers.number_type(number) == PhoneNumberType.MOBILE
        description = geocoder.description_for_valid_number(number, "zh") if valid else ""
        province, cities = regions.split_place(description)
        precise = geocoder_prefix_digits(national) >= MIN_PRECISE_PREFIX_DIGITS
        tallies = {
            "all": True,
            "pn_mobile": valid,
            "pn_province": province is not None,
            "pn_city": len(cities) == 1,
            "pn_precise": province is not None and precise,
            "pn_coarse": province is not None and not precise,
            "pn_carrier": valid and bool(carrier.name_for_valid_number(number, "en")),
            "phone": record is not None,
            "phone_carrier": record is not None and bool(record["phone_type"]),
            "combined_mobile": info.kind == "mobile",
            "combined_province": info.province_zh is not None,
            "combined_city": info.city_zh is not None,
            "combined_city_en": info.city_en is not None,
            "combined_area_code": info.area_code is not None,
            "combined_carrier": info.carrier is not None,
        }
        if record is not None:
            phone_province, phone_city = _phone_city(record)
            tallies["combined_area_code_agrees_with_phone"] = info.area_code == record["area_code"]
            tallies["combined_area_code_known_and_phone"] = info.area_code is not None
            if province is not None and len(cities) == 1:
                depth = "precise" if precise else "coarse"
                tallies[f"both_{depth}"] = True
                tallies[f"both_{depth}_province_agrees"] = province == phone_province
                tallies[f"both_{depth}_city_agrees"] = cities[0] == phone_city
        for name, hit in tallies.items():
            if hit:
                counts[name] += 1
                counts[f"{block}:{name}"] += 1
    return counts


def _percent(part: int, whole: int) -> str:
    return f"{part:>8,} {100 * part / whole:6.2f}%" if whole else f"{part:>8,}      -"


def report(counts: Counter[str]) -> None:
    total = counts["all"]
    print(f"mobile prefixes walked: {total:,} (7-digit, {FIRST_PREFIX}..{LAST_PREFIX})\n")
    rows = [
        ("phonenumbers: valid mobile", "pn_mobile"),
        ("phonenumbers: province placed", "pn_province"),
        ("phonenumbers: city placed", "pn_city"),
        (f"  through a prefix of >= {MIN_PRECISE_PREFIX_DIGITS} digits", "pn_precise"),
        (f"  only through a catch-all < {MIN_PRECISE_PREFIX_DIGITS} digits", "pn_coarse"),
        ("phonenumbers: carrier", "pn_carrier"),
        ("phone: prefix placed (province, city)", "phone"),
        ("phone: carrier", "phone_carrier"),
        ("locate(): kind mobile", "combined_mobile"),
        ("locate(): province", "combined_province"),
        ("locate(): city", "combined_city"),
        ("locate(): city in English", "combined_city_en"),
        ("locate(): area code", "combined_area_code"),
        ("locate(): carrier", "combined_carrier"),
    ]
    print(f"{'source':<46}{'prefixes':>9} {'share':>7}")
    for label, key in rows:
        print(f"{label:<46}{_percent(counts[key], total)}")

    print("\nagreement where both sources place a city (phone's names mapped to the geocoder's):")
    for depth in ("precise", "coarse"):
        both = counts[f"both_{depth}"]
        print(
            f"  phonenumbers {depth:<8} {both:>8,} prefixes: province agrees "
            f"{_percent(counts[f'both_{depth}_province_agrees'], both)}, city agrees "
            f"{_percent(counts[f'both_{depth}_city_agrees'], both)}"
        )
    with_phone = counts["phone"]
    print(
        "  locate() area code equals phone's own area code: "
        f"{_percent(counts['combined_area_code_agrees_with_phone'], with_phone)} of {with_phone:,}"
        f" (locate() has one for {counts['combined_area_code_known_and_phone']:,})"
    )

    print("\nper three-digit block: phonenumbers province / phone / locate() province / area code")
    for first in range(FIRST_PREFIX, LAST_PREFIX + 1, BLOCK):
        block = str(first)[:3]
        shares = [
            100 * counts[f"{block}:{key}"] / BLOCK
            for key in ("pn_province", "phone", "combined_province", "combined_area_code")
        ]
        if any(shares):
            print(f"  {block}: " + " / ".join(f"{share:5.1f}%" for share in shares))


def report_area_code_gaps() -> None:
    print(f"\nfixed-line area codes phonenumbers knows: {len(regions.AREA_CODES)}")
    country_only = [
        code for code, text in regions.AREA_CODES.items() if regions.is_country_only(text)
    ]
    print(f"  described only as the country: {', '.join(country_only) or 'none'}")
    print("  cities named under several codes (no code derived):")
    for (province, city), codes in sorted(regions.ambiguous_cities().items()):
        print(f"    {province} {city}: {', '.join(sorted(codes))}")
    without = sorted(
        f"{province} {city}"
        for (province, city) in regions.known_cities()
        if regions.area_code_of_city(province, city) is None
        and (province, city) not in regions.ambiguous_cities()
    )
    print(f"  cities in no fixed-line description ({len(without)}): {', '.join(without)}")


def main() -> None:
    started = time.perf_counter()
    with ProcessPoolExecutor() as pool:
        totals: Counter[str] = sum(
            pool.map(count_block, range(FIRST_PREFIX, LAST_PREFIX + 1, BLOCK)), Counter()
        )
    report(totals)
    report_area_code_gaps()
    print(f"\nwalked in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    main()
