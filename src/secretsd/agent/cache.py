"""The secret cache: the core (``core.Cache``, whose docstring tells how entries live) with
what is particular to Secrets Manager.

- The key is what the client asked for: (secretId as sent, versionId, versionStage).
- Revalidation asks DescribeSecret on the cached ARN: if the cached version still answers
  the request (it carries the requested stage, AWSCURRENT when none was asked; it merely
  exists when only a versionId was asked; the secret is not marked for deletion) the entry
  is confirmed, otherwise GetSecretValue replaces it.
- While the secret has an AWSPENDING version (a rotation runs), lifetimes shrink to
  ``pending_revalidate_seconds`` so the new AWSCURRENT shows within seconds.

``refreshNow`` reads your write: it skips the cache and DescribeSecret, and its answer comes
from a GetSecretValue that started after the request arrived (an application calls it right
after a login failed during a rotation; an answer fetched a moment earlier is the very value
that failed). Per key at most one such call is in flight: a request that arrives while one
is in flight does not join it (it may predate the write) but waits for the next one, which
starts when the current one lands and serves every request queued behind it. A client in a
retry loop therefore costs the backend one call per round trip, never a flood. Its result
is stored by the core's rule, so a slower miss that started earlier cannot undo it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from . import core, render
from .backend import Backend

Key = tuple[str, str | None, str | None]
CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"


@dataclass(frozen=True)
class Policy(core.Policy):
    pending_interval: float = 5.0

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


class Facts(NamedTuple):
    """What revalidation needs to know of a cached secret (never its value)."""

    arn: str
    version_id: str | None
    pending: bool


def still_answers(key: Key, version_id: str | None, description: Mapping[str, Any]) -> bool:
    """Whether the cached version is still what the request asks for, per DescribeSecret."""
    if description.get("DeletedDate") is not None:
        return False
    stages = (description.get("VersionIdsToStages") or {}).get(version_id)
    if stages is None:
        return False
    _, asked_version, asked_stage = key
    if asked_stage is not None:
        return asked_stage in stages
    if asked_version is not None:
        return True
    return CURRENT in stages


def has_pending(description: Mapping[str, Any]) -> bool:
    versions = description.get("VersionIdsToStages") or {}
    return any(PENDING in stages for stages in versions.values())


class SecretStrategy:
    keeps = True

    def __init__(self, backend: Backend, policy: Policy) -> None:
        self._backend = backend
        self._policy = policy

    def lifetime(self, facts: Facts) -> float:
        ttl = self._policy.ttl
        return min(ttl, self._policy.pending_interval) if facts.pending else ttl

    async def fetch(self, key: Key, known: Facts | None) -> tuple[bytes, Facts]:
        fetched = await self._backend.get_secret_value(*key)
        pending = (known is not None and known.pending) or PENDING in (
            fetched.get("VersionStages") or ()
        )
        facts = Facts(fetched.get("ARN") or key[0], fetched.get("VersionId"), pending)
        return render.secret(fetched), facts

    async def revalidate(self, key: Key, entry: core.Entry[Facts]) -> tuple[bool, Facts]:
        cached = entry.facts
        description = await self._backend.describe_secret(cached.arn)
        facts = cached._replace(pending=has_pending(description))
        return still_answers(key, cached.version_id, description), facts


class SecretCache(core.Cache[Key, Facts]):
    def __init__(self, backend: Backend, policy: Policy, clock: Callable[[], float]) -> None:
        super().__init__(SecretStrategy(backend, policy), policy, clock)
        # refreshNow: the call in flight per key, and the one queued to start after it.
        self._forced: core.Flights = {}
        self._forced_next: core.Flights = {}

    async def get(self, key: Key, refresh_now: bool = False) -> bytes:
        if refresh_now:
            return await self.refresh(key)
        return await super().get(key)

    async def refresh(self, key: Key) -> bytes:
        """The response from a GetSecretValue that started after this call."""
        self.counters.refresh_now += 1
        queued = self._forced_next.get(key)
        current = self._forced.get(key)
        if queued is not None:  # its call has not started yet: it starts after we arrived
            self.counters.refresh_now_queued += 1
            self.counters.coalesced += 1
            flight = queued
        elif current is not None:
            self.counters.refresh_now_queued += 1
            flight = self.fly(self._forced_next, key, self._fetch_after(key, current))
        else:
            flight = self.fly(self._forced, key, self._fetch_forced(key))
        return self.served(await asyncio.shield(flight))

    async def _fetch_after(self, key: Key, previous: asyncio.Task[core.Outcome]) -> core.Outcome:
        # The call in flight may have started before our requests arrived: wait it out,
        # whatever its outcome, then become the call in flight ourselves.
        await asyncio.wait((previous,))
        this = asyncio.current_task()
        assert this is not None
        if self._forced_next.get(key) is this:
            del self._forced_next[key]
        self._forced[key] = this
        try:
            return await self._fetch_forced(key)
        finally:
            if self._forced.get(key) is this:
                del self._forced[key]

    async def _fetch_forced(self, key: Key) -> core.Outcome:
        previous = self.entries.get(key)
        return await self.refetch(key, previous.facts if previous else None), False
