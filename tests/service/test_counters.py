"""The metrics counters, pure: buckets, sums across threads, rotation counts."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from secretsd.service.counters import Histogram, PerThread, RotationCounters, merge

BOUNDS = (0.1, 1.0, 10.0)


def test_a_value_on_a_bound_falls_in_that_bucket_and_buckets_accumulate() -> None:
    histogram = Histogram(BOUNDS)
    for value in (0.1, 0.5, 1.0, 2.0, 50.0):
        histogram.observe(value)
    snapshot = histogram.snapshot()
    assert snapshot.counts == (1, 2, 1, 1)
    assert snapshot.cumulative() == [(0.1, 1), (1.0, 3), (10.0, 4), (float("inf"), 5)]
    assert snapshot.count == 5 and snapshot.total == 53.6


@given(st.lists(st.floats(0, 100, allow_nan=False), max_size=50))
def test_the_last_bucket_holds_every_observation(values: list[float]) -> None:
    histogram = Histogram(BOUNDS)
    for value in values:
        histogram.observe(value)
    cumulative = histogram.snapshot().cumulative()
    assert cumulative[-1][1] == len(values)
    assert [count for _, count in cumulative] == sorted(count for _, count in cumulative)
    for bound, count in cumulative:
        assert count == sum(1 for value in values if value <= bound)


def test_per_thread_histograms_lose_no_observation() -> None:
    timings = PerThread(BOUNDS)

    def observe(key: str) -> None:
        for _ in range(5000):
            timings.observe(key, 0.5)

    threads = [threading.Thread(target=observe, args=(key,)) for key in ("read", "write") * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snapshot = timings.snapshot()
    assert {key: s.count for key, s in snapshot.items()} == {"read": 20000, "write": 20000}
    assert snapshot["read"].total == 10000.0
    # The threads have ended: their tables are folded into one, their counts kept.
    assert timings.threads() == 0
    assert {key: s.count for key, s in timings.snapshot().items()} == {
        "read": 20000,
        "write": 20000,
    }
    timings.observe("read", 5.0)
    assert timings.threads() == 1 and timings.snapshot()["read"].count == 20001
    merged = merge(snapshot.values())
    assert merged is not None and merged.count == 40000
    assert merge([]) is None


def test_rotation_counters_count_attempts_and_time_steps() -> None:
    counters = RotationCounters()
    counters.attempt("secretsd-generic", "succeeded")
    counters.attempt("secretsd-generic", "succeeded")
    counters.attempt("always-fails", "failed")
    counters.step("createSecret", "ok", 0.02)
    counters.step("setSecret", "failed", 3.0)
    assert counters.attempts() == {
        ("secretsd-generic", "succeeded"): 2,
        ("always-fails", "failed"): 1,
    }
    steps = counters.steps()
    assert steps[("setSecret", "failed")].count == 1
    assert steps[("setSecret", "failed")].total == 3.0
