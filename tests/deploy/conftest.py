"""Gates for the deployment tests: what they need from the machine, and CI's say."""

from __future__ import annotations

import os

import pytest

REQUIRE_DEPLOY = os.environ.get("SECRETSD_REQUIRE_DEPLOY") == "1"


def unavailable(reason: str) -> None:
    """Skip, unless CI said the deployment checks must run (SECRETSD_REQUIRE_DEPLOY=1)."""
    if REQUIRE_DEPLOY:
        pytest.fail(f"{reason} (required here: SECRETSD_REQUIRE_DEPLOY=1)")
    pytest.skip(reason)
