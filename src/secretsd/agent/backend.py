"""The backend: Secrets Manager (AWS or a secretsd server) and SSM Parameter Store, through
botocore.

botocore is synchronous, so each call runs in a small thread pool and the event loop awaits
it with a deadline. Every failure leaves here as a ``BackendError`` that already holds the
response the AWS agent would send for it (status and body), and says whether it is
transient (timeout, I/O, 5xx, by the rule in secretsd.transient, shared with the client),
which decides whether a stale value may be served instead.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from secretsd import __version__ as VERSION
from secretsd.transient import is_transient

from . import messages, render

log = logging.getLogger("secretsd.agent.backend")

GET_SECRET_VALUE = "GetSecretValue"
DESCRIBE_SECRET = "DescribeSecret"
GET_PARAMETER = "GetParameter"


class BackendError(Exception):
    """A failed backend call, carrying the HTTP status and body the agent answers with."""

    def __init__(self, status: int, code: str, message: str, transient: bool) -> None:
        super().__init__(f"{code} ({status})")
        self.status = status
        self.code = code
        self.transient = transient
        self.body = render.error_body(code, message)
        self.response = render.json_response(status, self.body)  # what the agent answers

    @classmethod
    def timeout(cls) -> BackendError:
        code, message, status = messages.TIMEOUT
        return cls(status, code, message, True)

    @classmethod
    def io(cls) -> BackendError:
        code, message, status = messages.READ_ERROR
        return cls(status, code, message, True)

    @classmethod
    def bad_response(cls) -> BackendError:
        code, message, status = messages.RESPONSE_ERROR
        return cls(status, code, message, True)

    @classmethod
    def internal(cls) -> BackendError:
        return cls(500, messages.INTERNAL_FAILURE, "", False)

    def __repr__(self) -> str:
        return f"BackendError({self.status}, {self.code!r})"


def translate(exc: BaseException) -> BackendError:
    """The one place a botocore failure becomes the agent's answer."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
        code, message = error.get("Code"), error.get("Message")
        if not code or message is None:
            return BackendError.internal()
        return BackendError(status, code, message, transient=is_transient(status))
    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError | TimeoutError):
        return BackendError.timeout()
    if isinstance(exc, ResponseParserError):
        return BackendError.bad_response()
    if isinstance(exc, EndpointConnectionError | ConnectionClosedError | HTTPClientError | OSError):
        return BackendError.io()
    return BackendError.internal()


class Backend(Protocol):
    """What the cache needs from Secrets Manager; tests pass a fake."""

    async def get_secret_value(
        self, secret_id: str, version_id: str | None, version_stage: str | None
    ) -> Mapping[str, Any]: ...

    async def describe_secret(self, secret_id: str) -> Mapping[str, Any]: ...


class ParameterBackend(Protocol):
    """What the parameter cache needs from SSM; tests pass a fake."""

    async def get_parameter(self, selector: str, with_decryption: bool) -> Mapping[str, Any]: ...


Observer = Callable[[str, str, float], None]


class BotocoreBackend:
    """Secrets Manager and SSM through botocore clients, off the event loop.

    The SSM client is made on first use (``ssm`` is its factory): making one costs tens of
    milliseconds at start, a Lambda cold start included, for a route many never call; and a
    failure to make it is then one request's 500, not an agent that does not start.
    """

    def __init__(
        self,
        client: Any,
        threads: int,
        deadline: float,
        observe: Observer,
        ssm: Callable[[], Any] | None = None,
        ssm_deadline: float | None = None,
    ) -> None:
        self._client = client
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="agent-backend")
        self._deadline = deadline
        self._observe = observe
        self._ssm_factory = ssm
        self._ssm_client: Any = None
        self._ssm_lock = threading.Lock()
        self._ssm_deadline = ssm_deadline or deadline

    async def _call(
        self,
        operation: str,
        method: Callable[..., Any],
        params: Mapping[str, Any],
        deadline: float | None = None,
    ) -> Any:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        outcome = "error"
        try:
            future = loop.run_in_executor(self._executor, lambda: method(**params))
            result = await asyncio.wait_for(future, deadline or self._deadline)
            outcome = "success"
            return result
        except TimeoutError:
            outcome = "timeout"
            raise BackendError.timeout() from None
        except Exception as exc:
            error = translate(exc)
            outcome = error.code
            if not isinstance(exc, ClientError | BotoCoreError | ResponseParserError | OSError):
                # Not a failure of the backend but a fault on our side of the call: it needs
                # its traceback to be found. Requests get the AWS agent's 500.
                log.error("backend %s failed unexpectedly", operation, exc_info=True)
                raise error from None
            # The operation and the error type only: neither parameters nor bodies. A 4xx is
            # the client's business (a wrong id, say), not the agent's; a 500 without a
            # backend answer (no credentials, say) is the operator's.
            if error.transient or error.code == messages.INTERNAL_FAILURE:
                level = logging.WARNING
            else:
                level = logging.DEBUG
            log.log(level, "backend %s failed: %s", operation, error)
            raise error from None
        finally:
            self._observe(operation, outcome, time.perf_counter() - started)

    async def get_secret_value(
        self, secret_id: str, version_id: str | None, version_stage: str | None
    ) -> Mapping[str, Any]:
        params: dict[str, str] = {"SecretId": secret_id}
        if version_id is not None:
            params["VersionId"] = version_id
        if version_stage is not None:
            params["VersionStage"] = version_stage
        return _well_formed(
            await self._call(GET_SECRET_VALUE, self._client.get_secret_value, params)
        )

    async def describe_secret(self, secret_id: str) -> Mapping[str, Any]:
        return _well_formed(
            await self._call(DESCRIBE_SECRET, self._client.describe_secret, {"SecretId": secret_id})
        )

    async def get_parameter(self, selector: str, with_decryption: bool) -> Mapping[str, Any]:
        params = {"Name": selector, "WithDecryption": with_decryption}
        response = await self._call(GET_PARAMETER, self._get_parameter, params, self._ssm_deadline)
        # As for secrets: a 200 without a parameter in it is a malformed response.
        if not isinstance(response.get("Parameter"), Mapping):
            raise BackendError.bad_response()
        return response

    def _get_parameter(self, **params: Any) -> Any:  # in a backend thread
        with self._ssm_lock:
            if self._ssm_client is None:
                if self._ssm_factory is None:
                    raise RuntimeError("no SSM client configured")
                self._ssm_client = self._ssm_factory()
        return self._ssm_client.get_parameter(**params)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _well_formed(response: Mapping[str, Any]) -> Mapping[str, Any]:
    # botocore turns a 200 whose body is not JSON into an empty result rather than an
    # error; without an ARN there is nothing to cache or to answer with.
    if not isinstance(response.get("ARN"), str):
        raise BackendError.bad_response()
    return response


def client_config(config: Any) -> Config:
    return Config(
        connect_timeout=config.backend_connect_timeout_seconds,
        read_timeout=config.backend_read_timeout_seconds,
        retries={"mode": "standard", "max_attempts": config.backend_max_attempts},
        max_pool_connections=config.backend_threads,
        user_agent_extra=f"secretsd-agent/{VERSION}",
    )


def make_session(config: Any) -> Any:
    """A boto3 session on the usual credential chain (environment, profile, instance role)."""
    import boto3

    return boto3.session.Session(region_name=config.region)


def make_client(session: Any, config: Any) -> Any:
    kwargs: dict[str, Any] = {"config": client_config(config)}
    if config.endpoint_url:
        kwargs["endpoint_url"] = config.endpoint_url
    if config.ca_bundle:
        kwargs["verify"] = config.ca_bundle
    return session.client("secretsmanager", **kwargs)


def ssm_client_factory(session: Any, config: Any) -> Callable[[], Any]:
    """Makes the SSM client, on the same session and settings as the Secrets Manager one."""

    def make() -> Any:
        kwargs: dict[str, Any] = {"config": client_config(config)}
        if config.ssm_endpoint_url:
            kwargs["endpoint_url"] = config.ssm_endpoint_url
        if config.ca_bundle:
            kwargs["verify"] = config.ca_bundle
        return session.client("ssm", **kwargs)

    return make


def validate_credentials(session: Any, client: Any, config: Any) -> None:
    """Fail early on unusable credentials, as the AWS agent does with STS.

    In front of AWS: sts:GetCallerIdentity. In front of another endpoint (a secretsd
    server), one cheap Secrets Manager call proves the keys and the endpoint; AccessDenied
    passes there, since the keys were recognised and an application role rarely may list
    secrets. Transient failures pass when ``ignore_transient_errors`` is on: the backend
    may come up later.
    """
    try:
        if config.endpoint_url:
            client.list_secrets(MaxResults=1)
        else:
            sts = session.client("sts", config=client_config(config))
            sts.get_caller_identity()
    except Exception as exc:
        error = translate(exc)
        if config.endpoint_url and error.code == "AccessDeniedException":
            return
        if config.ignore_transient_errors and error.transient:
            log.warning("credential check skipped: backend unavailable (%s)", error)
            return
        raise
