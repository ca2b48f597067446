"""Quoting of untrusted strings for AGI command lines and Dial arguments.

Asterisk reads one AGI command per line (at most 2047 bytes, `AGI_BUF_LEN` in res_agi.c)
and splits it into words at spaces; inside double quotes a space is kept and a backslash
makes the next character literal (`SET VARIABLE NAME "a b \\"c\\" d"` stores `a b "c" d`).
A line break in a caller-supplied string would end the command early and run the rest as a
second command, so every such string passes through `quote` before it joins a command line.

Application arguments have a second syntax on top: Dial splits its argument at `,`, rings
several destinations joined by `&`, reads options such as `L(5000)` in parentheses, and
with res_agi's 1.4 compatibility turns `|` into `,`. A value spliced into them must carry
none of these: `dial_token` refuses such values rather than mangling them, because a
number with its separators stripped is a different number.
"""

import re
import unicodedata

DEFAULT_MAX_LEN = 256
"""Characters kept from one quoted value: far above any caller name or number."""

# Unicode categories removed from quoted values: control characters (CR, LF, NUL, ESC ...),
# lone surrogates (not encodable as UTF-8) and the line/paragraph separators.
_STRIPPED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})

_DIAL_TOKEN = re.compile(r"[0-9A-Za-z+*#._-]+")
_DIAL_SYNTAX = frozenset(',|&()"\\')
_OPTION_SEPARATORS = frozenset(',|&"\\')
MAX_DIAL_TOKEN_LEN = 64


class UnsafeArgument(ValueError):
    """A value would change the structure of an application's argument string."""


def clean(value: str, max_len: int = DEFAULT_MAX_LEN) -> str:
    """Return `value` without control characters, cut to `max_len` characters.

    This is the text Asterisk stores for `quote(value)`.
    """
    if max_len < 0:
        raise ValueError("max_len must not be negative")
    if value.isprintable():
        # Printable text holds none of the stripped categories (nor any other control or
        # separator but the space): the per-character walk below is for the rare rest,
        # and every call cleans its caller ID, name and channel and quotes several values.
        return value[:max_len]
    kept = "".join(ch for ch in value if unicodedata.category(ch) not in _STRIPPED_CATEGORIES)
    return kept[:max_len]


def quote(value: str, max_len: int = DEFAULT_MAX_LEN) -> str:
    """Return `value` as one double-quoted AGI argument.

    Control characters (CR and LF above all) are removed, the length is bounded (before
    escaping, so an escape is never cut in half), and `"` and `\\` are backslash-escaped.
    """
    text = clean(value, max_len)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dial_token(value: str, max_len: int = MAX_DIAL_TOKEN_LEN) -> str:
    """Return `value` if it may be spliced into a Dial argument, else raise UnsafeArgument.

    Allowed: letters, digits and `+ * # . _ -`. Refused besides the Dial syntax
    (`, | & ( )`): `@` and `/`, which would pick another context, host or technology.
    """
    if not value:
        raise UnsafeArgument("empty value")
    if len(value) > max_len:
        raise UnsafeArgument(f"value longer than {max_len} characters")
    if not _DIAL_TOKEN.fullmatch(value):
        raise UnsafeArgument(f"value {value!r} holds characters outside [0-9A-Za-z+*#._-]")
    return value


def _holds_any(text: str, forbidden: frozenset[str]) -> bool:
    """Whether `text` holds a character of `forbidden` or a control character.

    Printable text holds no control character, so the usual case is two scans in C rather
    than a Unicode category lookup per character (every Dial attempt checks its argument).
    """
    if text.isprintable():
        return not forbidden.isdisjoint(text)
    return any(ch in forbidden or unicodedata.category(ch) == "Cc" for ch in text)


def dial_argument(template: str, number: str, timeout_s: int, options: str = "") -> str:
    """Build Dial's argument string `destination,timeout[,options]`.

    `template` is the configured destination with one `{number}` placeholder, such as
    `PJSIP/{number}@carrier`; `number` is untrusted and must pass `dial_token`. `options`
    are the router's own (`g`, `L(5000)`): parentheses are allowed there, `,` `|` `&` are not.
    """
    if template.count("{number}") != 1:
        raise ValueError("template needs exactly one {number} placeholder")
    if timeout_s <= 0:
        raise ValueError("Dial timeout must be positive")
    destination = template.replace("{number}", dial_token(number))
    if _holds_any(destination, _DIAL_SYNTAX):
        raise UnsafeArgument(f"destination {destination!r} holds Dial syntax or control characters")
    if _holds_any(options, _OPTION_SEPARATORS):
        raise UnsafeArgument(f"options {options!r} hold Dial separators or control characters")
    argument = f"{destination},{timeout_s}"
    return f"{argument},{options}" if options else argument
