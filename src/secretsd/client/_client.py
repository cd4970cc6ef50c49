"""SecretsClient: the agent first, then the Secrets Manager API, then the environment."""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

import boto3

from ._agent import AgentSource
from ._api import ApiSource
from ._environ import EnvironmentSource
from ._errors import AgentRefused, ClientError, Refused, SourceUnavailable, Unavailable
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

log = logging.getLogger("secretsd.client")


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
    http://127.0.0.1:2773; the SSRF token ``token``, else ``AWS_TOKEN``; either may be
    ``file://PATH``, whose contents are the token), the Secrets Manager API through boto3
    (``endpoint_url``, else ``AWS_ENDPOINT_URL_SECRETS_MANAGER``, else AWS; credentials from
    ``session`` or boto3's usual chain), and the environment (``env_names[secret_id]``: a
    variable holding the whole value, or a mapping of fields to variables such as
    ``{"host": "DB_HOST", "username": "DB_USERNAME", "password": "DB_PASSWORD"}``, read as
    that JSON object; else ``SECRETSD_SECRET_<ID>``). A source that cannot be reached
    passes the request on; an answer from a source (not found, access denied) is final.
    ``env`` replaces ``os.environ`` for every variable named here; boto3's own credential
    chain still reads the process environment unless a ``session`` is given.

    An agent that refuses this client (403: a wrong or unreadable token) is a configuration
    error and raises ``AgentRefused``; with ``fall_back_when_refused=True`` the request goes
    to the next source instead, with one WARNING log line, and ``health()`` reports it.

    ``agent_share`` (0 to 1) sends that fraction of reads through the agent and the rest
    straight to the API (then the environment), evenly interleaved, to move an application
    onto the agent step by step; ``usage()`` counts the reads routed past the agent apart.

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
        env_names: Mapping[str, str | Mapping[str, str]] | None = None,
        session: boto3.session.Session | None = None,
        region_name: str | None = None,
        agent_connect_timeout: float = 0.5,
        agent_read_timeout: float = 5.0,
        agent_busy_poll: float = 100e-6,
        fall_back_when_refused: bool = False,
        agent_share: float = 1.0,
    ) -> None:
        if not 0.0 <= agent_share <= 1.0:
            raise ValueError("agent_share must be between 0 and 1")
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
        self._fall_back_when_refused = fall_back_when_refused
        self._refusal: str | None = None  # why the agent last refused us, when falling back
        self._warn_lock = threading.Lock()
        self._agent_share = agent_share
        # Read n goes through the agent when floor((n+1)*share) > floor(n*share): exactly
        # the share over any run of reads, evenly spread; next() on a count is thread-safe.
        self._reads = itertools.count()

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

        Raises SecretNotFound or RequestRefused when a source answers so, AgentRefused
        when the agent refuses this client's token (unless ``fall_back_when_refused``),
        and SourceUnavailable when none can answer.
        """
        if not secret_id:
            raise ValueError("secret_id must not be empty")
        reasons: dict[str, str] = {}
        usage = self._usage
        sources = self._sources
        if self._agent_share < 1.0 and not self._through_agent():
            sources = sources[1:]
            usage.routed_past_agent()
        for source in sources:
            started = time.perf_counter()
            try:
                value = source.fetch(secret_id, version_stage, version_id, refresh)
            except Refused as exc:
                usage.source(source.name, False, time.perf_counter() - started)
                if not self._fall_back_when_refused:
                    usage.request(failed=True)
                    raise AgentRefused(self._agent.url, exc.reason) from None
                self._refused(exc.reason)
                reasons[source.name] = exc.reason
                continue
            except Unavailable as exc:
                usage.source(source.name, False, time.perf_counter() - started)
                reasons[source.name] = exc.reason
                continue
            except ClientError:  # a definite answer: not found, refused
                usage.source(source.name, True, time.perf_counter() - started)
                usage.request(failed=False)
                raise
            usage.source(source.name, True, time.perf_counter() - started)
            usage.request(failed=False)
            return value
        usage.request(failed=True)
        raise SourceUnavailable(secret_id, reasons)

    def _through_agent(self) -> bool:
        n = next(self._reads)
        share = self._agent_share
        return int((n + 1) * share) > int(n * share)

    def _refused(self, reason: str) -> None:
        with self._warn_lock:
            first, self._refusal = self._refusal is None, reason
        if first:
            # Once: the same refusal on every read would flood the log. Never the token.
            log.warning(
                "the agent at %s refused this client (%s): check the SSRF token; "
                "reading from the next source",
                self._agent.url,
                reason,
            )

    def usage(self) -> Usage:
        """What this client has done so far: requests, and per source how many it answered,
        passed on and how long it took."""
        return self._usage.snapshot()

    def health(self) -> HealthReport:
        """The agent's state with this client's usage. ``agent_status`` is ``ok``,
        ``down`` (``/ping`` gets no answer), ``refusing`` (the agent refuses this client's
        token, or there is none) or ``backend_failing`` (it answers, but the last read
        through it failed on its backend: a timeout or a 5xx)."""
        usage = self.usage()
        try:
            response_ms = self._agent.ping()
        except Unavailable as exc:
            return HealthReport(False, "down", None, exc.reason, usage)
        try:
            self._agent.check_token()
        except Refused as exc:
            return HealthReport(
                False, "refusing", response_ms, f"refuses the token: {exc.reason}", usage
            )
        except Unavailable as exc:
            return HealthReport(False, "refusing", response_ms, exc.reason, usage)
        problem = self._agent.backend_problem
        if problem is not None:
            return HealthReport(
                True, "backend_failing", response_ms, f"its backend {problem}", usage
            )
        return HealthReport(True, "ok", response_ms, None, usage)

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
        """What this process's reads cost against what they would have cost as direct API
        calls, and, apart, the agent's backend calls for all of its clients (from its
        /metrics; unknown with the AWS agent). See CostReport."""
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
