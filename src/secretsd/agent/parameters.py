"""The parameter cache: GetParameter responses for ``/systemsmanager/parameters/get``, on the
core (``core.Cache``, whose docstring tells how entries live) with what is particular to SSM.

- The key is everything the request selects (name, version, label, withDecryption).
- SSM has no cheap "is this still current" call like DescribeSecret, so an expired entry
  is simply fetched again (the old one is still what a transient failure serves).
- A TTL of 0 keeps nothing, the Lambda extension's "no cache": every request reaches SSM
  (concurrent ones still share a call).
- No refresh-ahead, no refreshNow: the extension has neither for parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import core, render
from .backend import ParameterBackend
from .query import ParameterLookup


class ParameterStrategy:
    def __init__(self, backend: ParameterBackend, policy: core.Policy) -> None:
        self._backend = backend
        self._policy = policy
        self.keeps = policy.ttl > 0

    def lifetime(self, facts: None) -> float:
        return self._policy.ttl

    async def fetch(self, key: ParameterLookup, known: None) -> tuple[bytes, None]:
        fetched = await self._backend.get_parameter(key.selector, key.with_decryption)
        return render.parameter(fetched), None

    async def revalidate(self, key: ParameterLookup, entry: core.Entry[None]) -> tuple[bool, None]:
        return False, None


class ParameterCache(core.Cache[ParameterLookup, None]):
    def __init__(
        self,
        backend: ParameterBackend,
        ttl: float,
        max_stale: float,
        serve_stale: bool,
        capacity: int,
        clock: Callable[[], float],
    ) -> None:
        policy = core.Policy(
            ttl=ttl,
            refresh_ahead=0.0,
            max_stale=max_stale,
            serve_stale=serve_stale,
            capacity=capacity,
        )
        super().__init__(ParameterStrategy(backend, policy), policy, clock)

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
