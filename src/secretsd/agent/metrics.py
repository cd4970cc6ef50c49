"""Prometheus metrics for /metrics.

The hot path only bumps plain integers (``core.Counters``, the open-connection count); a
collector turns them into metric families when /metrics is scraped. (Measured: a
prometheus_client ``Counter.inc()`` costs about 250 ns, a quarter of a whole cache hit;
an integer in a slot about 30 ns.) Backend calls are rare
and slow, so they go straight into a prometheus_client counter and histogram. Labels carry
operation names and outcomes only, never secret ids or values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

PREFIX = "secretsd_agent"

_CACHE_COUNTERS = {
    "hits": "Requests answered from a fresh cache entry",
    "misses": "Requests for a key not in the cache (one backend fetch each, coalesced)",
    "stale_served": "Responses served stale because the backend failed transiently",
    "coalesced": "Requests that waited on a backend call already in flight for their key",
    "refresh_ahead": "Background revalidations started by a hit shortly before expiry",
    "confirmed": "Revalidations where DescribeSecret confirmed the cached version",
    "replaced": "Revalidations that fetched a new version",
    "refresh_now": "Requests with refreshNow=true",
    "refresh_now_queued": "refreshNow requests that waited for the call after the one in flight",
    "evictions": "Entries evicted because the cache was full",
}
_PARAMETER_COUNTERS = {
    "hits": "Parameter requests answered from a fresh cache entry",
    "misses": "GetParameter fetches for a key not cached (coalesced)",
    "replaced": "GetParameter fetches for a key whose entry expired (coalesced)",
    "coalesced": "Parameter requests that waited on a GetParameter already in flight",
    "stale_served": "Parameter responses served stale because SSM failed transiently",
    "evictions": "Parameter entries evicted because the cache was full",
}


class _CountersCollector(Collector):
    """Plain integer counters (``texts`` names the attributes of ``counters``) and values
    read when scraped, turned into metric families."""

    def __init__(
        self,
        prefix: str,
        texts: dict[str, str],
        counters: Any,
        gauges: tuple[tuple[str, str, Callable[[], float]], ...] = (),
        totals: tuple[tuple[str, str, Callable[[], float]], ...] = (),
    ):
        self._prefix = prefix
        self._texts = texts
        self._counters = counters
        self._gauges = gauges
        self._totals = totals

    def collect(self) -> Iterator[Any]:
        for name, text in self._texts.items():
            yield CounterMetricFamily(f"{self._prefix}_{name}", text, getattr(self._counters, name))
        for name, text, read in self._gauges:
            yield GaugeMetricFamily(f"{PREFIX}_{name}", text, read())
        for name, text, read in self._totals:
            yield CounterMetricFamily(f"{PREFIX}_{name}", text, read())


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.backend_calls = Counter(
            f"{PREFIX}_backend_calls",
            "Calls to Secrets Manager and SSM by operation and outcome",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.backend_latency = Histogram(
            f"{PREFIX}_backend_latency_seconds",
            "Latency of calls to Secrets Manager and SSM (retries included)",
            ["operation"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    def observe_backend(self, operation: str, outcome: str, seconds: float) -> None:
        self.backend_calls.labels(operation, outcome).inc()
        self.backend_latency.labels(operation).observe(seconds)

    def watch(
        self,
        counters: Any,
        entries: Callable[[], int],
        connections: Callable[[], int],
        busy_poll_seconds: Callable[[], float],
    ) -> None:
        gauges = (
            ("cache_entries", "Entries in the cache", entries),
            ("open_connections", "Open client connections", connections),
        )
        polled = (
            (
                "busy_poll_seconds",
                "Time the event loop spent polling for the next request instead of sleeping",
                busy_poll_seconds,
            ),
        )
        self.registry.register(
            _CountersCollector(f"{PREFIX}_cache", _CACHE_COUNTERS, counters, gauges, polled)
        )

    def watch_parameters(self, counters: Any, entries: Callable[[], int]) -> None:
        gauges = (("parameter_cache_entries", "Entries in the parameter cache", entries),)
        self.registry.register(
            _CountersCollector(f"{PREFIX}_parameter_cache", _PARAMETER_COUNTERS, counters, gauges)
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
