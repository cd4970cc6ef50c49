"""The rotation metrics of a live server with one rotation failing, one overdue, one done."""

from __future__ import annotations

from tests.ops.conftest import Estate
from tests.support.metrics import scrape
from tests.support.wait import wait_for


def test_rotation_gauges_count_the_failing_overdue_and_in_progress(estate: Estate) -> None:
    scraped = scrape(estate.server.endpoint_url)
    assert scraped.value("secretsd_rotations_failing") == 1
    assert scraped.value("secretsd_rotations_overdue") == 1
    assert scraped.value("secretsd_rotations_in_progress") == 1


def test_attempts_and_step_durations_are_counted(estate: Estate) -> None:
    # The failing rotation is retried with backoff: its count only grows.
    scraped = scrape(estate.server.endpoint_url)
    failed = scraped.value(
        "secretsd_rotation_attempts_total", function="always-fails", outcome="failed"
    )
    assert failed is not None and failed >= 1
    wait_for(
        lambda: (
            scrape(estate.server.endpoint_url).value(
                "secretsd_rotation_attempts_total", function="always-fails", outcome="failed"
            )
            > failed
        )
    )
    succeeded = scraped.value(
        "secretsd_rotation_attempts_total", function="secretsd-generic", outcome="succeeded"
    )
    assert succeeded == 1
    steps = "secretsd_rotation_step_duration_seconds"
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        assert scraped.value(f"{steps}_count", step=step, outcome="ok") == 1
    failures = scraped.value(f"{steps}_count", step="createSecret", outcome="failed")
    assert failures is not None and failures >= failed
    assert scraped.value(f"{steps}_sum", step="createSecret", outcome="failed") > 0


def test_last_rotation_per_secret_only_as_asked(estate: Estate) -> None:
    scraped = scrape(estate.server.endpoint_url)
    last = estate.server.client().describe_secret(SecretId=estate.in_order)["LastRotatedDate"]
    name = "secretsd_rotation_last_success_timestamp_seconds"
    assert abs(scraped.value(name, secret=estate.in_order) - last.timestamp()) < 0.01
    # Secrets that never rotated have no series.
    assert scraped.value(name, secret=estate.failing) is None
    assert scraped.value(name, secret=estate.overdue) is None
