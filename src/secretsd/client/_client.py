"""SecretsClient: the agent first, then the Secrets Manager API, then the environment."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

import boto3

from ._agent import AgentSource
from ._api import ApiSource
from ._environ import EnvironmentSource
from ._errors import SourceUnavailable, Unavailable
from ._reports import (
    PRICE_PER_10K_CALLS,
    CostReport,
    HealthReport,
    RotationStatus,
    cost_report,
    now_utc,
    rotation_status,
)
from ._usage import Usage, UsageCounter
from ._value import SecretValue


class Source(Protocol):
    """Internal: where secrets come from; ``fetch`` raises Unavailable to pass the request
    on to the next source."""

    name: str

    def fetch(
        self, secret_id: str, stage: str | None, version_id: str | None, refresh: bool
    ) -> SecretValue: ...


class SecretsClient:
    """Reads secrets from the first source that can answer.

    The sources, in order: the local agent (``agent_url``, else ``SECRETSD_AGENT_URL``, else
    http://127.0.0.1:2773; the SSRF token ``token``, else ``AWS_TOKEN``, which may be
    ``file://PATH``), the Secrets Manager API through boto3 (``endpoint_url``, else
    ``AWS_ENDPOINT_URL_SECRETS_MANAGER``, else AWS; credentials from ``session`` or boto3's
    usual chain), and the environment (the variable ``env_names[secret_id]``, else
    ``SECRETSD_SECRET_<ID>``). A source that cannot be reached passes the request on; an
    answer from a source (not found, access denied) is final. ``env`` replaces
    ``os.environ`` for every variable named here; boto3's own credential chain still reads
    the process environment unless a ``session`` is given.

    ``agent_busy_poll`` is how long (seconds) a read polls for the agent's answer before the
    thread sleeps: a cache hit usually arrives within it, and a thread that does not sleep
    is not woken late (tens of microseconds on virtual machines). 0 turns it off.
    """

    def __init__(
        self,
        agent_url: str | None = None,
        token: str | None = None,
        endpoint_url: str | None = None,
        env: Mapping[str, str] | None = None,
        *,
        env_names: Mapping[str, str] | None = None,
        session: boto3.session.Session | None = None,
        region_name: str | None = None,
        agent_connect_timeout: float = 0.5,
        agent_read_timeout: float = 5.0,
        agent_busy_poll: float = 100e-6,
    ) -> None:
        env = os.environ if env is None else env
        self._agent = AgentSource(
            agent_url, token, env, agent_connect_timeout, agent_read_timeout, agent_busy_poll
        )
        self._api = ApiSource(endpoint_url, env, session, region_name)
        self._sources: tuple[Source, ...] = (
            self._agent,
            self._api,
            EnvironmentSource(env, env_names),
        )
        self._usage = UsageCounter(tuple(source.name for source in self._sources))

    def get(
        self,
        secret_id: str,
        version_stage: str | None = None,
        version_id: str | None = None,
        *,
        refresh: bool = False,
    ) -> SecretValue:
        """The secret's value at ``version_stage`` or ``version_id`` (AWSCURRENT when
        neither is given). ``refresh=True`` makes the agent ask its backend instead of
        answering from its cache.

        Raises SecretNotFound or RequestRefused when a source answers so, and
        SourceUnavailable when none can answer.
        """
        if not secret_id:
            raise ValueError("secret_id must not be empty")
        reasons: dict[str, str] = {}
        usage = self._usage
        for source in self._sources:
            started = time.perf_counter()
            answered = True  # a value, or a definite answer (not found, refused)
            try:
                value = source.fetch(secret_id, version_stage, version_id, refresh)
            except Unavailable as exc:
                answered = False
                reasons[source.name] = exc.reason
                continue
            finally:
                usage.source(source.name, answered, time.perf_counter() - started)
                if answered:
                    usage.request(failed=False)
            return value
        usage.request(failed=True)
        raise SourceUnavailable(secret_id, reasons)

    def usage(self) -> Usage:
        """What this client has done so far: requests, and per source how many it answered,
        passed on and how long it took."""
        return self._usage.snapshot()

    def health(self) -> HealthReport:
        """Whether the agent answers ``/ping`` and how fast, with this client's usage."""
        try:
            response_ms, problem = self._agent.ping(), None
        except Unavailable as exc:
            response_ms, problem = None, exc.reason
        return HealthReport(problem is None, response_ms, problem, self.usage())

    def rotation_status(self, secret_id: str, now: datetime | None = None) -> RotationStatus:
        """The secret's rotation (enabled, in progress, last and next, overdue), from
        DescribeSecret through the API. Raises SecretNotFound, RequestRefused, or
        SourceUnavailable when the API cannot be reached."""
        try:
            describe = self._api.describe(secret_id)
        except Unavailable as exc:
            raise SourceUnavailable(secret_id, {self._api.name: exc.reason}) from None
        return rotation_status(describe, now or now_utc())

    def cost_report(self, price_per_10k_calls: float = PRICE_PER_10K_CALLS) -> CostReport:
        """This client's reads priced as direct API calls, against what they cost with the
        agent: the client's own API calls plus the agent's backend calls from its /metrics
        (counted for all of the agent's clients; unknown with the AWS agent)."""
        return cost_report(self.usage(), self._agent.backend_calls(), price_per_10k_calls)

    def close(self) -> None:
        """Close the connections to the agent (a later ``get`` opens a new one)."""
        for source in self._sources:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> SecretsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
