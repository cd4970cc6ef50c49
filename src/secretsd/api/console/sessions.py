"""Console sessions, sign-in links and access-key checks, as pure code with an injected clock.

Theory of operation. A browser gets a session before it signs in: an *anonymous* session
whose only use is to carry the CSRF token of the sign-in form. Signing in (with an access key
pair, or with a one-time link) replaces it by a new session under a new random id holding the
``Caller``, so an id planted before sign-in is worth nothing after it. A session ends when it
has been idle for ``idle_seconds``, ``lifetime_seconds`` after sign-in whatever the activity,
or at sign-out. Sessions live in this process's memory: a restart signs everyone out, and
each server node has its own.

Ids and tokens are 256-bit random strings. Sessions are kept under the SHA-256 of their id
and links under the SHA-256 of their token, so finding one is a dictionary lookup on a value
an attacker cannot steer towards a match, and nothing here compares a secret byte by byte
except through ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from secretsd.model.identity import Caller

IDLE_SECONDS = 30 * 60.0
LIFETIME_SECONDS = 12 * 3600.0
ANONYMOUS_SECONDS = 15 * 60.0
LINK_SECONDS = 15 * 60.0
# Sessions kept of each kind (anonymous, signed in): the oldest go first past this many.
MAX_SESSIONS = 10_000
MAX_LINKS = 100

# Compared against when an access key is unknown, so that an unknown key and a wrong secret
# take the same path.
_NO_SECRET = secrets.token_urlsafe(30)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(slots=True)
class Session:
    id: str = field(repr=False)
    csrf: str = field(repr=False)
    caller: Caller | None
    started: float
    last_seen: float
    # A message for the next page shown (after a redirect): (kind, text).
    flash: tuple[str, str] | None = None

    def check_csrf(self, submitted: str | None) -> bool:
        if not submitted:
            return False
        return hmac.compare_digest(self.csrf.encode(), submitted.encode("utf-8", "replace"))


class Sessions:
    """The sessions of one console, by id."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        idle_seconds: float = IDLE_SECONDS,
        lifetime_seconds: float = LIFETIME_SECONDS,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self.clock = clock
        self.idle_seconds = idle_seconds
        self.lifetime_seconds = lifetime_seconds
        self.max_sessions = max_sessions
        # Apart, so that anyone loading the sign-in page over and over evicts only the
        # anonymous sessions of others, never a signed-in one.
        self._anonymous: OrderedDict[bytes, Session] = OrderedDict()
        self._signed_in: OrderedDict[bytes, Session] = OrderedDict()

    def _table(self, session: Session) -> OrderedDict[bytes, Session]:
        return self._anonymous if session.caller is None else self._signed_in

    def _limit(self, session: Session) -> float:
        """When ``session`` ends if nothing else happens."""
        if session.caller is None:
            return session.started + ANONYMOUS_SECONDS
        return min(session.last_seen + self.idle_seconds, session.started + self.lifetime_seconds)

    def cookie_seconds(self, session: Session) -> float:
        """How long the browser should keep the cookie: until the session's last possible
        moment (the idle limit moves with each request, and is enforced here)."""
        if session.caller is None:
            end = session.started + ANONYMOUS_SECONDS
        else:
            end = session.started + self.lifetime_seconds
        return max(0.0, end - self.clock())

    def open(self, caller: Caller | None = None) -> Session:
        now = self.clock()
        session = Session(new_token(), new_token(), caller, now, now)
        table = self._table(session)
        table[_digest(session.id)] = session
        while len(table) > self.max_sessions:
            table.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of ``session_id``, its idle time reset; None when unknown or over."""
        if not session_id:
            return None
        key = _digest(session_id)
        session = self._signed_in.get(key) or self._anonymous.get(key)
        if session is None:
            return None
        now = self.clock()
        if now >= self._limit(session):
            del self._table(session)[key]
            return None
        session.last_seen = now
        return session

    def sign_in(self, previous: Session | None, caller: Caller) -> Session:
        """A new signed-in session for ``caller``; ``previous`` (anonymous) ends."""
        if previous is not None:
            self.close(previous)
        return self.open(caller)

    def close(self, session: Session) -> None:
        self._table(session).pop(_digest(session.id), None)

    def __len__(self) -> int:
        return len(self._anonymous) + len(self._signed_in)


@dataclass(frozen=True, slots=True)
class _Link:
    caller: Caller
    expires: float


class SignInLinks:
    """One-time sign-in tokens: each signs in once, before it expires."""

    def __init__(
        self, *, clock: Callable[[], float] = time.time, ttl_seconds: float = LINK_SECONDS
    ) -> None:
        self.clock = clock
        self.ttl_seconds = ttl_seconds
        self._links: OrderedDict[bytes, _Link] = OrderedDict()

    def mint(self, caller: Caller) -> str:
        token = new_token()
        self._links[_digest(token)] = _Link(caller, self.clock() + self.ttl_seconds)
        while len(self._links) > MAX_LINKS:
            self._links.popitem(last=False)
        return token

    def redeem(self, token: str | None) -> Caller | None:
        """The caller ``token`` signs in, once; None when unknown, used or expired."""
        if not token:
            return None
        link = self._links.pop(_digest(token), None)
        if link is None or self.clock() >= link.expires:
            return None
        return link.caller


class KeyCheck:
    """Checks an access key pair with the lookup the SigV4 verifier uses.

    ``lookup`` maps an access key id to its secret access key and the principal that owns
    it, or None when the key is unknown (or no longer active).
    """

    def __init__(self, lookup: Callable[[str], tuple[str, Caller] | None]) -> None:
        self._lookup = lookup

    def __call__(self, access_key_id: str, secret_access_key: str) -> Caller | None:
        found = self._lookup(access_key_id) if access_key_id else None
        expected = (found[0] if found is not None else _NO_SECRET).encode()
        matches = hmac.compare_digest(expected, secret_access_key.encode("utf-8", "replace"))
        if found is None or not matches:
            return None
        return found[1]

    def current(self, caller: Caller) -> Caller | None:
        """``caller`` as its key stands now (its policies may have changed), or None once
        the key is gone: a session lasts no longer than the key it signed in with."""
        found = self._lookup(caller.access_key_id)
        return found[1] if found is not None else None
