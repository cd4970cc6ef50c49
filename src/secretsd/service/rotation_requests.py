"""Rotations that RotateSecret asks for, handed from the service to whoever runs them.

The service and the scheduler are built around one ``RotationRequests``: the service puts
requests in after the change that asked for them is durable, the scheduler takes them out
when it wakes. Neither holds the other, so each is built whole, with nothing patched on
afterwards, and a service without a scheduler (a command reading a store) simply leaves
its requests unread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Requested:
    """What the scheduler should look at now."""

    # Secrets to rotate at once (forget any backoff from earlier failures).
    rotate: frozenset[str] = field(default_factory=frozenset)
    # Secrets whose function should be checked with testSecret (RotateImmediately=false).
    test: frozenset[str] = field(default_factory=frozenset)


class RotationRequests:
    """A thread-safe mailbox of rotation requests with a wake-up event."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rotate: set[str] = set()
        self._test: set[str] = set()
        self.wake = threading.Event()

    def rotate(self, arn: str) -> None:
        with self._lock:
            self._rotate.add(arn)
        self.wake.set()

    def test(self, arn: str) -> None:
        with self._lock:
            self._test.add(arn)
        self.wake.set()

    def take(self) -> Requested:
        """Everything requested since the last call, and clear the wake-up."""
        with self._lock:
            self.wake.clear()
            taken = Requested(frozenset(self._rotate), frozenset(self._test))
            self._rotate.clear()
            self._test.clear()
        return taken
