"""Counters for the server's metrics that cost a few integer operations to bump.

Theory of operation. Hot paths (every API request, every store call) only add to plain
integers and floats; ``/metrics`` reads them when scraped and turns them into metric
families. (A labelled prometheus_client call takes a lock and looks its child up by label
values: several times what an integer in a list costs.) A ``Histogram`` is not
thread-safe on its own: a writer owns it, either by being the only thread that touches it
(the event loop's request counts) or through ``PerThread``, which gives each thread
histograms of its own and sums them when read. Readers copy lists, which CPython does
without letting another thread in, so a scrape sees each histogram whole or one
observation short, never torn.

Nothing here knows HTTP or Prometheus: the rotation machinery and the store wrapper count
into these, the API layer exposes them.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass

# Seconds: 250 us to 10 s covers a cached read to a stuck database round trip.
REQUEST_BUCKETS = (
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)
# A rotation step talks to a database and to the API: tens of milliseconds to minutes.
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass(frozen=True)
class HistogramSnapshot:
    bounds: tuple[float, ...]
    counts: tuple[int, ...]  # per bucket, not cumulative; the last is above every bound
    total: float

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations at or below it)``, infinity last: Prometheus's form."""
        running = 0
        out = []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out

    def __add__(self, other: HistogramSnapshot) -> HistogramSnapshot:
        counts = tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
        return HistogramSnapshot(self.bounds, counts, self.total + other.total)


class Histogram:
    """Observations in buckets (``value <= bound``); one writing thread at a time."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def snapshot(self) -> HistogramSnapshot:
        return HistogramSnapshot(self.bounds, tuple(self.counts), self.total)


def merge(snapshots: Iterable[HistogramSnapshot]) -> HistogramSnapshot | None:
    merged = None
    for snapshot in snapshots:
        merged = snapshot if merged is None else merged + snapshot
    return merged


class PerThread:
    """Histograms by key, written from any thread without a lock: each thread writes its
    own, ``snapshot`` sums them. The table of a thread that has ended is folded into one
    kept for all of them, so short-lived threads (a health check each) add nothing up."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self._local = threading.local()
        self._lock = threading.Lock()  # to register a thread's table, and to fold
        self._tables: list[tuple[threading.Thread, dict[object, Histogram]]] = []
        self._ended: dict[object, HistogramSnapshot] = {}

    def observe(self, key: object, value: float) -> None:
        try:
            histogram = self._local.table[key]
        except (AttributeError, KeyError):
            histogram = self._add(key)
        # Histogram.observe, inlined: this runs on every store call.
        histogram.counts[bisect_left(histogram.bounds, value)] += 1
        histogram.total += value

    def _add(self, key: object) -> Histogram:
        table = getattr(self._local, "table", None)
        if table is None:
            table = self._local.table = {}
            with self._lock:
                self._fold_ended()
                self._tables.append((threading.current_thread(), table))
        histogram = table[key] = Histogram(self.bounds)
        return histogram

    def _fold_ended(self) -> None:
        """Move the tables of ended threads into ``_ended`` (with the lock held): nobody
        writes to them any more."""
        running = []
        for thread, table in self._tables:
            if thread.is_alive():
                running.append((thread, table))
            else:
                _add_into(self._ended, table)
        self._tables = running

    def snapshot(self) -> dict[object, HistogramSnapshot]:
        with self._lock:
            self._fold_ended()
            out = dict(self._ended)
            tables = [table for _, table in self._tables]
        for table in tables:
            _add_into(out, table)
        return out

    def threads(self) -> int:
        """How many threads' tables are kept apart (for tests)."""
        with self._lock:
            self._fold_ended()
            return len(self._tables)


def _add_into(out: dict[object, HistogramSnapshot], table: dict[object, Histogram]) -> None:
    for key, histogram in list(table.items()):
        snap = histogram.snapshot()
        out[key] = out[key] + snap if key in out else snap


class RotationCounters:
    """What the rotation machinery reports: attempts by function and outcome, the duration
    of each step by step and outcome. Rotations are rare; a lock keeps this simple."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: dict[tuple[str, str], int] = {}
        self._steps: dict[tuple[str, str], Histogram] = {}

    def attempt(self, function: str, outcome: str) -> None:
        with self._lock:
            key = (function, outcome)
            self._attempts[key] = self._attempts.get(key, 0) + 1

    def step(self, step: str, outcome: str, seconds: float) -> None:
        with self._lock:
            histogram = self._steps.get((step, outcome))
            if histogram is None:
                histogram = self._steps[(step, outcome)] = Histogram(STEP_BUCKETS)
            histogram.observe(seconds)

    def attempts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._attempts)

    def steps(self) -> dict[tuple[str, str], HistogramSnapshot]:
        with self._lock:
            return {key: h.snapshot() for key, h in self._steps.items()}
