"""What a client did: requests per source and how each went, for the health and cost reports.

Counting is a few integer additions under a lock per request; nothing about a secret (not
even its id) is kept.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SourceUsage:
    """One source's share of a client's requests."""

    requests: int = 0  # asked
    answered: int = 0  # gave a value or a definite answer (not found, refused)
    passed_on: int = 0  # could not answer; the next source was asked
    seconds: float = 0.0  # time spent asking it

    @property
    def average_ms(self) -> float | None:
        """Mean time per request in milliseconds, None before the first request."""
        return self.seconds / self.requests * 1000 if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        """The counts as JSON-ready data, with the average."""
        return dataclasses.asdict(self) | {"average_ms": self.average_ms}


@dataclass(frozen=True)
class Usage:
    """A snapshot of a client's requests: ``sources`` in the order they are asked."""

    requests: int
    failed: int  # no source could answer (SourceUnavailable, AgentRefused)
    sources: dict[str, SourceUsage]
    # Requests sent past the agent, straight to the API, by ``agent_share`` (not counted as
    # the agent passing them on: it was never asked).
    routed_past_agent: int = 0

    @property
    def fallback_rate(self) -> float | None:
        """The share of the requests asked of the first source that it passed on; None
        before it was asked."""
        first = next(iter(self.sources.values()), None)
        if first is None or not first.requests:
            return None
        return first.passed_on / first.requests

    @property
    def error_rate(self) -> float | None:
        """The share of requests no source could answer; None before any request."""
        return self.failed / self.requests if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        """The usage as JSON-ready data, with its rates."""
        return {
            "requests": self.requests,
            "failed": self.failed,
            "routed_past_agent": self.routed_past_agent,
            "sources": {name: source.to_dict() for name, source in self.sources.items()},
            "fallback_rate": self.fallback_rate,
            "error_rate": self.error_rate,
        }


class UsageCounter:
    """Thread-safe counters behind ``Usage``."""

    def __init__(self, source_names: tuple[str, ...]) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._failed = 0
        self._routed = 0
        # name -> [requests, answered, passed_on, seconds]
        self._sources: dict[str, list] = {name: [0, 0, 0, 0.0] for name in source_names}

    def source(self, name: str, answered: bool, seconds: float) -> None:
        with self._lock:
            counts = self._sources[name]
            counts[0] += 1
            counts[1 if answered else 2] += 1
            counts[3] += seconds

    def request(self, failed: bool) -> None:
        with self._lock:
            self._requests += 1
            self._failed += failed

    def routed_past_agent(self) -> None:
        with self._lock:
            self._routed += 1

    def snapshot(self) -> Usage:
        with self._lock:
            sources = {name: SourceUsage(*counts) for name, counts in self._sources.items()}
            return Usage(self._requests, self._failed, sources, self._routed)
