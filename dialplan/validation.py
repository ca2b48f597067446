"""Pydantic validation errors turned into plain, line-located problems for admins."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from dialplan.errors import Problem
from dialplan.yaml_source import YamlSource


def _iana_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError(
            "timezone",
            "{value} is not an IANA time zone ({hint})",
            {"value": repr(value), "hint": _zone_hint(value)},
        ) from None
    return value


def _zone_hint(value: str) -> str:
    """The zone a misspelt one was meant to be, when one is that close: a looser match
    would offer Asia/Brunei for Asia/Beijing, so China's own zone is named instead."""
    zones = sorted(available_timezones())
    same = [zone for zone in zones if zone.casefold() == value.casefold()]
    close = same or difflib.get_close_matches(value, zones, n=1, cutoff=0.9)
    return f"did you mean {close[0]}?" if close else "China's is Asia/Shanghai"


IanaZone = Annotated[str, AfterValidator(_iana_zone)]
"""A time zone name such as Asia/Shanghai, refused in plain words when ZoneInfo knows no such
zone: plans, tariffs and router.yaml each name one."""

_PLAIN_MESSAGES = {
    "missing": "required field is missing",
    "extra_forbidden": "unknown key",
    "unexpected_keyword_argument": "unknown key",  # in a dataclass, such as a tariff's rate
    "string_type": "must be text",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "list_type": "must be a list",
    "model_type": "must be a mapping of keys",
    "model_attributes_type": "must be a mapping of keys",
    "dict_type": "must be a mapping of keys",
    "decimal_parsing": "must be an amount in yuan such as '300.00'",
    "decimal_type": "must be an amount in yuan such as '300.00'",
    "decimal_max_places": "amounts are kept to the fen: at most 2 decimal places",
}


_PATTERN_WORDS: dict[str, str] = {}


def worded(pattern: str, words: str) -> str:
    """`pattern`, for a Field, with what a value mismatching it must be in plain words
    ("an Asterisk language such as zh"), said instead of the regular expression."""
    _PATTERN_WORDS[pattern] = words
    return pattern


_UNKNOWN_KEY = ("extra_forbidden", "unexpected_keyword_argument")


def problems_from_validation(
    source: YamlSource, error: ValidationError, model: type[BaseModel] | None = None
) -> Iterable[Problem]:
    """One problem per pydantic error, at the line of the field it concerns; with the
    `model` that was validated, an unknown key is told the key of its place it is closest
    to, or the keys its place accepts when none is close."""
    schema = _schema_of(model) if model is not None else None
    details = error.errors(include_url=False)
    paths = [_data_path(source.data, detail["loc"]) for detail in details]
    meant: dict[tuple[Any, ...], str] = {}  # an unknown key's path: the key it is closest to
    hints: dict[tuple[Any, ...], str] = {}  # an unknown key's path: what to write instead
    for detail, path in zip(details, paths, strict=True):
        if detail["type"] in _UNKNOWN_KEY and schema is not None and path:
            known = _keys_at(schema, path[:-1])
            close = _closest(str(path[-1]), known)
            if close is not None:
                meant[path] = close
            hints[path] = unknown_key_hint(str(path[-1]), known)
    misspelt = {(*path[:-1], key) for path, key in meant.items()}
    for detail, path in zip(details, paths, strict=True):
        if detail["type"] == "missing" and path in misspelt:
            continue  # one mistake, told once: at the misspelt key, which names this one
        yield source.problem(path, _plain(detail) + hints.get(path, ""))


_LISTED_KEYS = 12
"""Past this many keys at a place, an unknown key is told how many and the first few."""


def unknown_key_hint(key: str, known: Sequence[str]) -> str:
    """What follows 'unknown key': ' (did you mean forwarding?)', naming the known key
    closest to a misspelt `key`; else the keys accepted there, ' (expected covers,
    holidays, workdays)', or how many and the first few when they are many; empty when
    nothing is known of the place."""
    close = _closest(key, known)
    if close is not None:
        return f" (did you mean {close}?)"
    if not known:
        return ""
    if len(known) <= _LISTED_KEYS:
        return f" (expected {', '.join(known)})"
    return f" (expected one of {len(known)} keys: {', '.join(known[:5])}, ...)"


def _closest(key: str, known: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(key, list(known), n=1)
    return close[0] if close else None


@functools.cache
def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of a configuration file's model: the keys each place allows."""
    return model.model_json_schema()


def _keys_at(schema: dict[str, Any], path: tuple[Any, ...]) -> list[str]:
    """The keys a JSON schema allows in the mapping at `path` (every branch of a union),
    each once, in the order the model declares them."""
    nodes = [schema]
    for step in path:
        nodes = [c for node in _branches(schema, nodes) if (c := _child(node, step)) is not None]
    keys = (key for node in _branches(schema, nodes) for key in node.get("properties", {}))
    return list(dict.fromkeys(keys))


def _child(node: dict[str, Any], step: Any) -> dict[str, Any] | None:
    """The schema of `step` within `node`: a named property, a list's items, or the values
    of a mapping keyed freely (a menu's keys, a number's accounts)."""
    properties = node.get("properties", {})
    if isinstance(step, str) and step in properties:
        child = properties[step]
    elif isinstance(step, int):
        child = node.get("items")
    else:
        child = node.get("additionalProperties")
    return child if isinstance(child, dict) else None


def _branches(schema: dict[str, Any], nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`nodes` with every $ref resolved and every anyOf/oneOf/allOf opened."""
    found: list[dict[str, Any]] = []
    pending = list(nodes)
    while pending:
        node = pending.pop()
        if "$ref" in node:
            pending.append(schema["$defs"][node["$ref"].rsplit("/", 1)[-1]])
        for union in ("anyOf", "oneOf", "allOf"):
            pending.extend(branch for branch in node.get(union, []) if isinstance(branch, dict))
        found.append(node)
    return found


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the union-branch and validator tags pydantic puts into a location."""
    path: list[Any] = []
    node = data
    for position, step in enumerate(loc):
        is_last = position == len(loc) - 1
        if isinstance(node, dict) and isinstance(step, str) and step not in node:
            # YAML reads a menu key `1:` as a number, the model names it "1": found as such
            key = next((key for key in node if str(key) == step), None)
            if key is not None:
                node = node[key]
                path.append(step)
                continue
        if (isinstance(node, dict) and step in node) or (
            isinstance(node, list) and isinstance(step, int) and step < len(node)
        ):
            node = node[step]
            path.append(step)
        elif is_last and isinstance(node, dict):
            path.append(step)
    return tuple(path)


def _plain(detail: Any) -> str:
    kind = detail["type"]
    if kind in _PLAIN_MESSAGES:
        message = _PLAIN_MESSAGES[kind]
    elif kind in ("too_short", "too_long"):  # a list or mapping, never text
        ctx, short = detail["ctx"], kind == "too_short"
        limit = ctx["min_length"] if short else ctx["max_length"]
        counted = f"{limit} {'entry' if limit == 1 else 'entries'}"
        message = f"must have at {'least' if short else 'most'} {counted}"
        message += f" (found {ctx['actual_length']})"
    elif kind == "string_pattern_mismatch" and detail["ctx"]["pattern"] in _PATTERN_WORDS:
        message = f"must be {_PATTERN_WORDS[detail['ctx']['pattern']]}"
    else:
        message = detail["msg"].replace("Input should be", "must be")
        message = message.replace("Value error, ", "")
    if kind == "list_type" and isinstance(detail["input"], str) and '"' not in detail["input"]:
        # one value written bare where a list is due: `time: "08:00-18:00"`
        message += f' (found {detail["input"]!r}: write ["{detail["input"]}"])'
    if kind in (
        "literal_error",
        "enum",
        "string_pattern_mismatch",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "int_type",
        "string_type",
        "int_parsing",
        "int_from_float",
        "bool_type",
        "bool_parsing",
        "float_type",
        "float_parsing",
        "decimal_type",
    ):
        found = detail["input"]
        if isinstance(found, date):  # YAML reads an unquoted 2026-11-01 as a date
            text = found.isoformat()
            quoted = f': write "{text}"' if kind == "string_type" else ""
            message += f" (found {text}, read as a date{quoted})"
        else:
            message += f" (found {found!r})"
    return message
