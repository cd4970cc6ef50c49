"""Rotation schedules: known dates, validation, and properties against a naive reference.

The reference walks the calendar one day at a time and decides each day from the pieces
the expression was built from (not from the expression text), with its own formulas for
weekdays, nearest weekdays and last days; the module under test must agree with it.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from secretsd.model import errors
from secretsd.model.schedule import BOTH_GIVEN, parse_rotation_rules

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# -- known cases --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "last", "start"),
    [
        ("cron(0 16 1,15 * ? *)", at(2024, 2, 15, 16, 30), at(2024, 3, 1, 16)),
        ("cron(0 16 1,15 * ? *)", at(2024, 3, 1, 15, 59), at(2024, 3, 1, 16)),
        ("cron(0 17 L * ? *)", at(2024, 2, 1), at(2024, 2, 29, 17)),
        ("cron(0 17 L * ? *)", at(2100, 2, 1), at(2100, 2, 28, 17)),
        ("cron(0 17 L * ? *)", at(2023, 12, 31, 17, 30), at(2024, 1, 31, 17)),
        ("cron(0 1 ? 1/3 SUN#1 *)", at(2024, 1, 7, 1, 30), at(2024, 4, 7, 1)),
        ("cron(0 8 ? * MON-FRI *)", at(2024, 3, 1, 9), at(2024, 3, 4, 8)),
        ("cron(0 0 ? * 6L *)", at(2024, 2, 1), at(2024, 2, 23)),
        ("cron(0 0 ? * FRIL *)", at(2024, 2, 1), at(2024, 2, 23)),
        ("cron(0 18 ? * SAT *)", at(2024, 2, 29), at(2024, 3, 2, 18)),
        ("cron(0 18 ? * L *)", at(2024, 2, 29), at(2024, 3, 2, 18)),
        ("cron(0 10 15W * ? *)", at(2024, 6, 1), at(2024, 6, 14, 10)),  # 15th is a Saturday
        ("cron(0 10 1W * ? *)", at(2024, 8, 31), at(2024, 9, 2, 10)),  # 1st is a Sunday
        ("cron(0 10 1W * ? *)", at(2024, 5, 31), at(2024, 6, 3, 10)),  # Saturday 1st: Monday
        ("cron(0 10 LW * ? *)", at(2024, 8, 1), at(2024, 8, 30, 10)),  # 31st is a Saturday
        ("cron(0 10 LW * ? *)", at(2024, 3, 1), at(2024, 3, 29, 10)),  # 31st is a Sunday
        ("cron(0 10 31W * ? *)", at(2024, 3, 1), at(2024, 3, 29, 10)),  # last day, a Sunday
        ("cron(0 4/12 * * ? *)", at(2024, 12, 31, 16, 30), at(2025, 1, 1, 4)),
        ("cron(0 /8 * * ? *)", at(2024, 2, 28, 23), at(2024, 2, 29)),
        ("cron(0 2/10 * * ? *)", at(2024, 2, 28, 22), at(2024, 2, 29, 2)),
        ("cron(0 0 ? NOV-FEB 2#1 *)", at(2024, 2, 6), at(2024, 11, 4)),
        ("cron(0 0 29 * ? *)", at(2100, 1, 29, 1), at(2100, 3, 29)),
        ("cron(0 12 1 1 ? *)", at(2024, 1, 1, 12), at(2025, 1, 1, 12)),
        ("rate(4 hours)", at(2024, 2, 28, 22, 10), at(2024, 2, 29)),
        ("rate(5 hours)", at(1970, 1, 1, 23), at(1970, 1, 2, 1)),
        ("rate(10 days)", at(2024, 2, 25, 13), at(2024, 3, 6)),
        ("rate(10 days)", at(2100, 2, 25, 13), at(2100, 3, 7)),
        ("rate(1 day)", at(2024, 12, 31, 23, 59), at(2025, 1, 1)),
    ],
)
def test_next_window_start(expression: str, last: datetime, start: datetime) -> None:
    rules = parse_rotation_rules({"ScheduleExpression": expression})
    assert rules.next_window(last).start == start


def test_after_days_counts_from_the_day_of_the_last_rotation() -> None:
    rules = parse_rotation_rules({"AutomaticallyAfterDays": 365})
    window = rules.next_window(at(2024, 1, 1, 18, 45))
    assert (window.start, window.end) == (at(2024, 12, 31), at(2025, 1, 1))
    assert rules.next_rotation_date(at(2024, 1, 1, 18, 45)) == at(2024, 12, 31, 23, 59, 59)
    assert parse_rotation_rules({"AutomaticallyAfterDays": 1}).next_window(
        at(2024, 2, 28, 23, 59)
    ).start == at(2024, 2, 29)


def test_windows_default_and_explicit_lengths() -> None:
    days = parse_rotation_rules({"ScheduleExpression": "cron(0 16 1,15 * ? *)"})
    assert days.window_end(at(2024, 3, 1, 16)) == at(2024, 3, 2)
    hours = parse_rotation_rules({"ScheduleExpression": "cron(0 4/12 * * ? *)"})
    assert hours.window_end(at(2024, 3, 1, 16)) == at(2024, 3, 1, 17)
    rate = parse_rotation_rules({"ScheduleExpression": "rate(6 hours)"})
    assert rate.window_end(at(2024, 3, 1, 18)) == at(2024, 3, 1, 19)
    explicit = parse_rotation_rules(
        {"ScheduleExpression": "cron(0 16 1,15 * ? *)", "Duration": "2h"}
    )
    assert explicit.window_end(at(2024, 3, 1, 16)) == at(2024, 3, 1, 18)
    assert explicit.next_rotation_date(at(2024, 2, 20)) == at(2024, 3, 1, 17, 59, 59)


def test_is_due_only_inside_a_window_opened_after_the_last_rotation() -> None:
    rules = parse_rotation_rules({"ScheduleExpression": "cron(0 16 1,15 * ? *)", "Duration": "2h"})
    last = at(2024, 2, 15, 16, 20)
    assert not rules.is_due(last, at(2024, 2, 15, 17))  # same window, already rotated
    assert not rules.is_due(last, at(2024, 3, 1, 15, 59))
    assert rules.is_due(last, at(2024, 3, 1, 16))
    assert rules.is_due(last, at(2024, 3, 1, 17, 59, 59))
    assert not rules.is_due(last, at(2024, 3, 1, 18))


def test_a_missed_window_moves_the_next_rotation_on() -> None:
    after = parse_rotation_rules({"AutomaticallyAfterDays": 7, "Duration": "4h"})
    last = at(2024, 2, 20, 10)
    assert after.next_window(last).start == at(2024, 2, 27)
    assert after.is_due(last, at(2024, 3, 2, 3))  # every later day's window counts
    assert not after.is_due(last, at(2024, 3, 2, 4))
    assert after.next_window(last, now=at(2024, 3, 2, 3)).start == at(2024, 3, 2)
    assert after.next_window(last, now=at(2024, 3, 2, 5)).start == at(2024, 3, 3)
    cron = parse_rotation_rules({"ScheduleExpression": "cron(0 16 1,15 * ? *)"})
    assert cron.next_window(at(2024, 1, 1, 17), now=at(2024, 2, 10)).start == at(2024, 2, 15, 16)
    assert cron.next_window(at(2024, 1, 1, 17), now=at(2024, 1, 10)).start == at(2024, 1, 15, 16)


@pytest.mark.parametrize(
    ("rules", "wire"),
    [
        ({"AutomaticallyAfterDays": 30}, {"AutomaticallyAfterDays": 30}),
        (
            {"AutomaticallyAfterDays": 30, "Duration": "3h"},
            {"AutomaticallyAfterDays": 30, "Duration": "3h"},
        ),
        (
            {"ScheduleExpression": "cron(0 16 1,15 * ? *)", "Duration": "2h"},
            {
                "AutomaticallyAfterDays": 14,
                "Duration": "2h",
                "ScheduleExpression": "cron(0 16 1,15 * ? *)",
            },
        ),
        (
            {"ScheduleExpression": "rate(10 days)"},
            {"AutomaticallyAfterDays": 10, "ScheduleExpression": "rate(10 days)"},
        ),
        (
            {"ScheduleExpression": "rate(4 hours)"},
            {"AutomaticallyAfterDays": 1, "ScheduleExpression": "rate(4 hours)"},
        ),
        (
            {"ScheduleExpression": "cron(0 18 ? * SAT *)"},
            {"AutomaticallyAfterDays": 7, "ScheduleExpression": "cron(0 18 ? * SAT *)"},
        ),
    ],
)
def test_wire_form(rules: dict, wire: dict) -> None:
    parsed = parse_rotation_rules(rules)
    assert parsed.to_wire() == wire
    # The stored form reads back to the same rules; the wire form (both fields) would not.
    assert parsed.to_request() == rules
    assert parse_rotation_rules(parsed.to_request()) == parsed


def test_windows_hold_their_start_but_not_their_end() -> None:
    window = parse_rotation_rules({"AutomaticallyAfterDays": 2, "Duration": "3h"}).window(
        at(2024, 2, 29)
    )
    assert at(2024, 2, 29) in window
    assert at(2024, 2, 29, 2, 59, 59) in window
    assert at(2024, 2, 29, 3) not in window
    assert at(2024, 2, 28, 23, 59) not in window


def test_both_schedules_at_once_is_refused_with_the_service_text() -> None:
    with pytest.raises(errors.InvalidParameter) as caught:
        parse_rotation_rules({"AutomaticallyAfterDays": 3, "ScheduleExpression": "rate(3 days)"})
    assert caught.value.message == BOTH_GIVEN
    assert BOTH_GIVEN == (
        "You cannot specify both rotation frequency and schedule expression together."
    )


@pytest.mark.parametrize(
    "rules",
    [
        {},
        {"Duration": "2h"},
        {"ScheduleExpression": "rate(3 hours)"},
        {"ScheduleExpression": "rate(0 days)"},
        {"ScheduleExpression": "rate(1000 days)"},
        {"ScheduleExpression": "rate(5 minutes)"},
        {"ScheduleExpression": "rate(5days)"},
        {"ScheduleExpression": "RATE(5 days)"},
        {"ScheduleExpression": "every day"},
        {"ScheduleExpression": "cron(0 16 1 * ?)"},
        {"ScheduleExpression": "cron(30 16 1 * ? *)"},
        {"ScheduleExpression": "cron(0 16 1 * ? 2025)"},
        {"ScheduleExpression": "cron(0 16 1 * MON *)"},
        {"ScheduleExpression": "cron(0 16 ? * ? *)"},
        {"ScheduleExpression": "cron(0 */2 * * ? *)"},
        {"ScheduleExpression": "cron(0 * * * ? *)"},
        {"ScheduleExpression": "cron(0 0,2 * * ? *)"},
        {"ScheduleExpression": "cron(0 24 * * ? *)"},
        {"ScheduleExpression": "cron(0 0 32 * ? *)"},
        {"ScheduleExpression": "cron(0 0 0 * ? *)"},
        {"ScheduleExpression": "cron(0 0 1 13 ? *)"},
        {"ScheduleExpression": "cron(0 0 ? * 8 *)"},
        {"ScheduleExpression": "cron(0 0 ? * SUN#6 *)"},
        {"ScheduleExpression": "cron(0 0 ? * FOO *)"},
        {"ScheduleExpression": "cron(0 0 1/0 * ? *)"},
        {"ScheduleExpression": "cron(0 0 1,,2 * ? *)"},
        {"ScheduleExpression": "cron(0 0 31 2 ? *)"},  # never
        {"ScheduleExpression": "cron(0 0 30W 2 ? *)"},  # never
        {"ScheduleExpression": "cron(0 0 29 2 ? *)"},  # years apart
        {"ScheduleExpression": "rate(4 hours)", "Duration": "5h"},
        {"ScheduleExpression": "cron(0 22 * * ? *)", "Duration": "3h"},
        {"ScheduleExpression": "cron(0 0/6 * * ? *)", "Duration": "7h"},
        {"ScheduleExpression": "cron(0 4,20 * * ? *)", "Duration": "5h"},
        {"AutomaticallyAfterDays": 3, "Duration": "0h"},
        {"AutomaticallyAfterDays": 3, "Duration": "25h"},
    ],
)
def test_invalid_rules(rules: dict) -> None:
    with pytest.raises(errors.InvalidParameter):
        parse_rotation_rules(rules)


@pytest.mark.parametrize(
    "rules",
    [
        {"AutomaticallyAfterDays": 0},
        {"AutomaticallyAfterDays": 1001},
        {"ScheduleExpression": ""},
        {"ScheduleExpression": "rate(5 days)!"},
        {"ScheduleExpression": "cron(" + "0 " * 200 + ")"},
        {"AutomaticallyAfterDays": 3, "Duration": "2"},
        {"AutomaticallyAfterDays": 3, "Duration": "100h"},
        {"AutomaticallyAfterDays": 3, "Duration": "2 h"},
    ],
)
def test_shape_constraints_are_validation_errors(rules: dict) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        parse_rotation_rules(rules)
    assert "at 'rotationRules." in caught.value.message


@pytest.mark.parametrize(
    "rules",
    [
        {"AutomaticallyAfterDays": "30"},
        {"AutomaticallyAfterDays": True},
        {"AutomaticallyAfterDays": 2.5},
        {"ScheduleExpression": 5},
        {"ScheduleExpression": "rate(2 days)", "Duration": 2},
    ],
)
def test_wrong_types_are_serialization_errors(rules: dict) -> None:
    with pytest.raises(errors.SerializationError):
        parse_rotation_rules(rules)


def test_valid_edges_are_accepted() -> None:
    for rules in (
        {"AutomaticallyAfterDays": 1},
        {"AutomaticallyAfterDays": 1000, "Duration": "24h"},
        {"ScheduleExpression": "rate(999 days)"},
        {"ScheduleExpression": "rate(4 hours)", "Duration": "4h"},
        {"ScheduleExpression": "cron(0 22 * * ? *)", "Duration": "2h"},
        {"ScheduleExpression": "cron(0 0/6 * * ? *)", "Duration": "6h"},
        {"ScheduleExpression": "cron(0 0 ? * sun#5 *)"},
        {"ScheduleExpression": "cron(0 0 L 2 ? *)"},
    ):
        assert parse_rotation_rules(rules).to_wire()["AutomaticallyAfterDays"] >= 1


def test_times_must_carry_a_zone() -> None:
    rules = parse_rotation_rules({"AutomaticallyAfterDays": 2})
    with pytest.raises(ValueError):
        rules.next_window(datetime(2024, 1, 1))


# -- the naive reference ------------------------------------------------------------------


def cron_weekday(day: date) -> int:
    return day.isoweekday() % 7 + 1  # Sunday 1 ... Saturday 7


def month_length(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def is_weekday(day: date) -> bool:
    return day.isoweekday() <= 5


@dataclass(frozen=True)
class Piece:
    """One field as text and as a test on a date."""

    text: str
    kind: str
    values: frozenset[int] = frozenset()
    number: int = 0
    nth: int = 0

    def matches(self, day: date) -> bool:
        if self.kind == "month":
            return day.month in self.values
        if self.kind == "dom":
            return day.day in self.values
        if self.kind == "dow":
            return cron_weekday(day) in self.values
        if self.kind == "last":
            return (day + DAY).month != day.month
        if self.kind in ("weekday", "last-weekday"):
            target = month_length(day) if self.kind == "last-weekday" else self.number
            if target > month_length(day) or not is_weekday(day):
                return False
            # The nearest Monday-to-Friday of the same month to the target day.
            same_month = [
                date(day.year, day.month, d)
                for d in range(1, month_length(day) + 1)
                if is_weekday(date(day.year, day.month, d))
            ]
            nearest = min(same_month, key=lambda d: abs(d.day - target))
            return nearest == day
        if self.kind == "nth":
            return cron_weekday(day) == self.number and (day.day - 1) // 7 + 1 == self.nth
        assert self.kind == "last-dow"
        return cron_weekday(day) == self.number and day.day + 7 > month_length(day)


DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
MONTH_NAMES = [m.upper() for m in calendar.month_abbr[1:]]


@st.composite
def number_sets(draw, low: int, high: int, names: list[str] | None, kind: str) -> Piece:
    """A set of numbers written as *, a list, a range (possibly wrapping) or a step."""
    span = list(range(low, high + 1))

    def show(n: int) -> str:
        return names[n - low] if names and draw(st.booleans()) else str(n)

    form = draw(st.sampled_from(["*", "list", "range", "wrap", "step"]))
    if form == "*":
        return Piece("*", kind, frozenset(span))
    if form == "list":
        chosen = draw(st.lists(st.sampled_from(span), min_size=1, max_size=4, unique=True))
        return Piece(",".join(show(n) for n in chosen), kind, frozenset(chosen))
    if form in ("range", "wrap"):
        a, b = sorted(draw(st.lists(st.sampled_from(span), min_size=2, max_size=2, unique=True)))
        if form == "range":
            return Piece(f"{show(a)}-{show(b)}", kind, frozenset(range(a, b + 1)))
        wrapped = set(range(b, high + 1)) | set(range(low, a + 1))
        return Piece(f"{show(b)}-{show(a)}", kind, frozenset(wrapped))
    start = draw(st.sampled_from(span))
    step = draw(st.integers(min_value=1, max_value=high - low + 1))
    return Piece(f"{start}/{step}", kind, frozenset(range(start, high + 1, step)))


@st.composite
def hour_fields(draw) -> tuple[str, tuple[int, ...]]:
    form = draw(st.sampled_from(["one", "step", "list"]))
    if form == "one":
        hour = draw(st.integers(0, 23))
        return str(hour), (hour,)
    if form == "step":
        start = draw(st.integers(0, 23))
        step = draw(st.integers(4, 24))
        text = draw(
            st.sampled_from(
                [f"{start}/{step}"] + (["/" + str(step), f"*/{step}"] if start == 0 else [])
            )
        )
        return text, tuple(range(start, 24, step))
    hours = [draw(st.integers(0, 19))]
    while hours[-1] + 4 <= 23 and draw(st.booleans()):
        hours.append(draw(st.integers(hours[-1] + 4, 23)))
    return ",".join(map(str, hours)), tuple(hours)


@st.composite
def day_of_month(draw) -> Piece:
    form = draw(st.sampled_from(["numbers", "L", "W", "LW"]))
    if form == "numbers":
        return draw(number_sets(1, 31, None, "dom"))
    if form == "L":
        return Piece("L", "last")
    if form == "LW":
        return Piece("LW", "last-weekday")
    n = draw(st.integers(1, 31))
    return Piece(f"{n}W", "weekday", number=n)


@st.composite
def day_of_week(draw) -> Piece:
    form = draw(st.sampled_from(["numbers", "nth", "last-dow", "L"]))
    if form == "numbers":
        return draw(number_sets(1, 7, DAY_NAMES, "dow"))
    if form == "L":
        return Piece("L", "dow", frozenset({7}))
    number = draw(st.integers(1, 7))
    name = draw(st.sampled_from([str(number), DAY_NAMES[number - 1]]))
    if form == "nth":
        nth = draw(st.integers(1, 5))
        return Piece(f"{name}#{nth}", "nth", number=number, nth=nth)
    return Piece(f"{name}L", "last-dow", number=number)


@dataclass(frozen=True)
class CronCase:
    expression: str
    hours: tuple[int, ...]
    month: Piece
    day: Piece

    def day_matches(self, day: date) -> bool:
        return self.month.matches(day) and self.day.matches(day)

    def starts_on(self, day: date) -> list[datetime]:
        if not self.day_matches(day):
            return []
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return [midnight + h * HOUR for h in self.hours]

    def next_start(self, after: datetime) -> datetime:
        day = after.date()
        while True:
            for start in self.starts_on(day):
                if start > after:
                    return start
            day += DAY

    def matching_days(self) -> list[date]:
        day, end = date(2001, 1, 1), date(2030, 1, 1)
        found = []
        while day < end:
            if self.day_matches(day):
                found.append(day)
            day += DAY
        return found


@st.composite
def cron_cases(draw) -> CronCase:
    hours_text, hours = draw(hour_fields())
    month = draw(number_sets(1, 12, MONTH_NAMES, "month"))
    if draw(st.booleans()):
        day = draw(day_of_month())
        dom, dow = day.text, "?"
    else:
        day = draw(day_of_week())
        dom, dow = "?", day.text
    return CronCase(f"cron(0 {hours_text} {dom} {month.text} {dow} *)", hours, month, day)


moments = st.one_of(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2105, 12, 31)),
    st.sampled_from(
        [
            datetime(2024, 2, 28, 23, 30),
            datetime(2024, 2, 29, 12),
            datetime(2100, 2, 28, 23, 30),
            datetime(2099, 12, 31, 23, 59, 59),
            datetime(2023, 12, 31, 22),
        ]
    ),
).map(lambda moment: moment.replace(tzinfo=UTC))


def parse_or_none(case: CronCase, duration: str | None = None):
    rules = {"ScheduleExpression": case.expression}
    if duration:
        rules["Duration"] = duration
    try:
        return parse_rotation_rules(rules)
    except errors.InvalidParameter:
        return None


RELAXED = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(RELAXED, max_examples=120)  # the reference walks 29 years per example
@given(cron_cases())
@example(  # the fifth Sunday of February: once in 28 years
    CronCase(
        "cron(0 0 ? 2 1#5 *)",
        (0,),
        Piece("2", "month", frozenset({2})),
        Piece("1#5", "nth", number=1, nth=5),
    )
)
@example(
    CronCase(
        "cron(0 0 31 2 ? *)",
        (0,),
        Piece("2", "month", frozenset({2})),
        Piece("31", "dom", frozenset({31})),
    )
)
def test_cron_accepted_exactly_when_it_fires_at_most_a_year_apart(case: CronCase) -> None:
    days = case.matching_days()
    gaps = [(b - a).days for a, b in pairwise(days)]
    fires = bool(gaps) and max(gaps) <= 366
    rules = parse_or_none(case)
    assert (rules is not None) == fires, case.expression
    if rules is not None:
        assert parse_rotation_rules(rules.to_request()) == rules
        assert rules.to_wire() == {
            "AutomaticallyAfterDays": min(gaps),
            "ScheduleExpression": case.expression,
        }


@RELAXED
@given(cron_cases(), moments)
def test_cron_next_window_matches_the_reference(case: CronCase, last: datetime) -> None:
    rules = parse_or_none(case)
    assume(rules is not None)
    expected = case.next_start(last)
    window = rules.next_window(last)
    assert window.start == expected, case.expression
    default_end = expected + HOUR if len(case.hours) > 1 else expected.replace(hour=0) + DAY
    assert window.end == default_end
    assert rules.next_rotation_date(last) == default_end - timedelta(seconds=1)


def longest_window(case: CronCase) -> int:
    """The longest Duration that neither crosses midnight nor reaches the next window."""
    gaps = [b - a for a, b in pairwise(case.hours)]
    return min([24 - case.hours[-1], *gaps])


@RELAXED
@given(cron_cases(), moments, st.integers(0, 72), st.one_of(st.none(), st.integers(1, 24)))
def test_cron_is_due_matches_the_reference(
    case: CronCase, last: datetime, hours_later: int, duration: int | None
) -> None:
    assume(parse_or_none(case) is not None)
    if duration is not None:
        duration = min(duration, longest_window(case))
        if longest_window(case) < 24:
            too_long = f"{longest_window(case) + 1}h"
            assert parse_or_none(case, too_long) is None
    rules = parse_or_none(case, f"{duration}h" if duration else None)
    assert rules is not None
    now = last + timedelta(hours=hours_later, minutes=17)

    def end(start: datetime) -> datetime:
        if duration:
            return start + duration * HOUR
        return start + HOUR if len(case.hours) > 1 else start.replace(hour=0) + DAY

    # Due when some window start s has last < s <= now < end of that window.
    expected = any(
        last < start <= now < end(start)
        for day in (now.date() - DAY, now.date())
        for start in case.starts_on(day)
    )
    assert rules.is_due(last, now) == expected, (case.expression, duration)
    window = rules.window_at(now)
    if expected:
        assert window is not None and now in window


@RELAXED
@given(st.integers(4, 100), moments, st.integers(0, 200))
def test_rate_in_hours_is_a_fixed_grid(hours: int, last: datetime, hours_later: int) -> None:
    rules = parse_rotation_rules({"ScheduleExpression": f"rate({hours} hours)"})
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    start = last.replace(minute=0, second=0, microsecond=0) + HOUR
    while (start - epoch) // HOUR % hours:
        start += HOUR
    assert rules.next_window(last).start == start
    assert rules.next_window(last).end == start + HOUR
    now = last + timedelta(hours=hours_later)
    since_grid = (now - epoch) % (hours * HOUR)
    assert rules.is_due(last, now) == (since_grid < HOUR and now - since_grid > last)


@RELAXED
@given(
    st.integers(1, 1000), moments, st.integers(0, 30 * 24), st.one_of(st.none(), st.integers(1, 24))
)
def test_after_days_reference(
    days: int, last: datetime, hours_later: int, duration: int | None
) -> None:
    spec = {"AutomaticallyAfterDays": days}
    if duration:
        spec["Duration"] = f"{duration}h"
    rules = parse_rotation_rules(spec)
    first = datetime.combine(last.date() + timedelta(days=days), datetime.min.time(), UTC)
    window = rules.next_window(last)
    assert window.start == first
    assert window.end == first + (duration or 24) * HOUR
    now = first - DAY + timedelta(hours=hours_later)
    open_hours = duration or 24
    assert rules.is_due(last, now) == (now >= first and now.hour < open_hours)
    if days <= 999 and duration is None:
        as_rate = parse_rotation_rules({"ScheduleExpression": f"rate({days} days)"})
        assert as_rate.next_window(last) == window
        assert as_rate.is_due(last, now) == rules.is_due(last, now)
