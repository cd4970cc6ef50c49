"""The versions timeline and the schedule's next windows, from what the service answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from secretsd.model.cron import midnight
from secretsd.model.errors import SecretsManagerError
from secretsd.model.schedule import RotationRules, Window, parse_rotation_rules

WINDOWS_SHOWN = 5


def when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    version_id: str
    created: float | None
    stages: tuple[str, ...]
    last_accessed: float | None
    # The rotation placeholder: AWSPENDING before createSecret has given it a value.
    placeholder: bool = False


def timeline(
    versions: list[Mapping[str, Any]], stages_by_version: Mapping[str, list[str]]
) -> list[TimelineEntry]:
    """Every version, newest first: ListSecretVersionIds's (deprecated ones included) and the
    placeholder only DescribeSecret names."""
    entries = [
        TimelineEntry(
            v["VersionId"],
            v.get("CreatedDate"),
            tuple(v.get("VersionStages", ())),
            v.get("LastAccessedDate"),
        )
        for v in versions
    ]
    listed = {entry.version_id for entry in entries}
    for version_id, stages in stages_by_version.items():
        if version_id not in listed:
            entries.append(TimelineEntry(version_id, None, tuple(stages), None, True))
    # The placeholder is the newest of all; created dates order the rest.
    return sorted(entries, key=lambda e: (e.placeholder, e.created or 0.0), reverse=True)


@dataclass(frozen=True, slots=True)
class ScheduleView:
    summary: str
    windows: tuple[tuple[float, float], ...]  # (opens, closes), epoch seconds
    problem: str | None = None


def schedule(described: Mapping[str, Any], now: float) -> ScheduleView | None:
    """The rotation rules in words and the next windows, or None without rules.

    The first window is the one NextRotationDate (the last second of a window) falls in;
    each later one is counted as if the rotation ran as the window before it opened.
    """
    wire = described.get("RotationRules")
    if not wire:
        return None
    rules_request = dict(wire)
    if "ScheduleExpression" in rules_request:
        # DescribeSecret adds the computed days beside an expression; parsing wants one.
        rules_request.pop("AutomaticallyAfterDays", None)
    summary = _summary(rules_request)
    try:
        rules = parse_rotation_rules(rules_request)
    except SecretsManagerError as exc:
        return ScheduleView(summary, (), exc.message)
    window = _first_window(rules, described, now)
    windows = []
    for _ in range(WINDOWS_SHOWN):
        windows.append((window.start.timestamp(), window.end.timestamp()))
        window = rules.next_window(window.start)
    return ScheduleView(summary, tuple(windows))


def _first_window(rules: RotationRules, described: Mapping[str, Any], now: float) -> Window:
    next_rotation = described.get("NextRotationDate")
    if next_rotation is not None:
        moment = _datetime(next_rotation)
        if rules.interval_days is not None:
            # Windows of a schedule in days open at midnight.
            return rules.window(midnight(moment))
        found = rules.window_at(moment)
        if found is not None:
            return found
    # Without a next date, count from the last rotation, or from the secret's creation.
    base = described.get("LastRotatedDate") or described.get("CreatedDate") or now
    return rules.next_window(_datetime(base), _datetime(now))


def _summary(rules: Mapping[str, Any]) -> str:
    expression = rules.get("ScheduleExpression")
    days = rules.get("AutomaticallyAfterDays")
    words = str(expression) if expression else f"every {days} days after the last rotation"
    if "Duration" in rules:
        words += f", windows of {rules['Duration']}"
    return words


def _datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
