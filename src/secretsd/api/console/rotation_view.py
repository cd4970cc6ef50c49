"""What the console shows of a secret's rotation: its badge, its attempts, their chart.

Pure functions of what the service answers (DescribeSecret's and DescribeRotation's members,
the history events); nothing here reads a clock or the service.

Theory of operation. The orchestrator records an attempt as ``attempt started``, one
``step`` event per step (``ok`` with its duration, or ``failed`` with its error, which ends
the attempt), then ``attempt succeeded``/``failed``. A retry of the same rotation starts a
new attempt with the same token. ``RotateSecret`` with ``RotateImmediately=false`` tests the
function alone: a ``test`` event, or a failed ``testSecret`` step with no attempt around it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


@dataclass(frozen=True, slots=True)
class Badge:
    kind: str  # ok, in-progress, failing, overdue, off, deleted: the CSS class too
    label: str


OK = Badge("ok", "OK")
IN_PROGRESS = Badge("in-progress", "In progress")
FAILING = Badge("failing", "Failing")
OVERDUE = Badge("overdue", "Overdue")
OFF = Badge("off", "Not rotating")
DELETED = Badge("deleted", "Deleted")
# DescribeRotation was refused: the caller may list the secret but not describe it.
UNKNOWN = Badge("unknown", "Not shown")


@dataclass(slots=True)
class Step:
    name: str
    outcome: str
    duration_ms: float | None = None
    error: str | None = None


@dataclass(slots=True)
class Attempt:
    kind: str  # "rotation" or "test"
    started: float
    token: str = ""
    function: str = ""
    outcome: str = "in progress"
    duration_ms: float | None = None
    error: str | None = None
    steps: list[Step] = field(default_factory=list)

    @property
    def steps_ms(self) -> float:
        return sum(step.duration_ms or 0.0 for step in self.steps)


def attempts(events: Iterable[Mapping[str, Any]]) -> list[Attempt]:
    """The history events grouped into attempts, oldest first."""
    found: list[Attempt] = []
    current: Attempt | None = None
    for event in events:
        kind, outcome = event.get("kind"), event.get("outcome", "")
        token = str(event.get("token", ""))
        at = float(event.get("time", 0.0))
        if kind == "attempt" and outcome == "started":
            current = Attempt("rotation", at, token, str(event.get("function", "")))
            found.append(current)
        elif kind == "step":
            step = Step(
                str(event.get("step", "")), outcome, event.get("duration_ms"), event.get("error")
            )
            if current is None or current.token != token:
                # A configuration test (RotateImmediately=false) fails without an attempt.
                found.append(Attempt("test", at, token, outcome=outcome, steps=[step]))
                continue
            current.steps.append(step)
            if outcome == "failed":
                current.outcome, current.error = "failed", step.error
                current = None
        elif kind == "attempt" and current is not None and current.token == token:
            current.outcome = outcome
            current.duration_ms = event.get("duration_ms")
            current.error = event.get("error")
            current = None
        elif kind == "test":
            found.append(Attempt("test", at, token, outcome=outcome, error=event.get("error")))
    return found


# DescribeRotation's Condition: the one meaning of these words, shared with the metrics and
# ``secretsd status``.
_BY_CONDITION = {
    "ok": OK,
    "rotating": IN_PROGRESS,
    "failing": FAILING,
    "overdue": OVERDUE,
    "disabled": OFF,
}


def badge(described: Mapping[str, Any], rotation: Mapping[str, Any]) -> Badge:
    """The badge of a secret, from DescribeSecret (or a ListSecrets entry) and
    DescribeRotation."""
    if "DeletedDate" in described:
        return DELETED
    return _BY_CONDITION.get(str(rotation.get("Condition")), UNKNOWN)


# -- the chart: step durations of the latest attempts, as horizontal stacked bars -----------

CHART_ATTEMPTS = 12
LABEL_WIDTH = 150
BAR_AREA = 420
ROW_HEIGHT = 22
BAR_HEIGHT = 14
TOP = 8
AXIS_HEIGHT = 24


@dataclass(frozen=True, slots=True)
class Segment:
    x: float
    width: float
    css: str
    title: str


@dataclass(frozen=True, slots=True)
class Row:
    y: float
    label: str
    outcome: str
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    rows: tuple[Row, ...]
    ticks: tuple[tuple[float, str], ...]
    axis_y: float
    bar_height: int = BAR_HEIGHT
    label_width: int = LABEL_WIDTH


def format_ms(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"


def chart(history: list[Attempt], label: Any = str) -> Chart | None:
    """The newest attempts with steps, newest on top; None when there are none.
    ``label`` turns an attempt's start time into its row label."""
    shown = [a for a in history if a.steps][-CHART_ATTEMPTS:][::-1]
    if not shown:
        return None
    # At least a millisecond: durations are recorded to a tenth of one, and a scale over
    # nothing would be infinite.
    longest = max(max(a.steps_ms for a in shown), 1.0)
    scale = BAR_AREA / longest
    rows = []
    for index, attempt in enumerate(shown):
        y = TOP + index * ROW_HEIGHT
        x = float(LABEL_WIDTH)
        segments = []
        for step in attempt.steps:
            width = max((step.duration_ms or 0.0) * scale, 1.0)
            css = "step-failed" if step.outcome == "failed" else f"step-{step.name}"
            duration = format_ms(step.duration_ms or 0.0)
            segments.append(Segment(x, width, css, f"{step.name} {step.outcome} {duration}"))
            x += width
        rows.append(Row(y, label(attempt.started), attempt.outcome, tuple(segments)))
    axis_y = TOP + len(shown) * ROW_HEIGHT
    ticks = tuple(
        (LABEL_WIDTH + BAR_AREA * fraction, format_ms(longest * fraction))
        for fraction in (0.0, 0.5, 1.0)
    )
    width = LABEL_WIDTH + BAR_AREA + 40
    return Chart(width, int(axis_y + AXIS_HEIGHT), tuple(rows), ticks, axis_y)
