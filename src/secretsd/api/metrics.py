"""``GET /metrics``: the server's Prometheus metrics, behind a bearer token of their own.

Off unless the server is started with ``--metrics``. The token comes from a file or the
environment and is compared in constant time; it is not an AWS key, so a scraper holds no
right to any secret.

Theory of operation. Nothing is counted through prometheus_client on the request path:
``RequestStats.observe`` adds to a histogram of plain integers, kept per (operation,
outcome) on the event loop's thread (``service.counters``). Collectors turn those, the
rotation counters, the store timings and the rotation state read from the store into
metric families when Prometheus scrapes. The scrape runs on a thread of its own, since the
rotation gauges read the store.

Labels hold operation names, outcomes (AWS error codes), rotation function names and step
names: all from fixed sets. No label names a secret, except the per-secret last rotation
time, which the operator asks for with ``--metrics-secret-names``.
"""

from __future__ import annotations

import hmac
import os
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from secretsd.service import SecretsService, StorageError
from secretsd.service.audit_trail import AuditTrail
from secretsd.service.counters import (
    REQUEST_BUCKETS,
    Histogram,
    HistogramSnapshot,
    PerThread,
    RotationCounters,
    merge,
)

from .plain import in_thread, refuse_method, respond

PREFIX = "secretsd"
OTHER = "other"
TOKEN_ENV = "SECRETSD_METRICS_TOKEN"
MIN_TOKEN_LENGTH = 16
# The classic text format, which every Prometheus reads (prometheus_client's newest
# constant names a format older servers do not know; our names need nothing newer).
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class MetricsConfigError(Exception):
    """The metrics token can't be had (message shown to the operator)."""


def load_token(path: Path | None, env: Mapping[str, str] = os.environ) -> bytes:
    """The bearer token: the file's contents (whitespace trimmed), else ``$TOKEN_ENV``."""
    if path is not None:
        try:
            text = path.read_text()
        except OSError as exc:
            raise MetricsConfigError(
                f"cannot read the metrics token file {path}: {exc.strerror}"
            ) from None
        source = str(path)
    else:
        text = env.get(TOKEN_ENV, "")
        source = TOKEN_ENV
        if not text:
            raise MetricsConfigError(
                f"--metrics needs a bearer token: --metrics-token-file FILE or {TOKEN_ENV}"
            )
    token = text.strip()
    if len(token) < MIN_TOKEN_LENGTH:
        raise MetricsConfigError(
            f"the metrics token in {source} is shorter than {MIN_TOKEN_LENGTH} characters"
        )
    return token.encode()


class RequestStats:
    """API requests by operation and outcome, with their latency; fed by ``ApiApp``.

    ``observe`` runs on the event loop's thread only, so its histograms have one writer.
    Operation names outside ``operations`` (a client may send any target) count as
    ``other`` and add no key.
    """

    def __init__(self, operations: Iterable[str]) -> None:
        self._known = frozenset(operations)
        self._histograms: dict[tuple[str, str], Histogram] = {}

    def observe(self, operation: str, outcome: str, seconds: float) -> None:
        histogram = self._histograms.get((operation, outcome))
        if histogram is None:
            histogram = self._add(operation, outcome)
        # Histogram.observe, inlined: this runs on every request.
        histogram.counts[bisect_left(histogram.bounds, seconds)] += 1
        histogram.total += seconds

    def _add(self, operation: str, outcome: str) -> Histogram:
        if operation not in self._known:
            operation = OTHER
        key = (operation, outcome)
        histogram = self._histograms.get(key)
        if histogram is None:
            histogram = self._histograms[key] = Histogram(REQUEST_BUCKETS)
        return histogram

    def snapshot(self) -> dict[tuple[str, str], HistogramSnapshot]:
        # list() of a dict's items runs without releasing the GIL: a consistent copy.
        return {key: h.snapshot() for key, h in list(self._histograms.items())}


def _buckets(snapshot: HistogramSnapshot) -> list[tuple[str, float]]:
    return [(floatToGoString(bound), count) for bound, count in snapshot.cumulative()]


def _histogram(
    name: str, text: str, labels: list[str], snapshots: Mapping[Any, HistogramSnapshot]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, text, labels=labels)
    for key, snapshot in sorted(snapshots.items()):
        values = list(key) if isinstance(key, tuple) else [key]
        family.add_metric(values, _buckets(snapshot), snapshot.total)
    return family


class ServerCollector(Collector):
    """Every family of the server but the process's, built at scrape time."""

    def __init__(
        self,
        service: SecretsService,
        requests: RequestStats,
        rotations: RotationCounters,
        store_timings: PerThread | None,
        version: str,
        secret_names: bool = False,
        audit: AuditTrail | None = None,
    ) -> None:
        self._service = service
        self._audit = audit
        self._requests = requests
        self._rotations = rotations
        self._store_timings = store_timings
        self._version = version
        self._secret_names = secret_names

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            f"{PREFIX}_build_info", "The running version of secretsd", labels=["version"]
        )
        info.add_metric([self._version], 1)
        yield info
        yield from self._request_families()
        yield from self._rotation_families()
        yield from self._store_families()
        yield from self._audit_families()

    def _audit_families(self) -> Iterator[Metric]:
        if self._audit is None:
            return
        yield CounterMetricFamily(
            f"{PREFIX}_audit_write_failures",
            "Audit records that could not be written (each refused its request)",
            self._audit.failed_records,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_audit_failing",
            "1 while the audit log cannot be written and requests are refused, else 0",
            1 if self._audit.failing else 0,
        )

    def _request_families(self) -> Iterator[Metric]:
        snapshots = self._requests.snapshot()
        requests = CounterMetricFamily(
            f"{PREFIX}_api_requests",
            "Secrets Manager API requests by operation and outcome (ok or the AWS error code)",
            labels=["operation", "outcome"],
        )
        for (operation, outcome), snapshot in sorted(snapshots.items()):
            requests.add_metric([operation, outcome], snapshot.count)
        yield requests
        by_operation: dict[str, list[HistogramSnapshot]] = {}
        for (operation, _), snapshot in snapshots.items():
            by_operation.setdefault(operation, []).append(snapshot)
        merged = {op: merge(parts) for op, parts in by_operation.items()}
        yield _histogram(
            f"{PREFIX}_api_request_duration_seconds",
            "Time from a request's arrival to its answer, by operation",
            ["operation"],
            {op: snapshot for op, snapshot in merged.items() if snapshot is not None},
        )

    def _rotation_families(self) -> Iterator[Metric]:
        attempts = CounterMetricFamily(
            f"{PREFIX}_rotation_attempts",
            "Rotation attempts run by this server, by rotation function and outcome",
            labels=["function", "outcome"],
        )
        for (function, outcome), count in sorted(self._rotations.attempts().items()):
            attempts.add_metric([function, outcome], count)
        yield attempts
        yield _histogram(
            f"{PREFIX}_rotation_step_duration_seconds",
            "Duration of rotation function steps, by step and outcome (ok or failed)",
            ["step", "outcome"],
            self._rotations.steps(),
        )
        problem = self._service.health()
        store_up = GaugeMetricFamily(
            f"{PREFIX}_store_up", "1 when the store answers and the master key can seal, else 0"
        )
        store_up.add_metric([], 1 if problem is None else 0)
        yield store_up
        if problem is not None:
            return  # the rotation gauges would need the store: absent rather than wrong
        try:
            counts = self._service.rotation_counts()
            last = self._service.last_rotations() if self._secret_names else []
        except StorageError:
            return  # the store failed since the check: next scrape
        for name, value, text in (
            ("in_progress", counts.in_progress, "Rotations started and not yet finished"),
            ("failing", counts.failing, "Rotations in progress whose last attempt failed"),
            ("overdue", counts.overdue, "Rotations whose window closed without a success"),
        ):
            yield GaugeMetricFamily(f"{PREFIX}_rotations_{name}", text, value)
        if self._secret_names:
            family = GaugeMetricFamily(
                f"{PREFIX}_rotation_last_success_timestamp_seconds",
                "When each secret last rotated successfully (Unix time)",
                labels=["secret"],
            )
            for name, at in sorted(last):
                family.add_metric([name], at)
            yield family

    def _store_families(self) -> Iterator[Metric]:
        if self._store_timings is None:
            return
        yield _histogram(
            f"{PREFIX}_store_operation_duration_seconds",
            "Time the store took to answer, by operation (decryption included)",
            ["operation"],
            self._store_timings.snapshot(),
        )


def build_registry(collector: ServerCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)
    return registry


class MetricsApp:
    """Serves ``registry`` to requests bearing ``token``."""

    def __init__(self, registry: CollectorRegistry, token: bytes) -> None:
        self._registry = registry
        self._expected = b"Bearer " + token

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if await refuse_method(scope, send):
            return
        if not self._authorized(scope["headers"]):
            await respond(
                send,
                401,
                b"a bearer token is required\n",
                b"text/plain; charset=utf-8",
                ((b"www-authenticate", b'Bearer realm="secretsd metrics"'),),
            )
            return
        body = await in_thread(self._render, "secretsd-metrics")
        await respond(send, 200, body, CONTENT_TYPE)

    def _authorized(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        given = b""
        for name, value in headers:
            if name == b"authorization":
                given = value
                break
        return hmac.compare_digest(given, self._expected)

    def _render(self) -> bytes:
        return generate_latest(self._registry)


class MetricsOff:
    """``/metrics`` on a server started without ``--metrics``: say so, serve nothing."""

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        body = b"metrics are off: start the server with --metrics\n"
        await respond(send, 404, body, b"text/plain; charset=utf-8")
