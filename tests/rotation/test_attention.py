"""The scheduler reads only secrets whose indexed attention time has come: it must never be
later than the first moment ``plan`` acts, or a due rotation would never start."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from secretsd.model.rotation_dates import rotation_attention
from secretsd.model.secret import Secret
from secretsd.rotation.scheduler import Backoff, plan
from tests.support.schedules import RULES

START = 1_704_067_200.0  # 2024-01-01T00:00:00Z
HOUR = 3600.0
offsets = st.floats(0, 90 * 24 * HOUR, allow_nan=False)


@st.composite
def rotating_secrets(draw) -> Secret:
    created = START + draw(offsets)
    base = draw(st.none() | offsets.map(lambda o: created + o))
    return Secret(
        arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf",
        name="s",
        created=created,
        last_changed=created,
        rotation_enabled=draw(st.sampled_from((True, True, True, False, None))),
        rotation_rules=draw(st.none() | st.sampled_from(RULES)),
        rotation_base=base,
        rotation_token=draw(st.none() | st.just("token")),
        rotation_retry_until=draw(st.none() | offsets.map(lambda o: created + o)),
        deleted_date=draw(st.none() | st.just(created)),
    )


@settings(max_examples=500, deadline=None)
@given(secret=rotating_secrets(), later=offsets)
def test_plan_acts_only_once_the_attention_time_has_come(secret: Secret, later: float) -> None:
    now = secret.created + later
    attention = rotation_attention(secret)
    if plan(secret, now, Backoff()) is not None:
        assert attention is not None and attention <= now


def test_a_secret_without_rotation_never_needs_attention() -> None:
    secret = Secret(arn="arn:x", name="s", created=START, last_changed=START)
    assert rotation_attention(secret) is None


def test_a_schedule_needs_attention_when_its_first_window_opens() -> None:
    secret = Secret(
        arn="arn:x",
        name="s",
        created=START + 5 * HOUR,
        last_changed=START,
        rotation_enabled=True,
        rotation_rules={"ScheduleExpression": "cron(0 8 * * ? *)", "Duration": "2h"},
    )
    assert rotation_attention(secret) == START + 8 * HOUR
    assert plan(secret, START + 8 * HOUR - 1, Backoff()) is None
    assert plan(secret, START + 8 * HOUR, Backoff()) is not None
