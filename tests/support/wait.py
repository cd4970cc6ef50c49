"""Wait for a condition instead of sleeping a fixed time and hoping it happened.

A fixed sleep before an assertion is either too short on a loaded machine (a flaky test)
or longer than needed everywhere else (a slow one). ``wait_for`` polls with a short
interval and gives up at a deadline, so a test is as fast as the code allows and still
fails, with a message, when the condition never comes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 20.0,
    interval: float = 0.02,
    message: str = "condition not reached in time",
) -> T:
    """Return the first truthy result of ``predicate``; AssertionError after ``timeout`` s.

    The predicate is tried once more at the deadline, so a slow last interval cannot turn a
    condition that did come into a failure.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} (waited {timeout} s)")
        time.sleep(interval)
