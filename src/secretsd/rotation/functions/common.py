"""What every rotation function shares: the event, the prologue, Secrets Manager calls.

Theory of operation. The service (AWS Secrets Manager or secretsd) invokes a function four
times per rotation with ``{"Step", "SecretId", "ClientRequestToken", "RotationToken"}``
(the functions here have no use for the last). Every invocation first checks the secret's
metadata (the prologue): rotation not switched off, the token is a version of the secret, a
token already AWSCURRENT means the rotation is over (return), a token that is not AWSPENDING
is an error. Then the step runs. Each step is written so that
running it again, or the whole rotation again with the same token, changes nothing more.

This package must deploy to AWS Lambda unchanged: it imports only the standard library,
boto3/botocore and the database drivers, and its modules import each other relatively, so
the package directory can be zipped under any name (see deploy/lambda/README.md).

Errors: every failure is a ``RotationError`` whose message names the cause. Messages never
contain a secret value; database error texts are redacted before they are quoted.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
import botocore.loaders
import botocore.session
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

log = logging.getLogger("secretsd.rotation.functions")

AWSCURRENT = "AWSCURRENT"
AWSPENDING = "AWSPENDING"
AWSPREVIOUS = "AWSPREVIOUS"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
ENDPOINT_VARIABLES = ("SECRETS_MANAGER_ENDPOINT", "AWS_ENDPOINT_URL_SECRETS_MANAGER")
REDACTED = "[redacted]"
_LOADER = botocore.loaders.create_loader()


class RotationError(Exception):
    """A rotation step failed. The message names the cause and holds no secret value."""


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-empty value of ``secrets`` replaced."""
    for value in secrets:
        if value:
            text = text.replace(value, REDACTED)
    return text


# -- Secrets Manager ------------------------------------------------------------------------


# Set by a service that runs functions in its own process (secretsd's orchestrator): where
# Secrets Manager is and with which key, as Lambda's environment would say. Unset on Lambda.
_SERVICE_ENVIRONMENT: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "secretsd_service_environment", default=None
)


@contextlib.contextmanager
def service_environment(env: Mapping[str, str]) -> Iterator[None]:
    """Invocations inside the block reach Secrets Manager as ``env`` says, not os.environ."""
    reset = _SERVICE_ENVIRONMENT.set(env)
    try:
        yield
    finally:
        _SERVICE_ENVIRONMENT.reset(reset)


def current_service_environment() -> Mapping[str, str]:
    return _SERVICE_ENVIRONMENT.get() or {}


def secrets_manager_client(env: Mapping[str, str] | None = None) -> Any:
    """A boto3 client, pointed at the endpoint named in the environment when there is one."""
    if env is None:
        env = {**os.environ, **current_service_environment()}
    endpoint = next((env[name] for name in ENDPOINT_VARIABLES if env.get(name)), None)
    # A session of its own, so that credentials are read afresh and threads of an
    # orchestrator running several rotations at once never share one (boto3's default
    # session is not thread-safe); the parsed service models are shared, which keeps a new
    # session cheap.
    core = botocore.session.Session()
    core.register_component("data_loader", _LOADER)
    try:
        return boto3.session.Session(botocore_session=core).client(
            "secretsmanager",
            endpoint_url=endpoint,
            # Explicit, so that a given ``env`` wins over the process environment.
            region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
        )
    except NoRegionError:
        raise RotationError(
            "No AWS region is configured for the Secrets Manager client: "
            "set AWS_REGION or AWS_DEFAULT_REGION."
        ) from None


def _api_failure(operation: str, secret_id: str, exc: Exception) -> RotationError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        detail = f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")
    else:
        detail = f"{type(exc).__name__}: {exc}"
    return RotationError(f"Secrets Manager {operation} on {secret_id} failed ({detail}).")


def call(sm: Any, operation: str, **kwargs: Any) -> dict[str, Any]:
    """Call a Secrets Manager operation by its API name; failures become RotationError."""
    method = getattr(sm, _snake(operation))
    try:
        return method(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise _api_failure(operation, str(kwargs.get("SecretId", "")), exc) from None


def _snake(operation: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")


def get_value(sm: Any, secret_id: str, stage: str, version_id: str | None = None) -> str | None:
    """The SecretString of a version, or None when that version or label holds no value."""
    kwargs: dict[str, Any] = {"SecretId": secret_id, "VersionStage": stage}
    if version_id is not None:
        kwargs["VersionId"] = version_id
    try:
        response = sm.get_secret_value(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise _api_failure("GetSecretValue", secret_id, exc) from None
    except BotoCoreError as exc:
        raise _api_failure("GetSecretValue", secret_id, exc) from None
    if "SecretString" not in response:
        raise RotationError(
            f"The {stage} version of {secret_id} holds a binary value; "
            "this function rotates JSON text secrets."
        )
    return response["SecretString"]


def parse_json_object(text: str, what: str) -> dict[str, Any]:
    """``text`` as a JSON object; the error names ``what`` and never quotes the text."""
    try:
        value = json.loads(text)
    except ValueError:
        raise RotationError(f"The {what} is not valid JSON.") from None
    if not isinstance(value, dict):
        raise RotationError(f"The {what} is JSON but not an object.")
    return value


def require_value(sm: Any, secret_id: str, stage: str, version_id: str | None = None) -> str:
    value = get_value(sm, secret_id, stage, version_id)
    if value is None:
        raise RotationError(f"Secret {secret_id} has no value labelled {stage}.")
    return value


def put_pending(sm: Any, secret_id: str, token: str, value: dict[str, Any]) -> None:
    call(
        sm,
        "PutSecretValue",
        SecretId=secret_id,
        ClientRequestToken=token,
        SecretString=json.dumps(value),
        VersionStages=[AWSPENDING],
    )


# -- Passwords --------------------------------------------------------------------------------

_BOOLEAN_OPTIONS = {
    # environment variable: (GetRandomPassword parameter, default)
    "EXCLUDE_NUMBERS": ("ExcludeNumbers", False),
    "EXCLUDE_PUNCTUATION": ("ExcludePunctuation", False),
    "EXCLUDE_UPPERCASE": ("ExcludeUppercase", False),
    "EXCLUDE_LOWERCASE": ("ExcludeLowercase", False),
    "INCLUDE_SPACE": ("IncludeSpace", False),
    "REQUIRE_EACH_INCLUDED_TYPE": ("RequireEachIncludedType", True),
}


def env_flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    text = raw.strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise RotationError(f"Environment variable {name} must be true or false.")


def password_request(
    default_exclude: str,
    env: Mapping[str, str] | None = None,
    defaults: Mapping[str, bool] | None = None,
) -> dict[str, Any]:
    """GetRandomPassword parameters from the function's environment."""
    env = os.environ if env is None else env
    defaults = defaults or {}
    raw_length = env.get("PASSWORD_LENGTH", "").strip() or "32"
    try:
        length = int(raw_length)
    except ValueError:
        length = 0
    if not 1 <= length <= 4096:
        raise RotationError("Environment variable PASSWORD_LENGTH must be an integer 1-4096.")
    request: dict[str, Any] = {"PasswordLength": length}
    exclude = env.get("EXCLUDE_CHARACTERS", default_exclude)
    if exclude:
        request["ExcludeCharacters"] = exclude
    for name, (parameter, default) in _BOOLEAN_OPTIONS.items():
        request[parameter] = env_flag(env, name, defaults.get(name, default))
    return request


def random_password(sm: Any, secret_id: str, request: Mapping[str, Any]) -> str:
    return call(sm, "GetRandomPassword", **request)["RandomPassword"]


# -- The handler ------------------------------------------------------------------------------


class Rotator(Protocol):
    """The three steps that differ between functions; finishSecret is common."""

    def create_secret(self, sm: Any, secret_id: str, token: str) -> None: ...

    def set_secret(self, sm: Any, secret_id: str, token: str) -> None: ...

    def test_secret(self, sm: Any, secret_id: str, token: str) -> None: ...


@dataclass(frozen=True)
class Event:
    step: str
    secret_id: str
    token: str


def parse_event(event: Any) -> Event:
    if not isinstance(event, Mapping):
        raise RotationError("The rotation event must be a JSON object.")
    missing = [k for k in ("Step", "SecretId", "ClientRequestToken") if not event.get(k)]
    if missing:
        raise RotationError(f"The rotation event is missing {', '.join(missing)}.")
    fields = [event["Step"], event["SecretId"], event["ClientRequestToken"]]
    if not all(isinstance(f, str) for f in fields):
        raise RotationError("Step, SecretId and ClientRequestToken must be strings.")
    if event["Step"] not in STEPS:
        raise RotationError(
            f"Invalid step parameter {event['Step']!r}: expected one of {', '.join(STEPS)}."
        )
    return Event(*fields)


def handle(
    event: Any, rotator: Rotator, client_factory: Callable[[], Any] = secrets_manager_client
) -> None:
    """Run one step of a rotation after the prologue every function shares."""
    ev = parse_event(event)
    sm = client_factory()
    meta = call(sm, "DescribeSecret", SecretId=ev.secret_id)
    if "RotationEnabled" in meta and not meta["RotationEnabled"]:
        raise RotationError(f"Secret {ev.secret_id} is not enabled for rotation.")
    stages = meta.get("VersionIdsToStages", {}).get(ev.token)
    if stages is None:
        raise RotationError(
            f"Secret version {ev.token} has no stage for rotation of secret {ev.secret_id}."
        )
    if AWSCURRENT in stages:
        log.info("%s: version %s of %s is already AWSCURRENT", ev.step, ev.token, ev.secret_id)
        return
    if AWSPENDING not in stages:
        raise RotationError(
            f"Secret version {ev.token} is not set as AWSPENDING for rotation of secret "
            f"{ev.secret_id}."
        )
    log.info("%s: rotating %s, version %s", ev.step, ev.secret_id, ev.token)
    if ev.step == "createSecret":
        rotator.create_secret(sm, ev.secret_id, ev.token)
    elif ev.step == "setSecret":
        rotator.set_secret(sm, ev.secret_id, ev.token)
    elif ev.step == "testSecret":
        rotator.test_secret(sm, ev.secret_id, ev.token)
    else:
        finish_secret(sm, ev.secret_id, ev.token)
    log.info("%s: done for %s, version %s", ev.step, ev.secret_id, ev.token)


def finish_secret(sm: Any, secret_id: str, token: str) -> None:
    """Move AWSCURRENT to the pending version, naming the version it leaves."""
    meta = call(sm, "DescribeSecret", SecretId=secret_id)
    holder = next(
        (v for v, stages in meta.get("VersionIdsToStages", {}).items() if AWSCURRENT in stages),
        None,
    )
    if holder == token:
        return
    kwargs: dict[str, Any] = {
        "SecretId": secret_id,
        "VersionStage": AWSCURRENT,
        "MoveToVersionId": token,
    }
    if holder is not None:
        kwargs["RemoveFromVersionId"] = holder
    call(sm, "UpdateSecretVersionStage", **kwargs)
    log.info("finishSecret: %s version %s is now AWSCURRENT", secret_id, token)
