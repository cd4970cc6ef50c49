"""What the console shows, as pure functions of the service's answers: no server, no clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from secretsd.api.console import actions
from secretsd.api.console.rotation_view import (
    BAR_AREA,
    FAILING,
    IN_PROGRESS,
    LABEL_WIDTH,
    OFF,
    OK,
    OVERDUE,
    STEPS,
    Attempt,
    Step,
    attempts,
    badge,
    chart,
)
from secretsd.api.console.views import schedule, timeline
from secretsd.model.rotation_dates import refresh_next_rotation
from secretsd.model.secret import Secret
from secretsd.service.render import describe
from tests.support.schedules import RULES

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC).timestamp()  # a Monday, 10:00 UTC
DAY = 86400.0


def step(token: str, name: str, outcome: str = "ok", at: float = T0, ms: float = 10.0) -> dict:
    event = {"kind": "step", "token": token, "step": name, "outcome": outcome, "time": at}
    event["duration_ms"] = ms
    if outcome == "failed":
        event["error"] = "FunctionError: boom"
    return event


def started(token: str, at: float = T0) -> dict:
    return {"kind": "attempt", "token": token, "function": "f", "outcome": "started", "time": at}


def test_history_events_group_into_attempts() -> None:
    events = [
        started("a"),
        *(step("a", name) for name in STEPS),
        {"kind": "attempt", "token": "a", "outcome": "succeeded", "duration_ms": 45.0},
        started("b", T0 + DAY),
        step("b", "createSecret"),
        step("b", "setSecret", "failed"),
        started("b", T0 + DAY + 60),  # the retry of the same rotation
        step("b", "createSecret"),
        step("t", "testSecret", "failed"),  # RotateImmediately=false, function refused
        {"kind": "test", "token": "u", "step": "testSecret", "outcome": "ok"},
    ]
    found = attempts(events)
    assert [(a.kind, a.token, a.outcome) for a in found] == [
        ("rotation", "a", "succeeded"),
        ("rotation", "b", "failed"),
        ("rotation", "b", "in progress"),
        ("test", "t", "failed"),
        ("test", "u", "ok"),
    ]
    assert [s.name for s in found[0].steps] == list(STEPS)
    assert found[0].duration_ms == 45.0
    assert found[1].error == "FunctionError: boom"


def test_badges_name_describe_rotations_condition() -> None:
    assert badge({}, {"Condition": "ok"}) == OK
    assert badge({}, {"Condition": "rotating"}) == IN_PROGRESS
    assert badge({}, {"Condition": "failing"}) == FAILING
    assert badge({}, {"Condition": "overdue"}) == OVERDUE
    assert badge({}, {"Condition": "disabled"}) == OFF
    assert badge({"DeletedDate": T0}, {"Condition": "failing"}).kind == "deleted"
    assert badge({}, {}).kind == "unknown"  # DescribeRotation was refused


def test_the_timeline_is_newest_first_with_the_placeholder_on_top() -> None:
    versions = [
        {"VersionId": "old", "CreatedDate": T0},
        {"VersionId": "cur", "CreatedDate": T0 + 10, "VersionStages": ["AWSCURRENT"]},
    ]
    stages = {"cur": ["AWSCURRENT"], "pend": ["AWSPENDING"]}
    entries = timeline(versions, stages)
    assert [(e.version_id, e.stages, e.placeholder) for e in entries] == [
        ("pend", ("AWSPENDING",), True),
        ("cur", ("AWSCURRENT",), False),
        ("old", (), False),
    ]


def test_next_windows_of_a_days_schedule() -> None:
    view = schedule(
        {"RotationRules": {"AutomaticallyAfterDays": 7}, "LastRotatedDate": T0}, T0 + 60
    )
    assert view is not None and view.problem is None
    midnight = T0 - 10 * 3600
    assert view.windows[0] == (midnight + 7 * DAY, midnight + 8 * DAY)
    assert [opens - midnight for opens, _ in view.windows] == [7 * DAY * n for n in range(1, 6)]


def test_next_windows_of_a_cron_schedule_as_describe_secret_shows_it() -> None:
    rules = {
        "AutomaticallyAfterDays": 1,  # DescribeSecret adds it beside the expression
        "ScheduleExpression": "cron(0 16 ? * MON-FRI *)",
        "Duration": "2h",
    }
    view = schedule({"RotationRules": rules, "CreatedDate": T0}, T0)
    assert view is not None and view.problem is None
    starts = [datetime.fromtimestamp(o, UTC) for o, _ in view.windows]
    assert [s.strftime("%a %H:%M") for s in starts] == [
        "Mon 16:00",
        "Tue 16:00",
        "Wed 16:00",
        "Thu 16:00",
        "Fri 16:00",
    ]
    assert all(closes - opens == 7200 for opens, closes in view.windows)
    assert schedule({}, T0) is None


durations = st.lists(st.floats(0, 600_000, allow_nan=False), min_size=1, max_size=4)


@given(st.lists(durations, min_size=1, max_size=20))
def test_the_chart_keeps_every_bar_inside_its_area(runs: list[list[float]]) -> None:
    history = [
        Attempt(
            "rotation", T0 + i, steps=[Step(n, "ok", ms) for n, ms in zip(STEPS, run, strict=False)]
        )
        for i, run in enumerate(runs)
    ]
    drawn = chart(history)
    assert drawn is not None
    assert len(drawn.rows) == min(len(runs), 12)
    longest = max(max(sum(run) for run in runs[-12:]), 1.0)
    for row, run in zip(drawn.rows, reversed(runs[-12:]), strict=True):
        assert row.segments[0].x == LABEL_WIDTH
        end = row.segments[-1].x + row.segments[-1].width
        # Each segment is at least a pixel wide, so a bar may pass its share by that much.
        assert end <= LABEL_WIDTH + BAR_AREA + len(run) + 1e-6
        if longest:
            assert (
                abs(sum(s.width for s in row.segments) - max(sum(run) / longest * BAR_AREA, 0))
                <= len(run) + 1e-6
            )


def test_the_search_form_becomes_list_filters() -> None:
    body = actions.list_request("db/", "team=pay", True, "tok", 50)
    assert body["Filters"] == [
        {"Key": "name", "Values": ["db/"]},
        {"Key": "tag-key", "Values": ["team"]},
        {"Key": "tag-value", "Values": ["pay"]},
    ]
    assert body["IncludePlannedDeletion"] is True and body["NextToken"] == "tok"
    assert "Filters" not in actions.list_request("", "", False, None, 50)


@given(
    rules=st.sampled_from(RULES),
    enabled_after=st.floats(0, 40 * DAY),
    rotated_after=st.none() | st.floats(0, 40 * DAY),
    looked_after=st.floats(0, 3 * DAY),
)
def test_the_first_window_is_the_one_describe_secret_names(
    rules, enabled_after, rotated_after, looked_after
) -> None:
    secret = Secret(
        arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf",
        name="s",
        created=T0,
        last_changed=T0,
        rotation_enabled=True,
        rotation_rules=rules,
        rotation_base=T0 + enabled_after,
    )
    if rotated_after is not None:
        secret.last_rotated = secret.rotation_base = T0 + enabled_after + rotated_after
    now = secret.rotation_base + looked_after
    refresh_next_rotation(secret, now)
    view = schedule(describe(secret), now)
    assert view is not None and view.problem is None
    opens, closes = view.windows[0]
    assert closes - 1 == secret.next_rotation
    assert opens < closes
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(view.windows))
