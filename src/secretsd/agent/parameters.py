"""The parameter cache: GetParameter responses for ``/systemsmanager/parameters/get``.

Simpler than the secret cache on purpose. SSM has no cheap "is this still current" call
like DescribeSecret, so an expired entry is simply fetched again. What the two share:

- an entry is keyed by everything the request selects (name, version, label,
  withDecryption) and holds the complete 200 HTTP response, built once;
- concurrent misses of one key make one backend call (single-flight), which all of them
  await;
- a transient backend failure (timeout, I/O, 5xx) serves the cached response while
  ``ignore_transient_errors`` allows and it is less than ``max_stale_seconds`` past its
  expiry, and the next few seconds of requests get it at once instead of waiting out
  timeouts again; a 4xx (the parameter was deleted, access revoked) drops the entry;
- the least recently written entry is evicted beyond the capacity.

A TTL of 0 keeps nothing, the Lambda extension's "no cache": every request reaches SSM
(concurrent ones still share a call).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from . import render
from .backend import BackendError, ParameterBackend
from .query import ParameterLookup

Outcome = tuple[bytes, bool]  # a flight's response, and whether it is a stale one
# After a failed fetch served stale, how soon the next request may try the backend again.
STALE_RETRY_SECONDS = 5.0


class ParameterEntry:
    __slots__ = ("fresh_until", "response", "stale_until")

    def __init__(self, response: bytes, fresh_until: float, stale_until: float) -> None:
        self.response = response
        self.fresh_until = fresh_until
        self.stale_until = stale_until

    def __repr__(self) -> str:  # never the response: it holds the value
        return "ParameterEntry()"


class ParameterCounters:
    """Plain integers for /metrics, as the secret cache keeps them."""

    __slots__ = ("coalesced", "hits", "misses", "stale_served")
    coalesced: int
    hits: int
    misses: int
    stale_served: int

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)


class ParameterCache:
    def __init__(
        self,
        backend: ParameterBackend,
        ttl: float,
        max_stale: float,
        serve_stale: bool,
        capacity: int,
        clock: Callable[[], float],
    ) -> None:
        self._backend = backend
        self.ttl = ttl
        self.max_stale = max_stale
        self.serve_stale = serve_stale
        self.capacity = capacity
        self.clock = clock
        self.entries: dict[ParameterLookup, ParameterEntry] = {}  # insertion = write order
        self._flights: dict[ParameterLookup, asyncio.Task[Outcome]] = {}
        self.counters = ParameterCounters()

    @classmethod
    def from_config(
        cls, backend: ParameterBackend, config: Any, clock: Callable[[], float]
    ) -> ParameterCache:
        return cls(
            backend,
            ttl=float(config.ssm_ttl_seconds),
            max_stale=float(config.max_stale_seconds),
            serve_stale=config.ignore_transient_errors,
            capacity=config.cache_size,
            clock=clock,
        )

    def peek(self, key: ParameterLookup) -> bytes | None:
        """The cached response if it is fresh."""
        entry = self.entries.get(key)
        if entry is None or self.clock() >= entry.fresh_until:
            return None
        self.counters.hits += 1
        return entry.response

    async def get(self, key: ParameterLookup) -> bytes:
        """The response for ``key``; raises ``BackendError`` with the agent's error answer."""
        cached = self.peek(key)
        if cached is not None:
            return cached
        flight = self._flights.get(key)
        if flight is not None:
            self.counters.coalesced += 1
        else:
            flight = asyncio.get_running_loop().create_task(self._load(key))
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        # Shielded: a client that goes away must not cancel the call the others await.
        response, stale = await asyncio.shield(flight)
        if stale:
            self.counters.stale_served += 1
        return response

    def _landed(self, key: ParameterLookup, done: asyncio.Task[Outcome]) -> None:
        if self._flights.get(key) is done:
            del self._flights[key]
        if not done.cancelled():
            done.exception()  # retrieved here: every waiter may have gone

    async def _load(self, key: ParameterLookup) -> Outcome:
        self.counters.misses += 1
        try:
            fetched = await self._backend.get_parameter(key.selector, key.with_decryption)
        except BackendError as error:
            return self._after_failure(key, error)
        response = render.json_response(200, render.parameter_body(fetched))
        if self.ttl > 0:
            now = self.clock()
            self.entries.pop(key, None)
            self.entries[key] = ParameterEntry(
                response, now + self.ttl, now + self.ttl + self.max_stale
            )
            while len(self.entries) > self.capacity:
                del self.entries[next(iter(self.entries))]
        return response, False

    def _after_failure(self, key: ParameterLookup, error: BackendError) -> Outcome:
        entry = self.entries.get(key)
        now = self.clock()
        if entry is not None and error.transient and self.serve_stale and now <= entry.stale_until:
            entry.fresh_until = min(now + min(self.ttl, STALE_RETRY_SECONDS), entry.stale_until)
            return entry.response, True
        self.entries.pop(key, None)
        raise error

    def __len__(self) -> int:
        return len(self.entries)
