"""Rotation rules of every kind a schedule can take, for tests that sweep them."""

from __future__ import annotations

RULES = (
    {"AutomaticallyAfterDays": 1},
    {"AutomaticallyAfterDays": 30},
    {"AutomaticallyAfterDays": 7, "Duration": "3h"},
    {"ScheduleExpression": "rate(4 hours)"},
    {"ScheduleExpression": "rate(10 days)", "Duration": "2h"},
    {"ScheduleExpression": "cron(0 8 * * ? *)", "Duration": "2h"},
    {"ScheduleExpression": "cron(0 4/6 * * ? *)"},
    {"ScheduleExpression": "cron(0 10 ? * MON-FRI *)"},
)
