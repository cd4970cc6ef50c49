"""The agent as a source: one keep-alive connection per thread to the local agent.

Theory of operation: the agent answers 200 with the secret, a backend error as JSON with the
backend's ``__type`` (a definite answer unless it is transient, by the rule in
secretsd.transient), and its own refusals (bad token, connection limit, unknown path) as
plain text. Definite backend answers are raised. A 403 in plain text is the agent refusing
this client's token: a configuration error, signalled apart (``Refused``) so the client can
say so instead of quietly reading from the next source. Everything else, and any I/O
failure, makes the agent unavailable so the client asks the next source. The agent closes
idle connections (after 61 s), so a failure on a reused connection is retried once on a new
one before the agent counts as down.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httptools

from secretsd.transient import is_transient

from ._agent_connection import AgentConnection, AgentConnectionClosed
from ._errors import NOT_FOUND_CODE, Refused, RequestRefused, SecretNotFound, Unavailable
from ._value import SecretValue

DEFAULT_URL = "http://127.0.0.1:2773"
URL_VARIABLE = "SECRETSD_AGENT_URL"
TOKEN_VARIABLE = "AWS_TOKEN"
TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"
FILE_PREFIX = "file://"
TARGETS_LIMIT = 1024
BACKEND_CALLS = "secretsd_agent_backend_calls"
SSM_OPERATIONS = frozenset({"GetParameter"})
STALE_CONNECTION = (AgentConnectionClosed, ConnectionResetError, BrokenPipeError)
# Answers without a secret id: 400 (missing parameter) once the token passed, 403 if not.
# Both agents check the token before the parameters and call no backend for this.
TOKEN_PROBE = "/secretsmanager/get"


class AgentSource:
    """Reads secrets from a secretsd agent or an AWS Secrets Manager Agent."""

    name = "agent"

    def __init__(
        self,
        url: str | None,
        token: str | None,
        env: Mapping[str, str],
        connect_timeout: float = 0.5,
        read_timeout: float = 5.0,
        busy_poll: float = 100e-6,
    ) -> None:
        parts = urlsplit(url or env.get(URL_VARIABLE) or DEFAULT_URL)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("the agent URL must look like http://HOST[:PORT]")
        self.host = parts.hostname
        self.port = parts.port or 2773
        self.url = f"http://{parts.netloc}"
        self._token = token
        self._resolved: str | None = None
        self._env = env
        self._settings = (connect_timeout, read_timeout, busy_poll)
        self._local = threading.local()
        # Every thread's connection, so that close() can close them all.
        self._connections: set[AgentConnection] = set()
        self._lock = threading.Lock()
        self._targets: dict[tuple[str, str | None, str | None, bool], str] = {}
        # Why the last read through the agent failed on the agent's side of it (its backend
        # timed out or answered 5xx); None once a read succeeds. For health().
        self.backend_problem: str | None = None

    def fetch(
        self, secret_id: str, stage: str | None, version_id: str | None, refresh: bool
    ) -> SecretValue:
        """One secret from the agent; raises Unavailable, SecretNotFound or RequestRefused."""
        key = (secret_id, stage, version_id, refresh)
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = _target(secret_id, stage, version_id, refresh)
            if len(self._targets) > TARGETS_LIMIT:
                self._targets.clear()
        status, body = self._request(target, self._read_token())
        if status == 200:
            self.backend_problem = None
            return _parse_secret(body)
        code, message = _backend_error(body)
        if code is None:
            if status == 403:
                raise Refused(f"answered 403 {_first_line(body)}")
            raise Unavailable(f"answered {status} {_first_line(body)}")
        if is_transient(status):
            self.backend_problem = f"answered {status} {code}"
            raise Unavailable(self.backend_problem)
        self.backend_problem = None
        if code == NOT_FOUND_CODE:
            raise SecretNotFound(secret_id, message, self.name)
        raise RequestRefused(secret_id, code, message, self.name)

    def ping(self) -> float:
        """Milliseconds for the agent to answer ``/ping``; raises Unavailable."""
        started = time.perf_counter()
        status, body = self._request("/ping", "")
        if status != 200:
            raise Unavailable(f"answered {status} {_first_line(body)}")
        return (time.perf_counter() - started) * 1000

    def check_token(self) -> None:
        """Raises Refused when the agent refuses this client's token, Unavailable when it
        cannot be asked (no token, down); calls nothing on the agent's backend."""
        status, body = self._request(TOKEN_PROBE, self._read_token())
        if status == 403:
            raise Refused(f"answered 403 {_first_line(body)}")
        if status != 400:
            raise Unavailable(f"answered {status} {_first_line(body)}")

    def backend_calls(self) -> int | None:
        """The agent's Secrets Manager calls so far, from its /metrics (its SSM calls are
        billed apart and not counted); None when it does not tell (the AWS agent has no
        metrics)."""
        try:
            status, body = self._request("/metrics", self._read_token())
        except Unavailable:
            return None
        if status != 200:
            return None
        # Imported here: only the cost report reads metrics, and applications that never ask
        # for one should not load the parser with every import of the client.
        from prometheus_client.parser import text_string_to_metric_families

        try:
            families = text_string_to_metric_families(body.decode("utf-8"))
            return round(
                sum(
                    sample.value
                    for family in families
                    for sample in family.samples
                    if sample.name == BACKEND_CALLS + "_total"
                    and sample.labels.get("operation") not in SSM_OPERATIONS
                )
            )
        except (ValueError, UnicodeDecodeError):
            return None

    def close(self) -> None:
        """Close the connections of every thread; the next request opens a new one."""
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            connection.close()

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            self._local.connection = None
            with self._lock:
                self._connections.discard(connection)
            connection.close()

    def _read_token(self) -> str:
        # Read on first use and kept: a token given as file://PATH (as token= or in
        # AWS_TOKEN, the AWS agent's convention) is that file's contents, trimmed. A token
        # file that cannot be read is a configuration error, like a wrong token.
        if self._resolved is None:
            value = self._token if self._token is not None else self._env.get(TOKEN_VARIABLE)
            if not value:
                raise Unavailable(f"no SSRF token ({TOKEN_VARIABLE} is not set)")
            if value.startswith(FILE_PREFIX):
                try:
                    value = Path(value[len(FILE_PREFIX) :]).read_text("utf-8").strip()
                except (OSError, UnicodeDecodeError) as exc:
                    raise Refused(f"token file unreadable: {type(exc).__name__}") from exc
                if not value:
                    raise Refused("the token file is empty")
            self._resolved = value
        return self._resolved

    def _request(self, target: str, token: str) -> tuple[int, bytes]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = AgentConnection(self.host, self.port, *self._settings)
            self._local.connection = connection
        reused = connection.connected
        if not reused:
            with self._lock:
                self._connections.add(connection)
        try:
            return connection.request(target, TOKEN_HEADER, token)
        except STALE_CONNECTION as exc:
            self._drop()
            if reused:
                return self._request(target, token)
            raise Unavailable(f"connection failed: {type(exc).__name__}") from exc
        except TimeoutError as exc:
            self._drop()
            raise Unavailable("timed out") from exc
        except (OSError, httptools.HttpParserError) as exc:
            self._drop()
            why = getattr(exc, "strerror", None) or type(exc).__name__
            raise Unavailable(f"connection failed: {why}") from exc


def _target(secret_id: str, stage: str | None, version_id: str | None, refresh: bool) -> str:
    query = {"secretId": secret_id}
    if version_id is not None:
        query["versionId"] = version_id
    if stage is not None:
        query["versionStage"] = stage
    if refresh:
        query["refreshNow"] = "true"
    return "/secretsmanager/get?" + urlencode(query)


def _parse_secret(body: bytes) -> SecretValue:
    try:
        document = json.loads(body.decode("utf-8"))
        version_id = document.get("VersionId")
        if "SecretString" in document:
            return SecretValue(document["SecretString"], version_id=version_id, source="agent")
        binary = base64.b64decode(document["SecretBinary"], validate=True)
        return SecretValue(binary, version_id=version_id, source="agent")
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        # Never quote the body: it holds the secret.
        raise Unavailable("answered 200 with a body that is not a secret") from None


def _backend_error(body: bytes) -> tuple[str | None, str]:
    try:
        document = json.loads(body)
        return str(document["__type"]), str(document.get("message", ""))
    except (ValueError, KeyError, TypeError):
        return None, ""


def _first_line(body: bytes) -> str:
    return body.decode("utf-8", "replace").splitlines()[0][:100] if body.strip() else "(empty)"
