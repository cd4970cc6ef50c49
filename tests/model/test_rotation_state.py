"""Where a rotation stands, pure: the document and the newest events in, the state out."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from secretsd.model import rotation, versions
from secretsd.model.rotation_state import (
    RECENT_EVENTS,
    decode_events,
    failing_since,
    latest_failure,
    rotation_state,
)
from secretsd.model.secret import Secret

TOKEN = "a" * 32
OTHER = "b" * 32
DAY = 86400.0


def rotating_secret(*, pending: bool = True, next_rotation: float | None = 10 * DAY) -> Secret:
    secret = Secret(
        arn="arn:aws:secretsmanager:us-east-1:1:secret:s-abcdef", name="s", created=0.0,
        last_changed=0.0,
    )  # fmt: skip
    versions.add_version(secret, "c" * 32, 0.0, None)
    secret.rotation_lambda_arn = "secretsd-generic"
    secret.rotation_enabled = True
    secret.rotation_rules = {"AutomaticallyAfterDays": 10}
    secret.next_rotation = next_rotation
    if pending:
        rotation.begin_rotation(secret, TOKEN, 5.0, function_arn=None, rules=None, immediately=True)
    return secret


def failure(token: str, step: str = "setSecret", **more) -> dict:
    return {"kind": "step", "token": token, "step": step, "outcome": "failed", **more}


def test_no_rotation_configured_is_disabled() -> None:
    secret = rotating_secret(pending=False)
    secret.rotation_enabled = None
    state = rotation_state(secret, [], now=DAY)
    assert (state.condition, state.in_progress, state.overdue) == ("disabled", False, False)
    assert state.next_rotation is None


def test_a_rotation_in_progress_without_failures_is_rotating_since_its_version() -> None:
    state = rotation_state(rotating_secret(), [(6.0, {"kind": "attempt", "token": TOKEN})], DAY)
    assert state.condition == "rotating"
    assert (state.token, state.started, state.failure) == (TOKEN, 5.0, None)


def test_a_failed_step_of_the_rotation_in_progress_makes_it_failing() -> None:
    events = [
        (6.0, {"kind": "attempt", "token": TOKEN, "outcome": "started"}),
        (7.0, failure(TOKEN, error="database refused")),
    ]
    state = rotation_state(rotating_secret(), events, DAY)
    assert state.condition == "failing"
    assert state.failure is not None
    assert (state.failure.since, state.failure.at) == (7.0, 7.0)
    assert (state.failure.step, state.failure.error) == ("setSecret", "database refused")


def test_failing_since_is_carried_by_the_newest_failure() -> None:
    events = [(100.0, failure(TOKEN, failing_since=7.0))]
    found = latest_failure(events, TOKEN)
    assert found is not None and (found.since, found.at) == (7.0, 100.0)


def test_failures_of_another_rotation_or_before_a_success_do_not_count() -> None:
    assert rotation_state(rotating_secret(), [(6.0, failure(OTHER))], DAY).failure is None
    events = [
        (6.0, failure(TOKEN)),
        (7.0, {"kind": "attempt", "token": TOKEN, "outcome": "succeeded"}),
    ]
    assert latest_failure(events, TOKEN) is None


def test_a_rotation_test_that_failed_is_not_a_rotation_failing() -> None:
    secret = rotating_secret(pending=False)
    events = [(6.0, {"kind": "test", "token": OTHER, "outcome": "failed"})]
    assert rotation_state(secret, events, DAY).condition == "ok"


def test_overdue_once_the_next_rotation_date_has_passed() -> None:
    secret = rotating_secret(pending=False, next_rotation=2 * DAY)
    assert not rotation_state(secret, [], 2 * DAY - 1).overdue
    state = rotation_state(secret, [], 2 * DAY + 1)
    assert state.overdue and state.condition == "overdue"
    # Failing outranks overdue; a secret scheduled for deletion is never overdue.
    failing = rotating_secret(next_rotation=2 * DAY)
    assert rotation_state(failing, [(6.0, failure(TOKEN))], 3 * DAY).condition == "failing"
    secret.deleted_date = DAY
    assert not rotation_state(secret, [], 3 * DAY).overdue


def test_rotation_on_demand_only_is_never_overdue() -> None:
    secret = rotating_secret(pending=False, next_rotation=None)
    secret.rotation_rules = None
    assert rotation_state(secret, [], 100 * DAY).condition == "ok"


def test_undecodable_events_are_skipped() -> None:
    raw = [(1.0, b"not json"), (2.0, b"[1]"), (3.0, json.dumps(failure(TOKEN)).encode())]
    assert decode_events(raw) == [(3.0, failure(TOKEN))]


@settings(max_examples=100, deadline=None)
@given(attempts=st.lists(st.integers(0, 3), min_size=1, max_size=80))
def test_failing_since_survives_any_number_of_attempts(attempts: list[int]) -> None:
    """Failures recorded as the orchestrator records them, each reading only the newest
    events: the newest failure names the first one, however far back it is."""
    stored: list[tuple[float, dict]] = []
    first = None
    for steps_ok in attempts:
        at = float(len(stored))
        stored.append((at, {"kind": "attempt", "token": TOKEN, "outcome": "started"}))
        stored += [
            (at, {"kind": "step", "token": TOKEN, "step": n, "outcome": "ok"})
            for n in range(steps_ok)
        ]
        since = failing_since(stored[-RECENT_EVENTS:], TOKEN, at)
        stored.append((at, failure(TOKEN, failing_since=since)))
        first = at if first is None else first
        found = latest_failure(stored[-RECENT_EVENTS:], TOKEN)
        assert found is not None and (found.since, found.at) == (first, at)
    stored.append((float(len(stored)), {"kind": "attempt", "token": TOKEN, "outcome": "succeeded"}))
    assert latest_failure(stored[-RECENT_EVENTS:], TOKEN) is None
