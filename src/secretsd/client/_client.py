"""SecretsClient: the agent first, then the Secrets Manager API, then the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Protocol

import boto3

from ._agent import AgentSource
from ._api import ApiSource
from ._environ import EnvironmentSource
from ._errors import SourceUnavailable, Unavailable
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
        self._sources: tuple[Source, ...] = (
            AgentSource(
                agent_url, token, env, agent_connect_timeout, agent_read_timeout, agent_busy_poll
            ),
            ApiSource(endpoint_url, env, session, region_name),
            EnvironmentSource(env, env_names),
        )

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
        for source in self._sources:
            try:
                return source.fetch(secret_id, version_stage, version_id, refresh)
            except Unavailable as exc:
                reasons[source.name] = exc.reason
        raise SourceUnavailable(secret_id, reasons)

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
