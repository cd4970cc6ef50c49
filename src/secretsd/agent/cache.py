"""The secret cache: freshness, revalidation and single-flight, with no I/O of its own.

Theory of operation. An entry is keyed by what the client asked for (secretId as sent,
versionId, versionStage) and holds the complete 200 HTTP response, built once. Its life is
a few instants on one clock (``clock`` is injected; tests drive a fake one):

    fetched/confirmed --refresh_at--> refresh-ahead --fresh_until--> expired --stale_until--> dead

- before ``fresh_until`` a hit calls nothing; past ``refresh_at`` a hit also starts a
  background revalidation, so a hot key never makes a request wait;
- expired: DescribeSecret on the cached ARN; if the cached version still answers the
  request the entry is confirmed (new lifetime), otherwise GetSecretValue replaces it;
- a transient backend failure (timeout, I/O, 5xx) serves the old response while
  ``now <= stale_until`` (``ttl + max_stale_seconds`` after the last confirmation) and
  retries a few seconds later, in the background: once the backend has failed, requests
  get the stale value at once instead of waiting out timeouts again; past ``stale_until``,
  or on a 4xx, the error is the answer and the entry is dropped: the backend refused or
  cannot vouch for the value any more;
- while the secret has an AWSPENDING version (a rotation runs), lifetimes shrink to
  ``pending_revalidate_seconds`` so the new AWSCURRENT shows within seconds.

Every backend operation for a key runs as one task that all interested requests await
(single-flight), whether it is a miss, a revalidation or a refresh-ahead.

``refreshNow`` reads your write: it skips the cache and DescribeSecret, and its answer comes
from a GetSecretValue that started after the request arrived (an application calls it right
after a login failed during a rotation; an answer fetched a moment earlier is the very value
that failed). Per key at most one such call is in flight: a request that arrives while one
is in flight does not join it (it may predate the write) but waits for the next one, which
starts when the current one lands and serves every request queued behind it. A client in a
retry loop therefore costs the backend one call per round trip, never a flood.

An entry remembers when the call that produced it started, and a slower call that started
earlier never replaces it: a miss that raced a refreshNow cannot put the old value back.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from . import render
from .backend import Backend, BackendError

Key = tuple[str, str | None, str | None]
Outcome = tuple[bytes, bool]  # a flight's response, and whether it is a stale one
CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
# After a failed revalidation, how soon the next request may try the backend again.
STALE_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class Policy:
    ttl: float = 300.0
    refresh_ahead: float = 60.0  # seconds before expiry; 0 = off
    pending_interval: float = 5.0
    max_stale: float = 900.0
    serve_stale: bool = True  # ignore_transient_errors
    capacity: int = 1000

    @classmethod
    def from_config(cls, config: Any) -> Policy:
        return cls(
            ttl=float(config.ttl_seconds),
            refresh_ahead=config.refresh_ahead_seconds,
            pending_interval=config.pending_revalidate_seconds,
            max_stale=float(config.max_stale_seconds),
            serve_stale=config.ignore_transient_errors,
            capacity=config.cache_size,
        )

    def lifetime(self, pending: bool) -> float:
        return min(self.ttl, self.pending_interval) if pending else self.ttl


class Entry:
    __slots__ = (
        "arn",
        "failing",
        "fetched_from",
        "fresh_until",
        "pending",
        "refresh_at",
        "response",
        "stale_until",
        "version_id",
    )

    def __init__(self, response: bytes, arn: str, version_id: str | None) -> None:
        self.response = response
        self.arn = arn
        self.version_id = version_id
        self.pending = False
        self.failing = False  # the last revalidation failed transiently; serving stale
        # When the backend call that produced ``response`` started.
        self.fetched_from = self.fresh_until = self.refresh_at = self.stale_until = -math.inf

    def __repr__(self) -> str:  # never the response: it holds the secret
        return f"Entry(arn={self.arn!r}, version_id={self.version_id!r})"


def still_answers(key: Key, entry: Entry, description: Mapping[str, Any]) -> bool:
    """Whether the cached version is still what the request asks for, per DescribeSecret."""
    if description.get("DeletedDate") is not None:
        return False
    stages = (description.get("VersionIdsToStages") or {}).get(entry.version_id)
    if stages is None:
        return False
    _, version_id, version_stage = key
    if version_stage is not None:
        return version_stage in stages
    if version_id is not None:
        return True
    return CURRENT in stages


def has_pending(description: Mapping[str, Any]) -> bool:
    versions = description.get("VersionIdsToStages") or {}
    return any(PENDING in stages for stages in versions.values())


class Counters:
    """Plain integers, cheap to bump on the hot path; /metrics reads them when scraped."""

    __slots__ = (
        "coalesced",
        "confirmed",
        "evictions",
        "hits",
        "misses",
        "refresh_ahead",
        "refresh_now",
        "refresh_now_queued",
        "replaced",
        "stale_served",
    )
    coalesced: int
    confirmed: int
    evictions: int
    hits: int
    misses: int
    refresh_ahead: int
    refresh_now: int
    refresh_now_queued: int
    replaced: int
    stale_served: int

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)


class SecretCache:
    def __init__(
        self,
        backend: Backend,
        policy: Policy,
        clock: Callable[[], float],
    ) -> None:
        self._backend = backend
        self.policy = policy
        self.clock = clock
        self.entries: dict[Key, Entry] = {}  # insertion order = write order (eviction)
        self._flights: dict[Key, asyncio.Task[Outcome]] = {}
        # refreshNow: the call in flight per key, and the one queued to start after it.
        self._forced_flights: dict[Key, asyncio.Task[Outcome]] = {}
        self._forced_next: dict[Key, asyncio.Task[Outcome]] = {}
        self.counters = Counters()

    # -- the hot path -------------------------------------------------------------------

    def peek(self, key: Key) -> bytes | None:
        """The cached response if it is fresh; a hit past ``refresh_at`` refreshes ahead."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        now = self.clock()
        if now >= entry.fresh_until:
            return None
        if now >= entry.refresh_at and key not in self._flights:
            self.counters.refresh_ahead += 1
            entry.refresh_at = math.inf  # one background revalidation per lifetime
            self._start(key)
        self.counters.hits += 1
        return entry.response

    # -- everything else ----------------------------------------------------------------

    async def get(self, key: Key, refresh_now: bool = False) -> bytes:
        """The response for ``key``; raises ``BackendError`` with the agent's error answer."""
        if refresh_now:
            return await self._refresh_now(key)
        cached = self.peek(key)
        if cached is not None:
            return cached
        flight = self._flights.get(key)
        entry = self.entries.get(key)
        if entry is not None and entry.failing and self.clock() <= entry.stale_until:
            # The backend already failed for this entry: retry it in the background and
            # answer now, rather than make every request wait out timeouts and retries.
            if flight is None:
                self._start(key)
            self.counters.stale_served += 1
            return entry.response
        if flight is not None:
            self.counters.coalesced += 1
        else:
            flight = self._start(key)
        return self._served(await asyncio.shield(flight))

    def _served(self, outcome: Outcome) -> bytes:
        response, stale = outcome
        if stale:
            self.counters.stale_served += 1
        return response

    def _start(self, key: Key) -> asyncio.Task[Outcome]:
        return self._fly(self._flights, key, self._load(key))

    def _fly(
        self,
        flights: dict[Key, asyncio.Task[Outcome]],
        key: Key,
        work: Coroutine[Any, Any, Outcome],
    ) -> asyncio.Task[Outcome]:
        task = asyncio.get_running_loop().create_task(work)
        flights[key] = task

        def landed(done: asyncio.Task[Outcome]) -> None:
            # A queued refreshNow moves from _forced_next to _forced_flights when its call
            # starts, so look in every registry.
            for registry in (flights, self._forced_flights):
                if registry.get(key) is done:
                    del registry[key]
            if not done.cancelled():
                done.exception()  # retrieved here: a background flight may have no waiter

        task.add_done_callback(landed)
        return task

    async def _load(self, key: Key) -> Outcome:
        entry = self.entries.get(key)
        if entry is None:
            self.counters.misses += 1
            started = self.clock()
            fetched = await self._backend.get_secret_value(*key)
            return self._store(key, fetched, False, started), False
        try:
            description = await self._backend.describe_secret(entry.arn)
            pending = has_pending(description)
            if still_answers(key, entry, description):
                self.counters.confirmed += 1
                self._confirm(entry, pending)
                return entry.response, False
            self.counters.replaced += 1
            started = self.clock()
            fetched = await self._backend.get_secret_value(*key)
        except BackendError as error:
            return self._after_failure(key, entry, error)
        return self._store(key, fetched, pending, started), False

    async def _refresh_now(self, key: Key) -> bytes:
        self.counters.refresh_now += 1
        queued = self._forced_next.get(key)
        current = self._forced_flights.get(key)
        if queued is not None:  # its call has not started yet: it starts after we arrived
            self.counters.refresh_now_queued += 1
            self.counters.coalesced += 1
            flight = queued
        elif current is not None:
            self.counters.refresh_now_queued += 1
            flight = self._fly(self._forced_next, key, self._fetch_after(key, current))
        else:
            flight = self._fly(self._forced_flights, key, self._fetch_forced(key))
        return self._served(await asyncio.shield(flight))

    async def _fetch_after(self, key: Key, previous: asyncio.Task[Outcome]) -> Outcome:
        # The call in flight may have started before our requests arrived: wait it out,
        # whatever its outcome, then become the call in flight ourselves.
        await asyncio.wait((previous,))
        this = asyncio.current_task()
        assert this is not None
        if self._forced_next.get(key) is this:
            del self._forced_next[key]
        self._forced_flights[key] = this
        return await self._fetch_forced(key)

    async def _fetch_forced(self, key: Key) -> Outcome:
        started = self.clock()
        fetched = await self._backend.get_secret_value(*key)
        previous = self.entries.get(key)
        return self._store(key, fetched, previous.pending if previous else False, started), False

    # -- state changes ------------------------------------------------------------------

    def _confirm(self, entry: Entry, pending: bool) -> None:
        now = self.clock()
        life = self.policy.lifetime(pending)
        entry.pending = pending
        entry.failing = False
        entry.fresh_until = now + life
        ahead = self.policy.refresh_ahead
        entry.refresh_at = now + life - ahead if 0 < ahead < life else math.inf
        entry.stale_until = now + life + self.policy.max_stale

    def _store(self, key: Key, fetched: Mapping[str, Any], pending: bool, started: float) -> bytes:
        newer = self.entries.get(key)
        if newer is not None and newer.fetched_from > started:
            return newer.response  # fetched by a call that started after ours
        response = render.json_response(200, render.secret_body(fetched))
        entry = Entry(response, fetched.get("ARN") or key[0], fetched.get("VersionId"))
        if PENDING in (fetched.get("VersionStages") or ()):
            pending = True
        self._confirm(entry, pending)
        entry.fetched_from = started
        self.entries.pop(key, None)
        self.entries[key] = entry
        while len(self.entries) > self.policy.capacity:
            del self.entries[next(iter(self.entries))]
            self.counters.evictions += 1
        return response

    def _after_failure(self, key: Key, entry: Entry, error: BackendError) -> Outcome:
        now = self.clock()
        if error.transient and now < entry.fresh_until:
            # A refresh-ahead failed while the value is still fresh: keep it, try later.
            entry.refresh_at = min(now + STALE_RETRY_SECONDS, entry.fresh_until)
            return entry.response, False
        if error.transient and self.policy.serve_stale and now <= entry.stale_until:
            retry = min(self.policy.ttl, STALE_RETRY_SECONDS)
            entry.fresh_until = min(now + retry, entry.stale_until)
            entry.refresh_at = math.inf
            entry.failing = True
            return entry.response, True
        if self.entries.get(key) is entry:
            del self.entries[key]
        raise error

    def __len__(self) -> int:
        return len(self.entries)
