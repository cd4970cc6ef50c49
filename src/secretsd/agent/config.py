"""Agent configuration: the AWS agent's TOML keys, defaults, ranges and messages, plus ours.

Parsed once into a frozen, typed ``AgentConfig``; nothing else reads the file or the
environment for settings. As in the AWS agent, unknown keys are refused and numbers may be
written as integers or as quoted strings.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from . import messages

DEFAULT_SSRF_HEADERS = ("X-Aws-Parameters-Secrets-Token", "X-Vault-Token")
DEFAULT_SSRF_ENV_VARIABLES = ("AWS_TOKEN", "AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN")
LOG_LEVELS = ("debug", "info", "warn", "error", "none")
LOG_FILE = "./logs/secrets_manager_agent.log"


class ConfigError(Exception):
    """A configuration problem; the message is shown to the user as is."""


@dataclass(frozen=True)
class AgentConfig:
    # The AWS agent's keys.
    log_level: str = "info"
    log_to_file: bool = True
    http_port: int = 2773
    region: str | None = None
    ttl_seconds: int = 300
    cache_size: int = 1000
    ssrf_headers: tuple[str, ...] = DEFAULT_SSRF_HEADERS
    ssrf_env_variables: tuple[str, ...] = DEFAULT_SSRF_ENV_VARIABLES
    path_prefix: str = "/v1/"
    max_conn: int = 800
    ignore_transient_errors: bool = True
    validate_credentials: bool = True
    # Ours (docs/agent.md describes each one).
    endpoint_url: str | None = None
    # A PEM file of the certificate authorities an https endpoint's certificate is checked
    # against (None: botocore's own bundle, or AWS_CA_BUNDLE).
    ca_bundle: str | None = None
    http_address: str = "127.0.0.1"
    unix_socket: str | None = None
    max_stale_seconds: int = 900
    refresh_ahead_fraction: float = 0.8
    pending_revalidate_seconds: float = 5.0
    prefetch: tuple[str, ...] = ()
    metrics: bool = True
    backend_connect_timeout_seconds: float = 2.0
    backend_read_timeout_seconds: float = 5.0
    backend_max_attempts: int = 3
    backend_deadline_seconds: float = 20.0
    backend_threads: int = 16
    busy_poll_us: int | None = None  # None: 100, or 0 under a cgroup CPU quota
    log_file: str = LOG_FILE
    # SSM Parameter Store, for the Lambda extension's /systemsmanager/parameters/get.
    ssm_endpoint_url: str | None = None
    ssm_ttl_seconds: int = 300
    ssm_deadline_seconds: float | None = None  # None: backend_deadline_seconds
    # Warnings about the file (withdrawn keys), logged once logging is set up.
    notices: tuple[str, ...] = ()

    @property
    def refresh_ahead_seconds(self) -> float:
        """How long before expiry a hit starts a background revalidation (0: never)."""
        if self.refresh_ahead_fraction >= 1.0:
            return 0.0
        return self.ttl_seconds * (1.0 - self.refresh_ahead_fraction)


KNOWN_KEYS = [f.name for f in fields(AgentConfig) if f.name != "notices"]
# Keys we no longer act on. Still accepted, so that a configuration file written for an
# earlier version starts the agent; each is logged as a warning.
WITHDRAWN_KEYS = {
    "refresh_now_min_interval_seconds": messages.withdrawn_refresh_now_interval(),
}


def _integer(key: str, message: str, low: int, high: int) -> Callable[[Any], int]:
    def parse(raw: Any) -> int:
        if isinstance(raw, bool):
            raise ConfigError(message)
        if isinstance(raw, str):
            text = raw.strip()
            if not text.isdigit():
                raise ConfigError(message)
            raw = int(text)
        if not isinstance(raw, int) or not low <= raw <= high:
            raise ConfigError(message)
        return raw

    return parse


def _number(key: str, low: float, high: float) -> Callable[[Any], float]:
    rule = f"a number from {low:g} to {high:g}"

    def parse(raw: Any) -> float:
        if isinstance(raw, bool):
            raise ConfigError(messages.bad_value(key, rule))
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(messages.bad_value(key, rule)) from None
        if not low <= value <= high:
            raise ConfigError(messages.bad_value(key, rule))
        return value

    return parse


def _boolean(key: str) -> Callable[[Any], bool]:
    def parse(raw: Any) -> bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        raise ConfigError(messages.bad_type(key, "a boolean"))

    return parse


def _string(key: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        if not isinstance(raw, str):
            raise ConfigError(messages.bad_type(key, "a string"))
        return raw

    return parse


def _string_list(key: str, empty_message: str | None) -> Callable[[Any], tuple[str, ...]]:
    def parse(raw: Any) -> tuple[str, ...]:
        if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
            raise ConfigError(messages.bad_type(key, "a list of strings"))
        if not raw and empty_message is not None:
            raise ConfigError(empty_message)
        return tuple(raw)

    return parse


def _log_level(raw: Any) -> str:
    if not isinstance(raw, str) or raw.lower() not in LOG_LEVELS:
        raise ConfigError(messages.BAD_LOG_LEVEL)
    return raw.lower()


def _http_port(raw: Any) -> int:
    port = _integer("http_port", messages.BAD_HTTP_PORT, 0, 65535)(raw)
    if 0 < port < 1024:
        raise ConfigError(messages.BAD_HTTP_PORT)
    return port


def _path_prefix(raw: Any) -> str:
    prefix = _string("path_prefix")(raw)
    if not prefix.startswith("/"):
        raise ConfigError(messages.BAD_PATH_PREFIX)
    return prefix


def _address(raw: Any) -> str:
    text = _string("http_address")(raw)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ConfigError(messages.bad_value("http_address", "an IP address")) from None
    return text


def _endpoint(key: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        text = _string(key)(raw)
        if not text.startswith(("http://", "https://")):
            raise ConfigError(messages.bad_value(key, "an http:// or https:// URL"))
        return text

    return parse


def _existing_file(key: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        text = _string(key)(raw)
        if not Path(text).is_file():
            raise ConfigError(messages.bad_value(key, "the path of an existing file"))
        return text

    return parse


PARSERS: dict[str, Callable[[Any], Any]] = {
    "log_level": _log_level,
    "log_to_file": _boolean("log_to_file"),
    "http_port": _http_port,
    "region": _string("region"),
    "ttl_seconds": _integer("ttl_seconds", messages.BAD_TTL, 0, 3600),
    "cache_size": _integer("cache_size", messages.BAD_CACHE_SIZE, 1, 1000),
    "ssrf_headers": _string_list("ssrf_headers", messages.EMPTY_SSRF_HEADERS),
    "ssrf_env_variables": _string_list("ssrf_env_variables", messages.EMPTY_SSRF_ENV),
    "path_prefix": _path_prefix,
    "max_conn": _integer("max_conn", messages.BAD_MAX_CONN, 1, 1000),
    "ignore_transient_errors": _boolean("ignore_transient_errors"),
    "validate_credentials": _boolean("validate_credentials"),
    "endpoint_url": _endpoint("endpoint_url"),
    "ca_bundle": _existing_file("ca_bundle"),
    "http_address": _address,
    "unix_socket": _string("unix_socket"),
    "max_stale_seconds": _integer(
        "max_stale_seconds",
        messages.bad_value("max_stale_seconds", "an integer from 0 to 604800"),
        0,
        604800,
    ),
    "refresh_ahead_fraction": _number("refresh_ahead_fraction", 0.5, 1.0),
    "pending_revalidate_seconds": _number("pending_revalidate_seconds", 0.1, 3600),
    "prefetch": _string_list("prefetch", None),
    "metrics": _boolean("metrics"),
    "backend_connect_timeout_seconds": _number("backend_connect_timeout_seconds", 0.1, 60),
    "backend_read_timeout_seconds": _number("backend_read_timeout_seconds", 0.1, 300),
    "backend_max_attempts": _integer(
        "backend_max_attempts",
        messages.bad_value("backend_max_attempts", "an integer from 1 to 10"),
        1,
        10,
    ),
    "backend_deadline_seconds": _number("backend_deadline_seconds", 0.1, 600),
    "backend_threads": _integer(
        "backend_threads",
        messages.bad_value("backend_threads", "an integer from 1 to 256"),
        1,
        256,
    ),
    "busy_poll_us": _integer(
        "busy_poll_us",
        messages.bad_value("busy_poll_us", "an integer from 0 to 10000"),
        0,
        10000,
    ),
    "log_file": _string("log_file"),
    "ssm_endpoint_url": _endpoint("ssm_endpoint_url"),
    "ssm_ttl_seconds": _integer(
        "ssm_ttl_seconds",
        messages.bad_value("ssm_ttl_seconds", "an integer from 0 to 3600"),
        0,
        3600,
    ),
    "ssm_deadline_seconds": _number("ssm_deadline_seconds", 0.1, 600),
}
assert set(PARSERS) == set(KNOWN_KEYS)


def from_mapping(values: Mapping[str, Any], env: Mapping[str, str] | None = None) -> AgentConfig:
    """Validate a parsed TOML table. Keys are checked in file order, as the user wrote them."""
    settings: dict[str, Any] = {}
    notices: list[str] = []
    for key, raw in values.items():
        if key in WITHDRAWN_KEYS:
            notices.append(WITHDRAWN_KEYS[key])
            continue
        parser = PARSERS.get(key)
        if parser is None:
            raise ConfigError(messages.unknown_key(key, KNOWN_KEYS))
        settings[key] = parser(raw)
    environment = os.environ if env is None else env
    if "endpoint_url" not in settings:
        # botocore honours both variables; knowing the endpoint is not AWS matters for the
        # credential check at start (no STS there).
        settings["endpoint_url"] = (
            environment.get("AWS_ENDPOINT_URL_SECRETS_MANAGER")
            or environment.get("AWS_ENDPOINT_URL")
            or None
        )
    if "ssm_endpoint_url" not in settings:
        # Resolved here rather than left to botocore, so the configuration says where
        # parameters come from (and botocore's own rule is the same).
        settings["ssm_endpoint_url"] = (
            environment.get("AWS_ENDPOINT_URL_SSM") or environment.get("AWS_ENDPOINT_URL") or None
        )
    return AgentConfig(**settings, notices=tuple(notices))


def load(path: str | None, env: Mapping[str, str] | None = None) -> AgentConfig:
    """The configuration from ``path`` (TOML), or the defaults when ``path`` is None."""
    if path is None:
        return from_mapping({}, env)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(messages.config_not_found(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return from_mapping(values, env)


LAMBDA_VARIABLES = {
    "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": "http_port",
    "PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE": "cache_size",
    "PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS": "max_conn",
    "PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL": "log_level",
    "SECRETS_MANAGER_TTL": "ttl_seconds",
    "SSM_PARAMETER_STORE_TTL": "ssm_ttl_seconds",
}


def from_lambda_environment(env: Mapping[str, str]) -> AgentConfig:
    """The settings of the Parameters and Secrets Lambda Extension, from its variables.

    A cache size or TTL of 0, or CACHE_ENABLED=FALSE, means "no cache": every request goes
    to the backend. We express that as a TTL of 0 (every request revalidates). The two
    timeouts are separate there, so SSM gets its own deadline (the default when unset).
    """
    values: dict[str, Any] = {
        "max_conn": 3,
        "log_to_file": False,
        "validate_credentials": False,
    }
    for variable, key in LAMBDA_VARIABLES.items():
        if env.get(variable):
            values[key] = env[variable]
    bypass = env.get("PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED", "TRUE").upper() == "FALSE"
    if str(values.get("cache_size", "1")).strip() == "0":
        bypass = True
        values.pop("cache_size")
    if bypass:
        values["ttl_seconds"] = values["ssm_ttl_seconds"] = 0
    timeout_ms = env.get("SECRETS_MANAGER_TIMEOUT_MILLIS", "0").strip()
    if timeout_ms.isdigit() and int(timeout_ms) > 0:
        values["backend_deadline_seconds"] = max(0.1, int(timeout_ms) / 1000)
    ssm_timeout_ms = env.get("SSM_PARAMETER_STORE_TIMEOUT_MILLIS", "0").strip()
    if ssm_timeout_ms.isdigit() and int(ssm_timeout_ms) > 0:
        values["ssm_deadline_seconds"] = max(0.1, int(ssm_timeout_ms) / 1000)
    else:
        values["ssm_deadline_seconds"] = AgentConfig.backend_deadline_seconds
    return from_mapping(values, env)
