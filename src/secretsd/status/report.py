"""The verdict of ``secretsd status`` and its two renderings: a table for people, JSON for
programs. The verdict follows the Nagios plugin convention: 0 OK, 1 WARNING, 2 CRITICAL
(3 UNKNOWN is for a command line that could not be read)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .checks import Probe, Rotation

OK, WARNING, CRITICAL = 0, 1, 2
NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL"}


@dataclass
class Status:
    checked_at: datetime
    probes: list[Probe]
    rotations: list[Rotation]
    slow_ms: float
    problems: list[tuple[int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.problems = list(self._problems())

    def _problems(self):
        for probe in self.probes:
            if not probe.ok:
                yield CRITICAL, f"{probe.name} {probe.url}: {probe.detail}"
            elif probe.milliseconds is not None and probe.milliseconds > self.slow_ms:
                yield WARNING, f"{probe.name} slow: {probe.milliseconds:.0f} ms"
        for rotation in self.rotations:
            if rotation.condition == "failing":
                since = _when(rotation.failing_since)
                yield CRITICAL, f"rotation of {rotation.name} failing since {since}"
            elif rotation.condition == "overdue":
                due = _when(rotation.next_rotation)
                yield WARNING, f"rotation of {rotation.name} overdue (due by {due})"

    @property
    def code(self) -> int:
        return max((level for level, _ in self.problems), default=OK)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def summary(status: Status) -> str:
    """The first line, as a Nagios plugin writes it."""
    words = [text for _, text in status.problems]
    if not words:
        names = [probe.name for probe in status.probes if probe.name != "api"]
        verb = "answers" if len(names) == 1 else "answer"
        count = len(status.rotations)
        secrets = "secret" if count == 1 else "secrets"
        words = [
            f"{' and '.join(names)} {verb}; {count} rotating {secrets}, none failing or overdue"
        ]
    return f"{NAMES[status.code]}: " + "; ".join(words)


def table(status: Status) -> str:
    lines = [summary(status), ""]
    for probe in status.probes:
        state = "ok" if probe.ok else "FAILED"
        lines.append(
            f"{probe.name:<7} {probe.url:<28} {state:<7} {_ms(probe.milliseconds):>10}  "
            f"{probe.detail}"
        )
    lines.append("")
    if not status.rotations:
        lines.append("no secret has rotation enabled")
        return "\n".join(lines)
    header = ("SECRET", "STATE", "LAST ROTATED", "NEXT ROTATION BY", "ROTATING SINCE")
    rows = [(*header, "FAILING SINCE")]
    for rotation in status.rotations:
        rows.append(
            (
                rotation.name,
                rotation.condition,
                _when(rotation.last_rotated),
                _when(rotation.next_rotation),
                _when(rotation.rotating_since),
                _when(rotation.failing_since),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines.append("dates in UTC")
    details: list[Rotation | None] = [None, *status.rotations]
    for row, detail in zip(rows, details, strict=True):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append("  ".join(cells).rstrip())
        if detail is not None and detail.last_error:
            step = f"{detail.failed_step}: " if detail.failed_step else ""
            lines.append(f"    {step}{detail.last_error}")
    return "\n".join(lines)


def as_json(status: Status) -> str:
    document = {
        "status": NAMES[status.code].lower(),
        "exit_code": status.code,
        "checked_at": _iso(status.checked_at),
        "problems": [
            {"level": NAMES[level].lower(), "text": text} for level, text in status.problems
        ],
        "probes": [
            {
                "name": probe.name,
                "url": probe.url,
                "ok": probe.ok,
                "milliseconds": None
                if probe.milliseconds is None
                else round(probe.milliseconds, 3),
                "detail": probe.detail,
            }
            for probe in status.probes
        ],
        "rotations": [
            {
                "name": rotation.name,
                "arn": rotation.arn,
                "state": rotation.condition,
                "rotation_enabled": rotation.enabled,
                "last_rotated": _iso(rotation.last_rotated),
                "next_rotation_by": _iso(rotation.next_rotation),
                "rotating_since": _iso(rotation.rotating_since),
                "failing_since": _iso(rotation.failing_since),
                "failed_step": rotation.failed_step,
                "last_error": rotation.last_error,
            }
            for rotation in status.rotations
        ],
    }
    return json.dumps(document, indent=2)
