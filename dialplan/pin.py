"""Subscriber PINs as salted hashes, so plan files and logs never hold a PIN in clear.

scrypt is memory-hard: a short numeric PIN stays cheap to check once per call yet costly to
brute-force from a leaked plan file. The format is self-describing so parameters can be raised
later without breaking stored hashes:
``scrypt$<log2 n>$<r>$<p>$<salt hex>$<hash hex>$<digits>``. The last field, the PIN's
length, lets a plan be checked against what callers can enter (a caller can never enter a
PIN longer than the plan's pin.max_digits) and gives max_digits its default; hashes made
before it was added, without it, are still accepted and verified. The length is no secret
worth keeping: a caller hears the entry end after that many digits, and guessing every
shorter PIN too adds about a tenth to a brute force.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

SCHEME = "scrypt"
_DEFAULT_LOG2_N, _DEFAULT_R, _DEFAULT_P = 14, 8, 1
MIN_PIN_DIGITS, MAX_PIN_DIGITS = 4, 12
HASH_PATTERN = re.compile(
    r"^scrypt\$(?P<log2n>\d{1,2})\$(?P<r>\d{1,2})\$(?P<p>\d{1,2})"
    r"\$(?P<salt>[0-9a-f]{16,64})\$(?P<digest>[0-9a-f]{64})(?:\$(?P<digits>\d{1,2}))?$"
)
PIN_DIGITS = re.compile(rf"^[0-9]{{{MIN_PIN_DIGITS},{MAX_PIN_DIGITS}}}$")


def pin_length(stored_hash: str) -> int | None:
    """The PIN length a hash records; None for a hash without one (or no hash at all)."""
    match = HASH_PATTERN.match(stored_hash)
    if match is None or match["digits"] is None:
        return None
    return int(match["digits"])


def _derive(pin: str, salt: bytes, log2n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(pin.encode(), salt=salt, n=2**log2n, r=r, p=p, maxmem=2**26, dklen=32)


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    """Hash a 4-12 digit PIN for a plan file, recording its length."""
    if not PIN_DIGITS.match(pin):
        raise ValueError(f"a PIN is {MIN_PIN_DIGITS} to {MAX_PIN_DIGITS} digits")
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = _derive(pin, salt, _DEFAULT_LOG2_N, _DEFAULT_R, _DEFAULT_P)
    parameters = f"{_DEFAULT_LOG2_N}${_DEFAULT_R}${_DEFAULT_P}"
    return f"{SCHEME}${parameters}${salt.hex()}${digest.hex()}${len(pin)}"


def verify_pin(entered: str, stored_hash: str) -> bool:
    """Compare an entered PIN with its stored hash in constant time."""
    match = HASH_PATTERN.match(stored_hash)
    if match is None or not entered.isdigit() or len(entered) > MAX_PIN_DIGITS:
        return False
    digest = _derive(
        entered,
        bytes.fromhex(match["salt"]),
        int(match["log2n"]),
        int(match["r"]),
        int(match["p"]),
    )
    return hmac.compare_digest(digest, bytes.fromhex(match["digest"]))
