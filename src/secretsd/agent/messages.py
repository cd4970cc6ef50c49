"""Every user-facing text of the agent, in one place.

The texts marked "theirs" are those of the AWS Secrets Manager Agent, byte for byte: clients,
scripts and tests written for it compare them.
"""

from __future__ import annotations

# HTTP bodies (theirs).
CONNECTION_LIMIT = "Connection limit exceeded"
FORWARDED = "Forwarded"
BAD_TOKEN = "Bad Token"
NOT_ALLOWED = "Not allowed"
NOT_FOUND = "Not found"
HEALTHY = "healthy"
MISSING_SECRET_ID_QUERY = "missing parameter secretId"
MISSING_SECRET_ID_PATH = "missing secret ID"
INVALID_REFRESH_NOW = "invalid refreshNow value"
REQUEST_TOO_LARGE = "Request too large"
BAD_REQUEST = "Bad request"
# The SSM Parameter Store route (ours, in the style of theirs above).
MISSING_PARAMETER_NAME = "missing parameter name"
VERSION_AND_LABEL = "version and label cannot be used together"
INVALID_VERSION = "invalid version value"
INVALID_WITH_DECRYPTION = "invalid withDecryption value"


def unknown_parameter(name: str) -> str:
    return f"unknown parameter: {name}"


# Backend failures (theirs): (__type, message, HTTP status).
TIMEOUT = ("TimeoutError", "Timeout", 504)
READ_ERROR = ("ConnectionError", "Read Error", 502)
RESPONSE_ERROR = ("ConnectionError", "Response Error", 502)
INTERNAL_FAILURE = "InternalFailure"

# Configuration errors (theirs).
BAD_LOG_LEVEL = (
    "The log level specified in the configuration file isn't valid. "
    "The log level must be DEBUG, INFO, WARN, ERROR, or NONE."
)
BAD_HTTP_PORT = (
    "The HTTP port specified in the configuration file isn't valid. "
    "The HTTP port must be in the range 1024 to 65535."
)
BAD_TTL = (
    "The TTL in seconds specified in the configuration file isn't valid. "
    "The TTL in seconds must be in the range 0 to 3600."
)
BAD_CACHE_SIZE = (
    "The cache size specified in the configuration file isn't valid. "
    "The cache size must be in the range 1 to 1000."
)
EMPTY_SSRF_HEADERS = "The list of SSRF headers in the configuration file can't be empty."
EMPTY_SSRF_ENV = "The list of SSRF environment variables in the configuration file can't be empty."
BAD_PATH_PREFIX = "The path prefix specified in the configuration file must begin with /."
BAD_MAX_CONN = (
    "The maximum number of connections specified in the configuration file isn't valid. "
    "The maximum number of connections must be in the range 1 to 1000."
)


def config_not_found(path: str) -> str:
    return f'configuration file "{path}" not found'


def unknown_key(key: str, known: list[str]) -> str:
    expected = ", ".join(f"`{name}`" for name in known)
    return f"unknown field `{key}`, expected one of {expected}"


def withdrawn_refresh_now_interval() -> str:
    return (
        "refresh_now_min_interval_seconds is withdrawn and ignored: refreshNow=true always "
        "answers from a backend call that started after the request arrived"
    )


def bad_type(key: str, expected: str) -> str:
    return f"invalid type for `{key}`: expected {expected}"


def bad_value(key: str, rule: str) -> str:
    """Our own keys: one sentence naming the key and what it accepts."""
    return f"The value of {key} in the configuration file isn't valid: {rule}."


def token_unreadable(variables: list[str], error: str) -> str:
    names = ", ".join(f'"{name}"' for name in variables)
    return f"Could not read SSRF token variable(s) [{names}]: {error}"


TOKEN_NOT_PRESENT = "environment variable not found"
TOKEN_EMPTY = "the token is empty"

# Command line (theirs).
USAGE = "Usage: secretsd agent [--config <file>]"
ARGUMENT_EXPECTED = "Argument expected"


def unknown_option(option: str) -> str:
    return f"Unknown option {option}"


def could_not_bind(address: str, error: str) -> str:
    return f"Could not bind to {address}: {error}"


def listening(version: str, url: str) -> str:
    return f"secretsd-agent/{version} listening on {url}"


def credentials_invalid(error: str) -> str:
    return f"Could not validate the backend credentials: {error}"


NO_REGION = (
    "No AWS region for the backend: set region in the configuration file, or AWS_REGION "
    "(or AWS_DEFAULT_REGION) in the environment"
)


def extension_registration_failed(error: str) -> str:
    return f"Could not register with the Lambda Extensions API: {error}"
