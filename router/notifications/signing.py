"""How a call event (and a low-balance warning, when router.yaml names its key) is signed,
so a receiver can tell it came from this router and is fresh.

The signature is HMAC-SHA256 under the subscriber's key of `<timestamp>.<body>`, hex
encoded, sent as `X-Hotline400-Signature: v1=<hex>` beside `X-Hotline400-Timestamp`
(Unix seconds). Binding the timestamp into the signed bytes lets a receiver refuse an
event replayed later: it recomputes the signature, compares it in constant time, refuses
a timestamp more than five minutes from its own clock, and ignores an `X-Hotline400-Id`
it has already handled (a retry repeats the id with a new timestamp).
README "CRM events" shows a receiver's check.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Hotline400-Signature"
TIMESTAMP_HEADER = "X-Hotline400-Timestamp"
ID_HEADER = "X-Hotline400-Id"
EVENT_HEADER = "X-Hotline400-Event"
VERSION = "v1"


def signature(key: bytes, timestamp: int, body: bytes) -> str:
    """`v1=` and the hex HMAC-SHA256 of `<timestamp>.<body>` under `key`."""
    digest = hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"{VERSION}={digest.hexdigest()}"


def signed_headers(key: bytes, timestamp: int, body: bytes, event_id: str, kind: str) -> dict:
    """The headers of one POST of an event, signed at `timestamp` (each attempt anew)."""
    return {
        "Content-Type": "application/json",
        EVENT_HEADER: kind,
        ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(key, timestamp, body),
    }
