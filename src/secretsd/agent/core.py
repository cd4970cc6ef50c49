"""The agent's one cache core: values by key, kept fresh, served stale within bounds, fetched
once however many ask. It does no I/O and reads no clock of its own; what one kind of value
needs (how to fetch it, whether an expired one still holds, how long it lives) comes from a
strategy (``cache.SecretStrategy``, ``parameters.ParameterStrategy``), the clock is injected
and tests drive a fake one.

Theory of operation. An entry is keyed by everything the request selects and holds the
complete 200 HTTP response, built once by ``render``, plus the strategy's facts about it
(for a secret: its ARN, version and whether a rotation is pending). Its life is a few
instants on one clock:

    fetched/confirmed --refresh_at--> refresh-ahead --fresh_until--> expired --stale_until--> dead

- before ``fresh_until`` a hit calls nothing (``peek``); past ``refresh_at`` a hit also
  starts a background revalidation, so a key in use never makes a request wait;
- expired: the strategy revalidates. It either confirms the entry (a new lifetime, no new
  response) or says it must be fetched again, and the fetch replaces it. Secrets ask
  DescribeSecret; parameters have no such call and always fetch again;
- the lifetime is the strategy's (a secret with a rotation pending lives only a few
  seconds); a strategy that keeps nothing (parameters with a TTL of 0) still shares calls;
- a transient backend failure (timeout, I/O, 5xx: ``secretsd.transient``) serves the old
  response while ``now <= stale_until`` (``ttl + max_stale_seconds`` after the last
  confirmation) and retries a few seconds later, in the background: once the backend has
  failed, requests get the stale value at once instead of waiting out timeouts again; past
  ``stale_until``, or on a 4xx, the error is the answer and the entry is dropped: the
  backend refused or cannot vouch for the value any more;
- the least recently written entry is evicted beyond the capacity.

Single-flight: every backend operation for a key runs as one task that all interested
requests await, whether it is a miss, a revalidation or a refresh-ahead. Requests await it
through ``asyncio.shield``: a client that goes away cancels its wait, never the call the
others await. A flight that fails for a reason that is no backend failure (a bug) is logged
with its traceback at ERROR, once, and answered as the AWS agent's 500 InternalFailure; a
background flight nobody awaits is logged all the same.

An entry remembers when the call that produced it started, and a slower call that started
earlier never replaces it: a miss that raced a refreshNow (``cache.SecretCache``) cannot put
the old value back.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Coroutine, Hashable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from .backend import BackendError

log = logging.getLogger("secretsd.agent.cache")

K = TypeVar("K", bound=Hashable)
F = TypeVar("F")
K_in = TypeVar("K_in", bound=Hashable, contravariant=True)
Outcome = tuple[bytes, bool]  # a flight's response, and whether it is a stale one
Flights = dict[Any, "asyncio.Task[Outcome]"]
# After a failed revalidation, how soon the next request may try the backend again.
STALE_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class Policy:
    ttl: float = 300.0
    refresh_ahead: float = 60.0  # seconds before expiry; 0 = off
    max_stale: float = 900.0
    serve_stale: bool = True  # ignore_transient_errors
    capacity: int = 1000


class Entry(Generic[F]):
    __slots__ = (
        "facts",
        "failing",
        "fetched_from",
        "fresh_until",
        "refresh_at",
        "response",
        "stale_until",
    )

    def __init__(self, response: bytes, facts: F, fetched_from: float) -> None:
        self.response = response
        self.facts = facts
        self.failing = False  # the last revalidation failed transiently; serving stale
        self.fetched_from = fetched_from  # when the call that produced ``response`` started
        self.fresh_until = self.refresh_at = self.stale_until = -math.inf

    def __repr__(self) -> str:  # never the response: it holds the value
        return f"Entry({self.facts!r})"


class Strategy(Protocol[K_in, F]):
    """What one kind of value needs beyond the core."""

    # Whether fetched values are kept at all; when not, every request reaches the backend.
    keeps: bool

    def lifetime(self, facts: F) -> float:
        """How long an entry with these facts is fresh."""
        ...

    async def fetch(self, key: K_in, known: F | None) -> tuple[bytes, F]:
        """The rendered 200 response for ``key`` and its facts; ``known`` is what was known
        of the key before (the previous entry's facts, or what revalidation found)."""
        ...

    async def revalidate(self, key: K_in, entry: Entry[F]) -> tuple[bool, F]:
        """Whether the expired ``entry`` still answers ``key``, and the facts now known."""
        ...


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


class Cache(Generic[K, F]):
    def __init__(
        self, strategy: Strategy[K, F], policy: Policy, clock: Callable[[], float]
    ) -> None:
        self.strategy = strategy
        self.policy = policy
        self.clock = clock
        self.entries: dict[K, Entry[F]] = {}  # insertion order = write order (eviction)
        self._flights: Flights = {}
        self.counters = Counters()

    # -- the hot path -------------------------------------------------------------------

    def peek(self, key: K) -> bytes | None:
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

    async def get(self, key: K) -> bytes:
        """The response for ``key``; raises ``BackendError`` with the agent's error answer."""
        cached = self.peek(key)
        if cached is not None:
            return cached
        return await self.load(key)

    async def load(self, key: K) -> bytes:
        """The response for a key ``peek`` could not answer."""
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
        return self.served(await asyncio.shield(flight))

    def served(self, outcome: Outcome) -> bytes:
        response, stale = outcome
        if stale:
            self.counters.stale_served += 1
        return response

    def fly(
        self, flights: Flights, key: K, work: Coroutine[Any, Any, Outcome]
    ) -> asyncio.Task[Outcome]:
        """Run ``work`` as the flight for ``key`` in ``flights`` until it lands."""
        task = asyncio.get_running_loop().create_task(_guarded(work))
        flights[key] = task

        def landed(done: asyncio.Task[Outcome]) -> None:
            if flights.get(key) is done:
                del flights[key]
            if not done.cancelled():
                done.exception()  # retrieved here: a background flight may have no waiter

        task.add_done_callback(landed)
        return task

    async def refetch(self, key: K, known: F | None) -> bytes:
        """Fetch ``key`` and store it, unless a call that started later stored it first."""
        started = self.clock()
        response, facts = await self.strategy.fetch(key, known)
        return self._store(key, response, facts, started)

    def _start(self, key: K) -> asyncio.Task[Outcome]:
        return self.fly(self._flights, key, self._load(key))

    async def _load(self, key: K) -> Outcome:
        entry = self.entries.get(key)
        if entry is None:
            self.counters.misses += 1
            return await self.refetch(key, None), False
        try:
            still_current, facts = await self.strategy.revalidate(key, entry)
            if still_current:
                self.counters.confirmed += 1
                self._confirm(entry, facts)
                return entry.response, False
            self.counters.replaced += 1
            return await self.refetch(key, facts), False
        except BackendError as error:
            return self._after_failure(key, entry, error)

    # -- state changes ------------------------------------------------------------------

    def _confirm(self, entry: Entry[F], facts: F) -> None:
        now = self.clock()
        life = self.strategy.lifetime(facts)
        entry.facts = facts
        entry.failing = False
        entry.fresh_until = now + life
        ahead = self.policy.refresh_ahead
        entry.refresh_at = now + life - ahead if 0 < ahead < life else math.inf
        entry.stale_until = now + life + self.policy.max_stale

    def _store(self, key: K, response: bytes, facts: F, started: float) -> bytes:
        newer = self.entries.get(key)
        if newer is not None and newer.fetched_from > started:
            return newer.response  # fetched by a call that started after ours
        if not self.strategy.keeps:
            return response
        entry = Entry(response, facts, started)
        self._confirm(entry, facts)
        self.entries.pop(key, None)
        self.entries[key] = entry
        while len(self.entries) > self.policy.capacity:
            del self.entries[next(iter(self.entries))]
            self.counters.evictions += 1
        return response

    def _after_failure(self, key: K, entry: Entry[F], error: BackendError) -> Outcome:
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


async def _guarded(work: Coroutine[Any, Any, Outcome]) -> Outcome:
    try:
        return await work
    except BackendError:
        raise
    except Exception:
        # Not a failure of the backend but a fault on our side: it needs its traceback to
        # be found, and every request waiting on this flight gets the AWS agent's 500.
        log.error("cache: a backend flight failed unexpectedly", exc_info=True)
        raise BackendError.internal() from None
