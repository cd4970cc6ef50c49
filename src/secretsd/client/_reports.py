"""Health, rotation and cost reports: plain data built by pure functions from what the
client saw, what DescribeSecret said and what the agent's /metrics count.

Each report has ``to_dict()`` (JSON-ready: dates as ISO 8601 strings) for health endpoints
and dashboards. No report holds a secret value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ._usage import Usage

PRICE_PER_10K_CALLS = 0.05  # USD; every Secrets Manager API call, reads included
SECONDS_PER_MONTH = 30 * 86400


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class HealthReport:
    """Whether the agent answers this client, how fast, and how its requests have gone.

    ``agent_status``: ``ok``; ``down`` (no answer to /ping); ``refusing`` (the agent
    refuses this client's SSRF token, or the client has none); ``backend_failing`` (the
    agent answers, but the last read through it failed on its backend). The agent is
    available when it is ``ok`` or ``backend_failing`` (it may still serve cached values).
    """

    agent_available: bool
    agent_status: str
    agent_response_ms: float | None
    agent_problem: str | None  # what is wrong, when the status is not ok
    usage: Usage

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, with the usage's rates at the top level too."""
        plain = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        plain["usage"] = self.usage.to_dict()
        plain["fallback_rate"] = self.usage.fallback_rate
        plain["error_rate"] = self.usage.error_rate
        return plain


@dataclass(frozen=True)
class RotationStatus:
    """A secret's rotation, as DescribeSecret shows it."""

    name: str
    rotation_enabled: bool
    has_current_version: bool
    rotation_in_progress: bool  # an AWSPENDING version exists
    pending_version_id: str | None
    last_rotated: datetime | None
    next_rotation: datetime | None
    overdue: bool  # rotation is on and next_rotation, the end of its window, has passed

    def to_dict(self) -> dict[str, Any]:
        """The status as JSON-ready data."""
        return _plain(self)


def rotation_status(describe: Mapping[str, Any], now: datetime) -> RotationStatus:
    """The rotation status in a DescribeSecret response (boto3's form: dates as datetimes)."""
    stages = describe.get("VersionIdsToStages") or {}
    pending = next((v for v, labels in stages.items() if "AWSPENDING" in labels), None)
    enabled = bool(describe.get("RotationEnabled"))
    next_rotation = describe.get("NextRotationDate")
    # NextRotationDate is the latest moment the service will rotate (the last second of the
    # window), not when the window opens, so it is past due as soon as it has passed; the
    # schedule itself is the server's business.
    overdue = enabled and next_rotation is not None and now > next_rotation
    return RotationStatus(
        name=describe.get("Name", ""),
        rotation_enabled=enabled,
        has_current_version=any("AWSCURRENT" in labels for labels in stages.values()),
        rotation_in_progress=pending is not None,
        pending_version_id=pending,
        last_rotated=describe.get("LastRotatedDate"),
        next_rotation=next_rotation,
        overdue=overdue,
    )


@dataclass(frozen=True)
class CostReport:
    """What this process's reads cost in Secrets Manager API calls, with the agent's own
    calls kept apart.

    The two figures cannot be merged: the agent's backend calls serve every client of the
    agent, not only this process, so charging them all to this process's reads (as an
    earlier version did) showed no savings in any short run. ``cost_without_agent`` prices
    this process's reads as if each were a GetSecretValue; ``cost_of_direct_calls`` prices
    the reads that did reach the API directly (routed past the agent, or passed on by it);
    ``savings`` compares those two, so it is this process's saving on its own calls.
    ``agent_cost`` prices the agent's calls for all its clients, for the whole picture
    (None when the agent does not tell: the AWS agent has no metrics).
    """

    requests: int  # reads asked of this client
    reads_through_agent: int  # answered by the agent
    api_calls_by_client: int  # reads sent to the API directly
    agent_backend_calls: int | None  # the agent's Secrets Manager calls, all its clients
    price_per_10k_calls: float
    cost_without_agent: float
    cost_of_direct_calls: float
    agent_cost: float | None

    @property
    def savings(self) -> float | None:
        """The share of ``cost_without_agent`` this process did not spend on direct calls
        (0 to 1); None before any read. The agent's own calls are in ``agent_cost``."""
        if not self.cost_without_agent:
            return None
        return max(0.0, 1 - self.cost_of_direct_calls / self.cost_without_agent)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, with the savings and what each figure prices."""
        plain = _plain(self)
        plain["savings"] = self.savings
        plain["priced"] = {
            "cost_without_agent": "this process's reads, each as one GetSecretValue",
            "cost_of_direct_calls": "this process's reads that went to the API directly",
            "agent_cost": "the agent's backend calls, for all of its clients",
        }
        return plain


def cost_report(
    usage: Usage, agent_backend_calls: int | None, price: float = PRICE_PER_10K_CALLS
) -> CostReport:
    """Costs from a client's usage and the agent's backend call count (None if unknown)."""
    api = usage.sources.get("api")
    agent = usage.sources.get("agent")
    by_client = api.requests if api is not None else 0
    return CostReport(
        requests=usage.requests,
        reads_through_agent=agent.answered if agent is not None else 0,
        api_calls_by_client=by_client,
        agent_backend_calls=agent_backend_calls,
        price_per_10k_calls=price,
        cost_without_agent=usage.requests * price / 10_000,
        cost_of_direct_calls=by_client * price / 10_000,
        agent_cost=None if agent_backend_calls is None else agent_backend_calls * price / 10_000,
    )


@dataclass(frozen=True)
class CostEstimate:
    """API calls and cost over a period, reading directly against through the agent."""

    direct_calls: int
    agent_calls: int
    direct_cost: float
    agent_cost: float

    @property
    def savings(self) -> float:
        """The share of the direct cost saved by the agent (0 to 1)."""
        return 1 - self.agent_cost / self.direct_cost if self.direct_cost else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The estimate as JSON-ready data, with the savings."""
        plain = _plain(self)
        plain["savings"] = self.savings
        return plain


def estimate_cost(
    requests_per_hour: float,
    ttl_seconds: float = 300,
    secrets: int = 1,
    period_seconds: float = SECONDS_PER_MONTH,
    price: float = PRICE_PER_10K_CALLS,
) -> CostEstimate:
    """Expected API calls and cost of ``requests_per_hour`` reads spread over ``secrets``.

    Through the agent, each secret costs at most one call per TTL (a GetSecretValue at
    first, a DescribeSecret to revalidate after), and never more calls than reads.
    """
    if requests_per_hour < 0 or ttl_seconds <= 0 or secrets < 1 or period_seconds <= 0:
        raise ValueError("rates, TTL, secrets and period must be positive")
    direct = round(requests_per_hour * period_seconds / 3600)
    agent = min(direct, round(secrets * period_seconds / ttl_seconds))
    return CostEstimate(direct, agent, direct * price / 10_000, agent * price / 10_000)


def now_utc() -> datetime:
    return datetime.now(UTC)
