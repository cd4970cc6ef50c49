"""Busy polling: the adaptive window (pure) and the poller's loop turns, with a fake clock and
a fake loop; then a live agent, whose /metrics shows the time spent polling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretsd.agent.busy_poll import (
    DEFAULT_LIMIT_US,
    START_NS,
    BusyPoller,
    PollWindow,
    cpu_quota,
    limit_us,
    read_text,
)
from tests.agent.support import start_agent, write_config

LIMIT = 100_000


def test_window_starts_closed_and_grows_for_gaps_it_would_have_caught():
    window = PollWindow(LIMIT)
    assert window.window_ns == 0
    window.observe(30_000)
    assert window.window_ns == START_NS
    window.observe(30_000)
    assert window.window_ns == 2 * START_NS
    window.observe(30_000)
    assert window.window_ns == 4 * START_NS
    window.observe(30_000)  # caught within 40 us: no change
    assert window.window_ns == 4 * START_NS


def test_window_never_passes_the_limit_and_shrinks_to_zero_for_long_gaps():
    window = PollWindow(LIMIT)
    for _ in range(20):
        window.observe(LIMIT)
    assert window.window_ns == LIMIT
    shrunk = []
    for _ in range(5):
        window.observe(LIMIT + 1)
        shrunk.append(window.window_ns)
    assert shrunk == [50_000, 25_000, 12_500, 0, 0]


def test_a_limit_of_zero_never_polls():
    window = PollWindow(0)
    for gap in (0, 1, 5_000, 10_000_000):
        window.observe(gap)
        assert window.window_ns == 0


@given(st.lists(st.integers(min_value=0, max_value=10**9), max_size=200))
def test_window_stays_within_bounds(gaps):
    window = PollWindow(LIMIT)
    for gap in gaps:
        window.observe(gap)
        assert window.window_ns == 0 or START_NS <= window.window_ns <= LIMIT


class FakeLoop:
    def __init__(self) -> None:
        self.ready: list = []

    def call_soon(self, callback) -> None:
        self.ready.append(callback)

    def run_once(self) -> None:
        ready, self.ready = self.ready, []
        for callback in ready:
            callback()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000_000

    def __call__(self) -> int:
        return self.now


def test_poller_turns_the_loop_for_the_window_then_sleeps():
    loop, clock, yields = FakeLoop(), Clock(), []
    poller = BusyPoller(loop, LIMIT, clock, lambda: yields.append(clock.now))
    clock.now += 20_000
    poller.activity()  # the gap was within the limit: a window opens
    assert poller.window.window_ns == START_NS
    assert len(loop.ready) == 1
    for _ in range(4):  # 3 us a turn
        clock.now += 3_000
        loop.run_once()
    assert len(yields) == 3  # turns at +3, +6, +9 us yield; +12 us is past the window
    assert loop.ready == []
    assert poller.polled_ns == 12_000


def test_a_request_while_polling_keeps_the_loop_turning():
    loop, clock = FakeLoop(), Clock()
    poller = BusyPoller(loop, LIMIT, clock, lambda: None)
    clock.now += 20_000
    poller.activity()
    clock.now += 5_000
    loop.run_once()
    poller.activity()  # caught: one chain of turns, not two
    assert len(loop.ready) == 1
    clock.now += START_NS + 1
    loop.run_once()
    assert loop.ready == []


def test_sparse_requests_never_start_polling():
    loop, clock = FakeLoop(), Clock()
    poller = BusyPoller(loop, LIMIT, clock, lambda: None)
    for _ in range(10):
        clock.now += 5_000_000
        poller.activity()
    assert loop.ready == []
    assert poller.polled_ns == 0


def back_to_back(agent, rounds: int) -> None:
    with agent.connect() as sock:
        request = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
        for _ in range(rounds):
            sock.sendall(request)
            assert sock.recv(1024).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(("limit", "polls"), [(100, True), (0, False)])
def test_a_live_agent_polls_between_back_to_back_requests(shared_server, tmp_path, limit, polls):
    config = write_config(tmp_path, f"busy_poll_us = {limit}\n")
    agent = start_agent(config, shared_server.env)
    try:
        back_to_back(agent, 300)
        assert (agent.metric("secretsd_agent_busy_poll_seconds_total") > 0) is polls
        assert f"busy polling up to {limit} us after a request" in agent.log_text()
    finally:
        agent.stop()


def files(contents: dict[str, str]):
    return contents.get


def test_no_quota_anywhere():
    v2 = files({"/sys/fs/cgroup/cpu.max": "max 100000\n"})
    assert cpu_quota("0::/\n", v2) is None
    v1 = files({"/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n"})
    assert cpu_quota("1:cpu:/\n2:cpuacct:/\n", v1) is None
    assert cpu_quota("", files({})) is None


def test_cgroup_v2_quota_the_tightest_on_the_path():
    read = files(
        {
            "/sys/fs/cgroup/kubepods/cpu.max": "200000 100000\n",
            "/sys/fs/cgroup/kubepods/pod1/cpu.max": "50000 100000\n",
            "/sys/fs/cgroup/kubepods/pod1/agent/cpu.max": "max 100000\n",
        }
    )
    assert cpu_quota("0::/kubepods/pod1/agent\n", read) == 0.5


def test_cgroup_v1_quota_under_either_mount_name():
    combined = files(
        {
            "/sys/fs/cgroup/cpu,cpuacct/docker/c1/cpu.cfs_quota_us": "25000\n",
            "/sys/fs/cgroup/cpu,cpuacct/docker/c1/cpu.cfs_period_us": "100000\n",
        }
    )
    assert cpu_quota("4:cpu,cpuacct:/docker/c1\n", combined) == 0.25
    separate = files(
        {
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "150000\n",
            "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
        }
    )
    assert cpu_quota("1:cpu:/\n", separate) == 1.5


def test_this_machine_can_be_read():
    # Whatever this machine's cgroups say, reading them must not fail.
    quota = cpu_quota(read_text("/proc/self/cgroup") or "", read_text)
    assert quota is None or quota > 0


def test_limit_default_configured_and_off_under_a_quota():
    assert limit_us(None, lambda: None)[0] == DEFAULT_LIMIT_US
    assert limit_us(250, lambda: 0.5)[0] == 250  # an explicit setting always wins
    assert limit_us(0, lambda: None)[0] == 0
    limit, why = limit_us(None, lambda: 0.5)
    assert limit == 0
    assert "quota of 0.5 CPUs" in why
