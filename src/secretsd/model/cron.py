"""AWS's six-field cron expressions for rotation schedules, as pure code.

``Cron.parse`` validates ``cron(Minutes Hours Day-of-month Month Day-of-week Year)`` with the
restrictions Secrets Manager adds (minutes 0, year ``*``, windows at least 4 hours apart) and
answers when the expression fires: on which days of a month, and the first start after a
moment. Hour lists restart every day. All times are UTC.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

from secretsd.model import errors

MIN_HOURS_APART = 4
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
# Which days a day-of-month/day-of-week pattern picks depends only on the weekday the month
# starts on and on leap years; 28 consecutive years hold every such combination.
_SCAN_YEARS = range(2001, 2030)
_MONTH_NAMES = {n.upper(): i for i, n in enumerate(calendar.month_abbr) if n}
_DAY_NAMES = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


def invalid(expression: str, reason: str) -> errors.InvalidParameter:
    return errors.InvalidParameter(f"The schedule expression {expression} isn't valid: {reason}")


def utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("schedule times must be timezone-aware")
    return moment.astimezone(UTC)


def midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _cron_weekday(day: date) -> int:
    """1 = Sunday ... 7 = Saturday, as cron numbers days of the week."""
    return (day.weekday() + 1) % 7 + 1


def _value(token: str, low: int, high: int, names: Mapping[str, int], expr: str) -> int:
    text = token.upper()
    if text in names:
        return names[text]
    if not text.isdigit():
        raise invalid(expr, f"'{token}' is not a value.")
    number = int(text)
    if not low <= number <= high:
        raise invalid(expr, f"{number} is outside {low}-{high}.")
    return number


def _field(text: str, low: int, high: int, names: Mapping[str, int], expr: str) -> frozenset[int]:
    """Values of a field made of ``*``, ``a``, ``a-b`` (may wrap), ``/step`` and ``,`` lists."""
    values: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise invalid(expr, f"'{item}' has no valid increment.")
            step = int(step_text)
        if base in ("*", "") and (slash or base == "*"):
            run = list(range(low, high + 1))
        elif "-" in base:
            first_text, _, last_text = base.partition("-")
            first = _value(first_text, low, high, names, expr)
            last = _value(last_text, low, high, names, expr)
            wrapped = list(range(first, high + 1)) + list(range(low, last + 1))
            run = list(range(first, last + 1)) if first <= last else wrapped
        else:
            if not base:
                raise invalid(expr, "a field has an empty item.")
            first = _value(base, low, high, names, expr)
            run = list(range(first, high + 1)) if slash else [first]
        values.update(run[::step])
    return frozenset(values)


@dataclass(frozen=True)
class _DaySpec:
    """How a month's days are picked: by a set of numbers or by one special rule."""

    kind: str  # "dom", "dow", "last", "weekday", "last-weekday", "nth", "last-dow"
    values: frozenset[int] = frozenset()
    number: int = 0
    nth: int = 0

    def days(self, year: int, month: int) -> list[int]:
        length = calendar.monthrange(year, month)[1]
        first_weekday = _cron_weekday(date(year, month, 1))
        if self.kind == "dom":
            return [d for d in sorted(self.values) if d <= length]
        if self.kind == "dow":
            return [
                d for d in range(1, length + 1) if (first_weekday + d - 2) % 7 + 1 in self.values
            ]
        if self.kind == "last":
            return [length]
        if self.kind in ("weekday", "last-weekday"):
            # nW past the month's last day picks nothing that month; it never moves across
            # a month boundary.
            target = length if self.kind == "last-weekday" else self.number
            return [] if target > length else [_nearest_weekday(year, month, target, length)]
        first = 1 + (self.number - first_weekday) % 7
        if self.kind == "nth":
            day = first + 7 * (self.nth - 1)
            return [day] if day <= length else []
        return [first + 7 * ((length - first) // 7)]  # "last-dow"


def _nearest_weekday(year: int, month: int, day: int, length: int) -> int:
    weekday = _cron_weekday(date(year, month, day))
    if weekday == 7:  # Saturday: the Friday before, or the Monday after on the 1st
        return day - 1 if day > 1 else day + 2
    if weekday == 1:  # Sunday: the Monday after, or the Friday before on the last day
        return day + 1 if day < length else day - 2
    return day


def _day_of_month(text: str, expr: str) -> _DaySpec:
    upper = text.upper()
    if upper == "L":
        return _DaySpec("last")
    if upper == "LW":
        return _DaySpec("last-weekday")
    if upper.endswith("W"):
        return _DaySpec("weekday", number=_value(upper[:-1], 1, 31, {}, expr))
    return _DaySpec("dom", _field(upper, 1, 31, {}, expr))


def _day_of_week(text: str, expr: str) -> _DaySpec:
    upper = text.upper()
    if upper == "L":
        return _DaySpec("dow", frozenset({7}))
    if "#" in upper:
        day_text, _, nth_text = upper.partition("#")
        if not nth_text.isdigit() or not 1 <= int(nth_text) <= 5:
            raise invalid(expr, f"'{text}' must name the 1st to 5th weekday of the month.")
        return _DaySpec("nth", number=_value(day_text, 1, 7, _DAY_NAMES, expr), nth=int(nth_text))
    if upper.endswith("L"):
        return _DaySpec("last-dow", number=_value(upper[:-1], 1, 7, _DAY_NAMES, expr))
    return _DaySpec("dow", _field(upper, 1, 7, _DAY_NAMES, expr))


@dataclass(frozen=True)
class Cron:
    hours: tuple[int, ...]
    months: frozenset[int]
    days: _DaySpec

    @classmethod
    def parse(cls, expr: str, body: str) -> Cron:
        fields = body.split()
        if len(fields) != 6:
            raise invalid(expr, "a cron expression has six fields.")
        minutes, hours, dom, month, dow, year = fields
        if not re.fullmatch(r"0+", minutes):
            raise invalid(expr, "the minutes field must be 0; windows open on the hour.")
        if year != "*":
            raise invalid(expr, "the year field must be *.")
        if (dom == "?") == (dow == "?"):
            raise invalid(expr, "use ? in exactly one of day-of-month and day-of-week.")
        days = _day_of_month(dom, expr) if dow == "?" else _day_of_week(dow, expr)
        hour_set = sorted(_field(hours, 0, 23, {}, expr))
        gaps = [b - a for a, b in pairwise(hour_set)]
        if gaps and min(gaps) < MIN_HOURS_APART:
            raise invalid(expr, f"windows must be at least {MIN_HOURS_APART} hours apart.")
        return cls(tuple(hour_set), _field(month, 1, 12, _MONTH_NAMES, expr), days)

    def days_in(self, year: int, month: int) -> list[int]:
        return self.days.days(year, month) if month in self.months else []

    def day_numbers(self) -> list[int]:
        """Ordinals of the matching days over the scan years (enough to see every gap)."""
        return [
            date(year, month, day).toordinal()
            for year in _SCAN_YEARS
            for month in range(1, 13)
            for day in self.days_in(year, month)
        ]

    def start_after(self, moment: datetime) -> datetime:
        """The first firing strictly after ``moment``."""
        year, month = moment.year, moment.month
        # Validation keeps firings at most a year apart, so two years always hold one.
        for _ in range(12 * 2 + 1):
            for day in self.days_in(year, month):
                midnight = datetime(year, month, day, tzinfo=UTC)
                for hour in self.hours:
                    start = midnight + hour * _HOUR
                    if start > moment:
                        return start
            year, month = (year, month + 1) if month < 12 else (year + 1, 1)
        raise AssertionError("a validated cron expression fires every year")

    def start_on_day_at_or_before(self, moment: datetime) -> datetime | None:
        if moment.day not in self.days_in(moment.year, moment.month):
            return None
        hours = [h for h in self.hours if h <= moment.hour]
        return midnight(moment) + hours[-1] * _HOUR if hours else None


# -- rules ------------------------------------------------------------------------------
