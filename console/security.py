"""Passwords, session tokens, CSRF tokens and login throttling for the console.

Passwords are hashed with Argon2id (memory-hard, argon2-cffi's RFC 9106 low-memory profile),
so a stolen user table is expensive to crack. A session is a random token: the browser holds
it in an HTTP-only cookie, the store keeps only its SHA-256, so a copy of the database gives
no way in. CSRF tokens are derived from the session token with HMAC, so every form of a
session carries the same unguessable value and nothing more needs storing. The HMAC key is
HOTLINE400_CONSOLE_SECRET when it is set, so every console process behind one address accepts
the forms of the others; without it each process draws its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from router.storage.protocol import Store

_HASHER = PasswordHasher()
MIN_PASSWORD_LENGTH = 10


SECRET_ENV = "HOTLINE400_CONSOLE_SECRET"
MIN_SECRET_LENGTH = 32


class WeakPassword(ValueError):
    """A password the console refuses to set."""


class WeakSecret(ValueError):
    """A console secret too short to sign forms with."""


def console_secret(environ: Mapping[str, str]) -> bytes | None:
    """The key that signs the console's forms, from HOTLINE400_CONSOLE_SECRET (its SHA-256):
    the same in every console process that serves one address behind a balancer, so a form
    one of them rendered is accepted by another, and across restarts. None when unset."""
    value = environ.get(SECRET_ENV, "")
    if not value:
        return None
    if len(value) < MIN_SECRET_LENGTH:
        raise WeakSecret(f"{SECRET_ENV} needs at least {MIN_SECRET_LENGTH} characters")
    return hashlib.sha256(value.encode()).digest()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def password_matches(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the store keeps of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(secret: bytes, session_token: str) -> str:
    return hmac.new(secret, session_token.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: bytes, session_token: str, offered: str | None) -> bool:
    return offered is not None and _same(csrf_token(secret, session_token), offered)


def signed_message(secret: bytes, message: str) -> str:
    """The signature of a message a page is sent back to show (`?problem=...&sig=...`):
    only messages the console itself wrote are shown, so a link cannot put words of its
    own on a console page."""
    return hmac.new(secret, b"message:" + message.encode(), hashlib.sha256).hexdigest()


def message_signed(secret: bytes, message: str, offered: str | None) -> bool:
    return offered is not None and _same(signed_message(secret, message), offered)


def _same(expected: str, offered: str) -> bool:
    """Compared in constant time as bytes: compare_digest refuses str with non-ASCII
    characters, and a forged token or link may hold any."""
    return hmac.compare_digest(expected.encode(), offered.encode("utf-8", "surrogatepass"))


class LoginThrottle:
    """At most `limit` failed logins per user name and per client address in `window`;
    past that, logins from either are refused until the oldest failure leaves the window.

    The failures are counted in the store, so several console processes behind one address
    throttle together (each alone would allow `limit` failures of its own), and a restart
    forgets none. An attempt is counted as failed before its password is checked, and
    forgiven only when it lets the user in or is refused unheard, so attempts made at once
    count each other: of any number sent together, at most `limit` have their password
    checked.
    """

    def __init__(
        self, store: Store, limit: int = 5, window: timedelta = timedelta(minutes=15)
    ) -> None:
        self._store = store
        self.limit = limit
        self.window = window

    async def attempt(self, keys: tuple[str, ...], now: datetime) -> LoginAttempt:
        """Count a sign-in with these keys (as failed until it is settled otherwise); its
        `retry_at` says when one may be tried again if this one must be refused unheard, in
        which case it no longer counts."""
        attempt = await self._store.login_attempted(keys, now, now - self.window)
        # Read once the attempt is in the store: of attempts made at once, the last one
        # counted sees all the others.
        others = await self._store.login_failures(keys, now - self.window, besides=attempt)
        latest: datetime | None = None
        for failures in others.values():
            if len(failures) >= self.limit:
                free_at = failures[len(failures) - self.limit] + self.window
                latest = free_at if latest is None else max(latest, free_at)
        if latest is not None:
            await self._store.login_settled(keys, attempt)
        return LoginAttempt(keys, attempt, latest)

    async def succeeded(self, attempt: LoginAttempt, user_key: str) -> None:
        """The attempt let the user in: it is no failure, and the user's own failures are
        forgiven. Not its address's: someone who signs in to an account of their own
        between guesses at others' must not start their count afresh."""
        await self._store.login_settled(attempt.keys, attempt.id, forget=(user_key,))


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    keys: tuple[str, ...]
    id: str
    retry_at: datetime | None
    """When a sign-in with these keys may be tried again; None: this one goes ahead."""
