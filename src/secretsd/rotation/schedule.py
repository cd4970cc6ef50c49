"""Rotation schedules: ``RotationRules`` as the service defines them, as pure code.

Theory of operation. A schedule is a series of *windows*: each opens on the hour (UTC) and
lasts ``Duration`` hours; the service rotates at some moment inside a window. Three kinds:

* **Days** (``AutomaticallyAfterDays: N`` or ``rate(N days)``): counted from the last
  rotation, as the service does. The window opens at 00:00 on the N-th day after the day of
  the last rotation and, by default, closes at the end of that UTC day. If that window is
  missed, every later day has the same window until a rotation happens.
* **Rate in hours** (``rate(N hours)``, N >= 4): windows open every N hours on a fixed grid
  counted from midnight (the Unix epoch), so they are always exactly N hours apart;
  by default a window lasts one hour.
* **Cron** (``cron(0 H DoM Mon DoW *)``): windows open when the expression fires; hour
  lists and increments restart every day (``4/12`` is 04:00 and 16:00 every day). A cron
  with several hours a day is a schedule in hours (default window one hour, windows of one
  day at least 4 hours apart); with one hour a day it is a schedule in days (default window
  until the end of the UTC day). A window never crosses midnight or the next window.

The next window after a rotation is the first whose start is later than the rotation
(for days: the N-th day on). A rotation is *due* when the clock is inside a window that
opened after the last rotation. ``next_rotation_date`` is what DescribeSecret reports: the
last second of that window, as the service shows it (e.g. ``17:59:59`` for a 16:00 window
of 2h). Nothing here reads a clock: the caller passes ``last_rotated`` (or the moment
rotation was configured, before a first rotation) and ``now``, as aware datetimes.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

from secretsd.model import errors

__all__ = ["BOTH_GIVEN", "RotationRules", "Window", "parse_rotation_rules"]

BOTH_GIVEN = "You cannot specify both rotation frequency and schedule expression together."
MIN_HOURS_APART = 4
MAX_RATE_DAYS = 999
MAX_AFTER_DAYS = 1000
MAX_DAYS_APART = 366
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Which days a day-of-month/day-of-week pattern picks depends only on the weekday the month
# starts on and on leap years; 28 consecutive years hold every such combination.
_SCAN_YEARS = range(2001, 2030)

_MONTH_NAMES = {n.upper(): i for i, n in enumerate(calendar.month_abbr) if n}
_DAY_NAMES = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_RATE = re.compile(r"rate\((\d+) (hour|hours|day|days)\)")
_CRON = re.compile(r"cron\((.*)\)")
_EXPRESSION_CHARS = re.compile(r"[0-9A-Za-z()#?*\-/, ]+")


def _invalid(expression: str, reason: str) -> errors.InvalidParameter:
    return errors.InvalidParameter(f"The schedule expression {expression} isn't valid: {reason}")


def _validation(member: str, value: object, text: str) -> errors.ValidationError:
    return errors.ValidationError(
        f"1 validation error detected: Value '{value}' at 'rotationRules.{member}' "
        f"failed to satisfy constraint: {text}"
    )


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("schedule times must be timezone-aware")
    return moment.astimezone(UTC)


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _cron_weekday(day: date) -> int:
    """1 = Sunday ... 7 = Saturday, as cron numbers days of the week."""
    return (day.weekday() + 1) % 7 + 1


@dataclass(frozen=True)
class Window:
    """An open interval of time for a rotation: ``start <= t < end``."""

    start: datetime
    end: datetime

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= _utc(moment) < self.end


# -- cron -------------------------------------------------------------------------------


def _value(token: str, low: int, high: int, names: Mapping[str, int], expr: str) -> int:
    text = token.upper()
    if text in names:
        return names[text]
    if not text.isdigit():
        raise _invalid(expr, f"'{token}' is not a value.")
    number = int(text)
    if not low <= number <= high:
        raise _invalid(expr, f"{number} is outside {low}-{high}.")
    return number


def _field(text: str, low: int, high: int, names: Mapping[str, int], expr: str) -> frozenset[int]:
    """Values of a field made of ``*``, ``a``, ``a-b`` (may wrap), ``/step`` and ``,`` lists."""
    values: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise _invalid(expr, f"'{item}' has no valid increment.")
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
                raise _invalid(expr, "a field has an empty item.")
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
            raise _invalid(expr, f"'{text}' must name the 1st to 5th weekday of the month.")
        return _DaySpec("nth", number=_value(day_text, 1, 7, _DAY_NAMES, expr), nth=int(nth_text))
    if upper.endswith("L"):
        return _DaySpec("last-dow", number=_value(upper[:-1], 1, 7, _DAY_NAMES, expr))
    return _DaySpec("dow", _field(upper, 1, 7, _DAY_NAMES, expr))


@dataclass(frozen=True)
class _Cron:
    hours: tuple[int, ...]
    months: frozenset[int]
    days: _DaySpec

    @classmethod
    def parse(cls, expr: str, body: str) -> _Cron:
        fields = body.split()
        if len(fields) != 6:
            raise _invalid(expr, "a cron expression has six fields.")
        minutes, hours, dom, month, dow, year = fields
        if not re.fullmatch(r"0+", minutes):
            raise _invalid(expr, "the minutes field must be 0; windows open on the hour.")
        if year != "*":
            raise _invalid(expr, "the year field must be *.")
        if (dom == "?") == (dow == "?"):
            raise _invalid(expr, "use ? in exactly one of day-of-month and day-of-week.")
        days = _day_of_month(dom, expr) if dow == "?" else _day_of_week(dow, expr)
        hour_set = sorted(_field(hours, 0, 23, {}, expr))
        gaps = [b - a for a, b in pairwise(hour_set)]
        if gaps and min(gaps) < MIN_HOURS_APART:
            raise _invalid(expr, f"windows must be at least {MIN_HOURS_APART} hours apart.")
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
        return _midnight(moment) + hours[-1] * _HOUR if hours else None


# -- rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RotationRules:
    """Validated ``RotationRules``; build with ``parse_rotation_rules``."""

    automatically_after_days: int | None = None
    schedule_expression: str | None = None
    duration_hours: int | None = None
    interval_days: int | None = field(default=None, repr=False)
    interval_hours: int | None = field(default=None, repr=False)
    cron: _Cron | None = field(default=None, repr=False)
    wire_days: int = field(default=1, repr=False)

    @property
    def in_hours(self) -> bool:
        """A schedule in hours: its default window is one hour, not the rest of the day."""
        return self.interval_hours is not None or (
            self.cron is not None and len(self.cron.hours) > 1
        )

    def to_wire(self) -> dict[str, Any]:
        """``RotationRules`` as DescribeSecret returns them."""
        wire: dict[str, Any] = {"AutomaticallyAfterDays": self.wire_days}
        if self.duration_hours is not None:
            wire["Duration"] = f"{self.duration_hours}h"
        if self.schedule_expression is not None:
            wire["ScheduleExpression"] = self.schedule_expression
        return wire

    def to_request(self) -> dict[str, Any]:
        """The rules as they were set: ``parse_rotation_rules`` reads them back unchanged.

        Unlike ``to_wire`` (which adds the computed ``AutomaticallyAfterDays`` next to a
        ``ScheduleExpression``, a pair RotateSecret refuses), this is the form to store.
        """
        request: dict[str, Any] = {}
        if self.automatically_after_days is not None:
            request["AutomaticallyAfterDays"] = self.automatically_after_days
        if self.schedule_expression is not None:
            request["ScheduleExpression"] = self.schedule_expression
        if self.duration_hours is not None:
            request["Duration"] = f"{self.duration_hours}h"
        return request

    def window_end(self, window_start: datetime) -> datetime:
        """When a window opening at ``window_start`` closes (``Duration`` or the default)."""
        start = _utc(window_start)
        if self.duration_hours is not None:
            return start + self.duration_hours * _HOUR
        return start + _HOUR if self.in_hours else _midnight(start) + _DAY

    def window(self, window_start: datetime) -> Window:
        return Window(_utc(window_start), self.window_end(window_start))

    def next_window(self, last_rotated: datetime, now: datetime | None = None) -> Window:
        """The first window after ``last_rotated``; with ``now``, the first not yet closed."""
        last = _utc(last_rotated)
        upcoming = self.window(self._start_after(last, last))
        if now is None or upcoming.end > _utc(now):
            return upcoming
        current = self.window_at(now, last)
        if current is not None and current.start > last:
            return current
        return self.window(self._start_after(_utc(now), last))

    def next_rotation_date(self, last_rotated: datetime, now: datetime | None = None) -> datetime:
        """``NextRotationDate`` as the service reports it: the last second of the window."""
        return self.next_window(last_rotated, now).end - timedelta(seconds=1)

    def window_at(self, now: datetime, last_rotated: datetime | None = None) -> Window | None:
        """The window open at ``now``, if any (for days, counted from ``last_rotated``)."""
        moment = _utc(now)
        start: datetime | None
        if self.interval_hours is not None:
            step = self.interval_hours * _HOUR
            start = _EPOCH + (moment - _EPOCH) // step * step
        elif self.cron is not None:
            start = self.cron.start_on_day_at_or_before(moment)
        else:
            if last_rotated is None:
                raise ValueError("a schedule in days needs the last rotation")
            first = self._start_after(_utc(last_rotated), _utc(last_rotated))
            start = _midnight(moment) if moment >= first else None
        if start is None or moment >= self.window_end(start):
            return None
        return self.window(start)

    def is_due(self, last_rotated: datetime, now: datetime) -> bool:
        """True while a window that opened after the last rotation is open."""
        current = self.window_at(now, last_rotated)
        return current is not None and current.start > _utc(last_rotated)

    def _start_after(self, moment: datetime, last: datetime) -> datetime:
        if self.interval_hours is not None:
            step = self.interval_hours * _HOUR
            return _EPOCH + ((moment - _EPOCH) // step + 1) * step
        if self.cron is not None:
            return self.cron.start_after(moment)
        assert self.interval_days is not None
        return max(_midnight(last) + self.interval_days * _DAY, _midnight(moment) + _DAY)


def _integer(rules: Mapping[str, Any], name: str) -> int | None:
    value = rules.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.SerializationError(f"Expected an integer for {name}.")
    if isinstance(value, float) and not value.is_integer():
        raise errors.SerializationError(f"Expected an integer for {name}.")
    return int(value)


def _string(rules: Mapping[str, Any], name: str) -> str | None:
    value = rules.get(name)
    if value is not None and not isinstance(value, str):
        raise errors.SerializationError(f"Expected a string for {name}.")
    return value


def parse_rotation_rules(rules: Mapping[str, Any]) -> RotationRules:
    """Validate a ``RotationRules`` request member; raise the service's error if it is bad."""
    if not isinstance(rules, Mapping):
        raise errors.SerializationError("Expected an object for RotationRules.")
    days = _integer(rules, "AutomaticallyAfterDays")
    expression = _string(rules, "ScheduleExpression")
    duration = _string(rules, "Duration")
    if days is not None and not 1 <= days <= MAX_AFTER_DAYS:
        bound = "greater than or equal to 1" if days < 1 else "less than or equal to 1000"
        raise _validation("automaticallyAfterDays", days, f"Member must have value {bound}")
    if expression is not None:
        if not 1 <= len(expression) <= 256:
            raise _validation(
                "scheduleExpression", expression, "Member must have length between 1 and 256"
            )
        if not _EXPRESSION_CHARS.fullmatch(expression):
            raise _validation(
                "scheduleExpression",
                expression,
                "Member must satisfy regular expression pattern: [0-9A-Za-z\\(\\)#\\?\\*\\-\\/, ]+",
            )
    if duration is not None and not re.fullmatch(r"[0-9]{1,2}h", duration):
        raise _validation(
            "duration", duration, "Member must satisfy regular expression pattern: [0-9]+h"
        )
    if days is not None and expression is not None:
        raise errors.InvalidParameter(BOTH_GIVEN)
    if days is None and expression is None:
        raise errors.InvalidParameter(
            "RotationRules must set AutomaticallyAfterDays or ScheduleExpression."
        )

    if days is not None:
        parsed = RotationRules(automatically_after_days=days, interval_days=days, wire_days=days)
    else:
        assert expression is not None
        parsed = _parse_expression(expression)
    if duration is None:
        return parsed
    hours = int(duration[:-1])
    _check_duration(parsed, hours)
    return replace(parsed, duration_hours=hours)


def _parse_expression(expression: str) -> RotationRules:
    rate = _RATE.fullmatch(expression)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        if unit.startswith("day"):
            if not 1 <= value <= MAX_RATE_DAYS:
                raise _invalid(expression, f"a rate in days must be 1 to {MAX_RATE_DAYS}.")
            return RotationRules(
                schedule_expression=expression, interval_days=value, wire_days=value
            )
        if not MIN_HOURS_APART <= value <= MAX_RATE_DAYS * 24:
            raise _invalid(expression, f"you can rotate at most every {MIN_HOURS_APART} hours.")
        return RotationRules(
            schedule_expression=expression, interval_hours=value, wire_days=max(1, value // 24)
        )
    cron = _CRON.fullmatch(expression)
    if not cron:
        raise _invalid(expression, "use rate(Value Unit) or cron(...).")
    parsed = _Cron.parse(expression, cron.group(1))
    ordinals = parsed.day_numbers()
    if not ordinals:
        raise _invalid(expression, "it never matches a date.")
    gaps = [b - a for a, b in pairwise(ordinals)]
    if not gaps or max(gaps) > MAX_DAYS_APART:
        raise _invalid(expression, "rotations can't be more than a year apart.")
    return RotationRules(schedule_expression=expression, cron=parsed, wire_days=min(gaps))


def _check_duration(parsed: RotationRules, hours: int) -> None:
    if not 1 <= hours <= 24:
        raise errors.InvalidParameter("The Duration must be between 1h and 24h.")
    if parsed.interval_hours is not None:
        if hours > parsed.interval_hours:
            raise errors.InvalidParameter(
                "The rotation window can't extend into the next rotation window: the Duration "
                f"must be at most {parsed.interval_hours}h."
            )
        return
    starts = parsed.cron.hours if parsed.cron is not None else (0,)
    if starts[-1] + hours > 24:
        raise errors.InvalidParameter(
            "The rotation window can't extend into the next UTC day: the window opens at "
            f"{starts[-1]:02d}:00, so the Duration must be at most {24 - starts[-1]}h."
        )
    gaps = [b - a for a, b in pairwise(starts)]
    if gaps and hours > min(gaps):
        raise errors.InvalidParameter(
            "The rotation window can't extend into the next rotation window: the Duration "
            f"must be at most {min(gaps)}h."
        )
