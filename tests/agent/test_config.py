"""Configuration: the AWS agent's keys, defaults, ranges and messages, and ours."""

from __future__ import annotations

import pytest

from secretsd.agent import config, messages
from secretsd.agent.config import ConfigError


def load_text(tmp_path, text: str, env=None):
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return config.load(str(path), env or {})


def test_defaults_are_the_aws_agents():
    settings = config.load(None, {})
    assert settings.log_level == "info"
    assert settings.log_to_file is True
    assert settings.http_port == 2773
    assert settings.region is None
    assert settings.ttl_seconds == 300
    assert settings.cache_size == 1000
    assert settings.ssrf_headers == ("X-Aws-Parameters-Secrets-Token", "X-Vault-Token")
    assert settings.ssrf_env_variables == (
        "AWS_TOKEN",
        "AWS_SESSION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    )
    assert settings.path_prefix == "/v1/"
    assert settings.max_conn == 800
    assert settings.ignore_transient_errors is True
    assert settings.validate_credentials is True
    assert settings.http_address == "127.0.0.1"


def test_seed_config_file_loads(tmp_path):
    settings = load_text(
        tmp_path,
        """
log_level = "INFO"
log_to_file = true
http_port = 2773
region = "us-east-2"
ttl_seconds = 300  # 5 minutes cache
cache_size = 100
max_conn = 50
ssrf_headers = ["X-Aws-Parameters-Secrets-Token"]
ssrf_env_variables = ["AWS_TOKEN"]
""",
    )
    assert (settings.region, settings.cache_size, settings.max_conn) == ("us-east-2", 100, 50)
    assert settings.log_level == "info"


def test_numbers_may_be_quoted(tmp_path):
    settings = load_text(tmp_path, 'http_port = "2774"\nttl_seconds = "0"\nmax_conn = "1000"')
    assert (settings.http_port, settings.ttl_seconds, settings.max_conn) == (2774, 0, 1000)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('log_level = "verbose"', messages.BAD_LOG_LEVEL),
        ("http_port = 1023", messages.BAD_HTTP_PORT),
        ("http_port = 65536", messages.BAD_HTTP_PORT),
        ('http_port = "abc"', messages.BAD_HTTP_PORT),
        ("ttl_seconds = 3601", messages.BAD_TTL),
        ("ttl_seconds = -1", messages.BAD_TTL),
        ("cache_size = 0", messages.BAD_CACHE_SIZE),
        ("cache_size = 1001", messages.BAD_CACHE_SIZE),
        ("ssrf_headers = []", messages.EMPTY_SSRF_HEADERS),
        ("ssrf_env_variables = []", messages.EMPTY_SSRF_ENV),
        ('path_prefix = "v1/"', messages.BAD_PATH_PREFIX),
        ("max_conn = 0", messages.BAD_MAX_CONN),
        ("max_conn = 1001", messages.BAD_MAX_CONN),
    ],
)
def test_each_range_error_has_the_aws_agents_text(tmp_path, line, message):
    with pytest.raises(ConfigError) as error:
        load_text(tmp_path, line)
    assert str(error.value) == message


@pytest.mark.parametrize("line", ["http_port = 0", "http_port = 1024", "http_port = 65535"])
def test_port_edges_accepted(tmp_path, line):
    load_text(tmp_path, line)


def test_log_level_any_case(tmp_path):
    assert load_text(tmp_path, 'log_level = "WaRn"').log_level == "warn"
    assert load_text(tmp_path, 'log_level = "NONE"').log_level == "none"


def test_unknown_key_is_refused(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_text(tmp_path, "ttl = 5")
    assert str(error.value).startswith("unknown field `ttl`, expected one of `log_level`")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as error:
        config.load(str(tmp_path / "nope.toml"), {})
    assert "not found" in str(error.value)


def test_bad_toml(tmp_path):
    with pytest.raises(ConfigError):
        load_text(tmp_path, "ttl_seconds = = 3")


def test_wrong_types(tmp_path):
    with pytest.raises(ConfigError):
        load_text(tmp_path, 'log_to_file = "maybe"')
    with pytest.raises(ConfigError):
        load_text(tmp_path, 'ssrf_headers = "X-Token"')


def test_our_keys_and_their_checks(tmp_path):
    settings = load_text(
        tmp_path,
        """
endpoint_url = "http://127.0.0.1:8787"
max_stale_seconds = 60
refresh_ahead_fraction = 0.5
pending_revalidate_seconds = 2
prefetch = ["db/app"]
metrics = false
ttl_seconds = 100
busy_poll_us = 250
""",
    )
    assert settings.busy_poll_us == 250
    assert settings.endpoint_url == "http://127.0.0.1:8787"
    assert settings.max_stale_seconds == 60
    assert settings.refresh_ahead_seconds == 50
    assert settings.prefetch == ("db/app",)
    assert settings.metrics is False
    with pytest.raises(ConfigError) as error:
        load_text(tmp_path, 'endpoint_url = "ftp://x"')
    assert "endpoint_url" in str(error.value)
    with pytest.raises(ConfigError):
        load_text(tmp_path, "refresh_ahead_fraction = 0.1")
    with pytest.raises(ConfigError):
        load_text(tmp_path, 'http_address = "localhost:80"')
    with pytest.raises(ConfigError) as error:
        load_text(tmp_path, "busy_poll_us = 10001")
    assert str(error.value) == messages.bad_value("busy_poll_us", "an integer from 0 to 10000")


def test_a_withdrawn_key_is_accepted_with_a_notice(tmp_path):
    # A file written for an earlier version must still start the agent.
    settings = load_text(tmp_path, "refresh_now_min_interval_seconds = 1\nttl_seconds = 10\n")
    assert settings.ttl_seconds == 10
    assert settings.notices == (messages.withdrawn_refresh_now_interval(),)
    assert not hasattr(settings, "refresh_now_min_interval_seconds")


def test_endpoint_from_environment():
    env = {"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:9"}
    assert config.load(None, env).endpoint_url == "http://127.0.0.1:9"


def test_lambda_extension_variables():
    settings = config.from_lambda_environment(
        {
            "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": "2775",
            "PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE": "50",
            "PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL": "debug",
            "SECRETS_MANAGER_TTL": "60",
            "SECRETS_MANAGER_TIMEOUT_MILLIS": "1500",
        }
    )
    assert (settings.http_port, settings.cache_size, settings.ttl_seconds) == (2775, 50, 60)
    assert settings.max_conn == 3 and settings.backend_deadline_seconds == 1.5
    bypass = config.from_lambda_environment({"PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED": "FALSE"})
    assert bypass.ttl_seconds == 0
