"""Busy polling: after a request, keep the event loop awake for a short, adaptive window.

Why: on a virtual machine, a CPU that went idle is woken through the hypervisor. On the
2-core KVM guest this project is measured on (its kernel's own halt polling is switched off)
that costs about 40 us per wake, against about 1 us of Python for a cache hit. A client that
asks again soon (a request loop, a burst of reads at start) pays one wake per request on
the agent's side. Polling for a few tens of microseconds after a request catches the next
one awake.

The window adapts, as Linux's haltpoll governor does, so that CPU is only spent where it
pays: a request that comes after the window but within the limit doubles the window (we
would have caught it), one that comes after the limit halves it, down to zero. Traffic with
gaps longer than the limit (most services: a read now and then) settles at no polling.
While polling, each loop turn yields the CPU, so a process sharing the core is not starved.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

START_NS = 10_000
DEFAULT_LIMIT_US = 100


class PollWindow:
    """How long to poll after a request; pure, fed with the gaps between requests."""

    __slots__ = ("limit_ns", "window_ns")

    def __init__(self, limit_ns: int) -> None:
        self.limit_ns = limit_ns
        self.window_ns = 0

    def observe(self, gap_ns: int) -> None:
        """Adjust to the time between one request and the next."""
        if gap_ns <= self.window_ns:
            return  # caught while polling
        if gap_ns <= self.limit_ns:
            self.window_ns = min(self.limit_ns, max(START_NS, self.window_ns * 2))
        else:
            halved = self.window_ns // 2
            self.window_ns = halved if halved >= START_NS else 0


class BusyPoller:
    """Keeps ``loop`` turning (without blocking in epoll) for the window after activity."""

    __slots__ = ("_clock", "_loop", "_started_ns", "_yield", "last_ns", "polled_ns", "window")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        limit_ns: int,
        clock: Callable[[], int] = time.monotonic_ns,
        yield_cpu: Callable[[], None] = os.sched_yield,
    ) -> None:
        self._loop = loop
        self._clock = clock
        self._yield = yield_cpu
        self._started_ns = 0  # 0: not polling
        self.window = PollWindow(limit_ns)
        self.last_ns = clock()
        self.polled_ns = 0  # CPU spent polling, for /metrics

    def activity(self) -> None:
        """Called when a request arrives."""
        now = self._clock()
        window = self.window
        window.observe(now - self.last_ns)
        self.last_ns = now
        if window.window_ns and not self._started_ns:
            self._started_ns = now
            self._loop.call_soon(self._turn)

    def _turn(self) -> None:
        # A ready callback makes the loop poll its sockets with a zero timeout.
        now = self._clock()
        if now - self.last_ns < self.window.window_ns:
            self._yield()
            self._loop.call_soon(self._turn)
        else:
            self.polled_ns += now - self._started_ns
            self._started_ns = 0


def cpu_quota(proc_cgroup: str, read: Callable[[str], str | None]) -> float | None:
    """The CPUs a cgroup quota allows this process (the tightest on its path), or None.

    Polling spends CPU time a quota counts, and a quota that runs out stalls the whole
    process for the rest of its period (100 ms by default): the opposite of what polling is
    for. ``proc_cgroup`` is /proc/self/cgroup; ``read`` returns a file's text or None.
    """
    limits: list[float] = []
    for line in proc_cgroup.splitlines():
        _, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if not controllers:  # cgroup v2: "max 100000" or "50000 100000"
            for directory in _ancestors(path):
                fields = (read(f"/sys/fs/cgroup{directory}/cpu.max") or "").split()
                if len(fields) == 2 and fields[0] != "max":
                    limits.append(int(fields[0]) / int(fields[1]))
        elif "cpu" in controllers.split(","):  # cgroup v1: a quota of -1 is no quota
            for mount in dict.fromkeys((controllers, "cpu")):
                for directory in _ancestors(path):
                    base = f"/sys/fs/cgroup/{mount}{directory}"
                    quota = (read(f"{base}/cpu.cfs_quota_us") or "").strip()
                    period = (read(f"{base}/cpu.cfs_period_us") or "").strip()
                    if quota.isdigit() and period.isdigit() and int(period):
                        limits.append(int(quota) / int(period))
    return min(limits) if limits else None


def limit_us(configured: int | None, quota: Callable[[], float | None]) -> tuple[int, str]:
    """The polling limit to use, and why: as configured, else the default unless a CPU
    quota applies."""
    if configured is not None:
        return configured, "as configured"
    cpus = quota()
    if cpus is not None:
        return 0, f"off: a cgroup CPU quota of {cpus:g} CPUs applies (set busy_poll_us to poll)"
    return DEFAULT_LIMIT_US, "the default"


def process_quota() -> float | None:
    """The CPU quota of this process, from /proc/self/cgroup."""
    return cpu_quota(read_text("/proc/self/cgroup") or "", read_text)


def _ancestors(path: str) -> list[str]:
    """ "/a/b" -> ["/a/b", "/a", ""]: a cgroup and each parent, up to the mount's root."""
    parts = [part for part in path.split("/") if part]
    return ["".join(f"/{part}" for part in parts[:end]) for end in range(len(parts), -1, -1)]


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as file:
            return file.read()
    except (OSError, UnicodeDecodeError):
        return None
