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

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from secretsd.model import errors
from secretsd.model.cron import MIN_HOURS_APART, Cron, invalid, midnight, utc

__all__ = ["BOTH_GIVEN", "RotationRules", "Window", "parse_rotation_rules"]

BOTH_GIVEN = "You cannot specify both rotation frequency and schedule expression together."
MAX_RATE_DAYS = 999
MAX_AFTER_DAYS = 1000
MAX_DAYS_APART = 366
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_RATE = re.compile(r"rate\((\d+) (hour|hours|day|days)\)")
_CRON = re.compile(r"cron\((.*)\)")
_EXPRESSION_CHARS = re.compile(r"[0-9A-Za-z()#?*\-/, ]+")


def _validation(member: str, value: object, text: str) -> errors.ValidationError:
    return errors.ValidationError(
        f"1 validation error detected: Value '{value}' at 'rotationRules.{member}' "
        f"failed to satisfy constraint: {text}"
    )


@dataclass(frozen=True)
class Window:
    """An open interval of time for a rotation: ``start <= t < end``."""

    start: datetime
    end: datetime

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= utc(moment) < self.end


@dataclass(frozen=True)
class RotationRules:
    """Validated ``RotationRules``; build with ``parse_rotation_rules``."""

    automatically_after_days: int | None = None
    schedule_expression: str | None = None
    duration_hours: int | None = None
    interval_days: int | None = field(default=None, repr=False)
    interval_hours: int | None = field(default=None, repr=False)
    cron: Cron | None = field(default=None, repr=False)
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
        start = utc(window_start)
        if self.duration_hours is not None:
            return start + self.duration_hours * _HOUR
        return start + _HOUR if self.in_hours else midnight(start) + _DAY

    def window(self, window_start: datetime) -> Window:
        return Window(utc(window_start), self.window_end(window_start))

    def next_window(self, last_rotated: datetime, now: datetime | None = None) -> Window:
        """The first window after ``last_rotated``; with ``now``, the first not yet closed."""
        last = utc(last_rotated)
        upcoming = self.window(self._start_after(last, last))
        if now is None or upcoming.end > utc(now):
            return upcoming
        current = self.window_at(now, last)
        if current is not None and current.start > last:
            return current
        return self.window(self._start_after(utc(now), last))

    def next_rotation_date(self, last_rotated: datetime, now: datetime | None = None) -> datetime:
        """``NextRotationDate`` as the service reports it: the last second of the window."""
        return self.next_window(last_rotated, now).end - timedelta(seconds=1)

    def window_at(self, now: datetime, last_rotated: datetime | None = None) -> Window | None:
        """The window open at ``now``, if any (for days, counted from ``last_rotated``)."""
        moment = utc(now)
        start: datetime | None
        if self.interval_hours is not None:
            step = self.interval_hours * _HOUR
            start = _EPOCH + (moment - _EPOCH) // step * step
        elif self.cron is not None:
            start = self.cron.start_on_day_at_or_before(moment)
        else:
            if last_rotated is None:
                raise ValueError("a schedule in days needs the last rotation")
            first = self._start_after(utc(last_rotated), utc(last_rotated))
            start = midnight(moment) if moment >= first else None
        if start is None or moment >= self.window_end(start):
            return None
        return self.window(start)

    def is_due(self, last_rotated: datetime, now: datetime) -> bool:
        """True while a window that opened after the last rotation is open."""
        current = self.window_at(now, last_rotated)
        return current is not None and current.start > utc(last_rotated)

    def _start_after(self, moment: datetime, last: datetime) -> datetime:
        if self.interval_hours is not None:
            step = self.interval_hours * _HOUR
            return _EPOCH + ((moment - _EPOCH) // step + 1) * step
        if self.cron is not None:
            return self.cron.start_after(moment)
        assert self.interval_days is not None
        return max(midnight(last) + self.interval_days * _DAY, midnight(moment) + _DAY)


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
                raise invalid(expression, f"a rate in days must be 1 to {MAX_RATE_DAYS}.")
            return RotationRules(
                schedule_expression=expression, interval_days=value, wire_days=value
            )
        if not MIN_HOURS_APART <= value <= MAX_RATE_DAYS * 24:
            raise invalid(expression, f"you can rotate at most every {MIN_HOURS_APART} hours.")
        return RotationRules(
            schedule_expression=expression, interval_hours=value, wire_days=max(1, value // 24)
        )
    cron = _CRON.fullmatch(expression)
    if not cron:
        raise invalid(expression, "use rate(Value Unit) or cron(...).")
    parsed = Cron.parse(expression, cron.group(1))
    ordinals = parsed.day_numbers()
    if not ordinals:
        raise invalid(expression, "it never matches a date.")
    gaps = [b - a for a, b in pairwise(ordinals)]
    if not gaps or max(gaps) > MAX_DAYS_APART:
        raise invalid(expression, "rotations can't be more than a year apart.")
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
