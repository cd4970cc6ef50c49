"""``secretsd agent`` as a process: options, config errors, token errors, start and stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from secretsd.agent import messages

from .support import TOKEN, run_agent_to_exit, start_agent, write_config


def env_with_token(shared_server) -> dict[str, str]:
    return dict(shared_server.env, AWS_TOKEN=TOKEN)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('log_level = "loud"', messages.BAD_LOG_LEVEL),
        ("http_port = 80", messages.BAD_HTTP_PORT),
        ("ttl_seconds = 3601", messages.BAD_TTL),
        ("cache_size = 0", messages.BAD_CACHE_SIZE),
        ("ssrf_headers = []", messages.EMPTY_SSRF_HEADERS),
        ("ssrf_env_variables = []", messages.EMPTY_SSRF_ENV),
        ('path_prefix = "v1"', messages.BAD_PATH_PREFIX),
        ("max_conn = 1001", messages.BAD_MAX_CONN),
        ("colour = 1", "unknown field `colour`"),
    ],
)
def test_config_errors_exit_1_with_the_message(shared_server, tmp_path, line, message):
    config = tmp_path / "bad.toml"
    config.write_text(line + "\n")
    result = run_agent_to_exit(config, env_with_token(shared_server))
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_unknown_option(shared_server):
    result = run_agent_to_exit(None, env_with_token(shared_server), "--colour")
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["Unknown option --colour", messages.USAGE]


def test_config_without_argument(shared_server):
    result = run_agent_to_exit(None, env_with_token(shared_server), "--config")
    assert result.returncode == 1 and "Argument expected" in result.stderr


def test_help(shared_server):
    result = run_agent_to_exit(None, env_with_token(shared_server), "--help")
    assert result.returncode == 0 and messages.USAGE in result.stdout


def test_missing_config_file(shared_server, tmp_path):
    result = run_agent_to_exit(tmp_path / "none.toml", env_with_token(shared_server))
    assert result.returncode == 1 and "not found" in result.stderr


def test_no_token_exits_1(shared_server, tmp_path):
    env = {k: v for k, v in shared_server.env.items() if "TOKEN" not in k}
    config = write_config(tmp_path, 'ssrf_env_variables = ["SECRETSD_TEST_TOKEN"]\n')
    result = run_agent_to_exit(config, env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'Could not read SSRF token variable(s) ["SECRETSD_TEST_TOKEN"]: '
        "environment variable not found"
    )


def test_token_file_unreadable_exits_1(shared_server, tmp_path):
    env = dict(shared_server.env, AWS_TOKEN=f"file://{tmp_path}/missing")
    result = run_agent_to_exit(write_config(tmp_path), env)
    assert result.returncode == 1
    assert "Could not read SSRF token variable(s)" in result.stderr
    assert "No such file or directory (os error 2)" in result.stderr


def test_token_from_file(shared_server, tmp_path):
    token_file = tmp_path / "awssmatoken"
    token_file.write_text("file-token-value\n")
    os.chmod(token_file, 0o640)
    agent = start_agent(
        write_config(tmp_path), dict(shared_server.env), token=f"file://{token_file}"
    )
    try:
        assert agent.get("/v1/nothing", token="file-token-value")[0] == 400  # not 403
        assert agent.get("/v1/nothing", token=f"file://{token_file}")[0] == 403
    finally:
        agent.stop()


def test_bad_credentials_fail_at_start(shared_server, tmp_path):
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[secretsd]\naws_access_key_id = AKIAWRONGWRONGWRONG1\n"
        "aws_secret_access_key = wrongwrongwrongwrongwrongwrongwrongwrong\n"
    )
    env = dict(shared_server.env, AWS_SHARED_CREDENTIALS_FILE=str(credentials), AWS_TOKEN=TOKEN)
    result = run_agent_to_exit(write_config(tmp_path), env)
    assert result.returncode == 1
    assert "Could not validate the backend credentials" in result.stderr
    assert "wrongwrong" not in result.stderr


def test_a_missing_region_is_named_as_such(shared_server, tmp_path):
    env = {
        key: value
        for key, value in shared_server.env.items()
        if key not in ("AWS_REGION", "AWS_DEFAULT_REGION")
    }
    env.update(AWS_CONFIG_FILE=str(tmp_path / "no-config"), AWS_TOKEN=TOKEN)
    result = run_agent_to_exit(write_config(tmp_path), env)
    assert result.returncode == 1
    assert messages.NO_REGION in result.stderr
    assert "credentials" not in result.stderr


def test_validate_credentials_off_starts_anyway(shared_server, tmp_path):
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[secretsd]\naws_access_key_id = AKIAWRONGWRONGWRONG1\n"
        "aws_secret_access_key = wrongwrongwrongwrongwrongwrongwrongwrong\n"
    )
    env = dict(shared_server.env, AWS_SHARED_CREDENTIALS_FILE=str(credentials))
    agent = start_agent(write_config(tmp_path, "validate_credentials = false\n"), env)
    try:
        status, body = agent.get("/v1/anything")
        assert status == 403 and body.startswith(b'{"__type":"UnrecognizedClientException", ')
    finally:
        agent.stop()


def test_listening_line_and_clean_sigterm(shared_server, tmp_path):
    agent = start_agent(write_config(tmp_path), dict(shared_server.env))
    assert any(
        line.startswith("secretsd-agent/") and f"listening on {agent.url}" in line
        for line in agent.output
    )
    assert agent.url.startswith("http://127.0.0.1:")
    idle = agent.connect()
    try:
        assert agent.stop(signal.SIGTERM) == 0
    finally:
        idle.close()
    assert "Traceback" not in agent.log_text()


def test_port_in_use_exits_1(shared_server, tmp_path):
    first = start_agent(write_config(tmp_path / "a"), dict(shared_server.env))
    try:
        config = write_config(tmp_path / "b")
        config.write_text(f"http_port = {first.port}\nlog_to_file = false\n")
        result = run_agent_to_exit(config, env_with_token(shared_server))
        assert result.returncode == 1
        assert f"Could not bind to 127.0.0.1:{first.port}" in result.stderr
    finally:
        first.stop()


def test_log_to_file_writes_the_aws_agents_log_path(shared_server, tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text("http_port = 0\n")
    env = env_with_token(shared_server)
    process = subprocess.Popen(
        [sys.executable, "-m", "secretsd.cli", "agent", "--config", str(config)],
        cwd=tmp_path,
        env=dict(env, PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = process.stdout.readline()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    assert "listening on" in first_line
    log = (tmp_path / "logs" / "secrets_manager_agent.log").read_text()
    assert "listening on" in log


def test_credentials_from_environment_variables(shared_server, tmp_path, sm, name):
    import configparser

    parser = configparser.ConfigParser()
    parser.read(shared_server.credentials_file)
    profile = parser["secretsd"]
    env = {
        k: v
        for k, v in shared_server.env.items()
        if k not in ("AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE")
    }
    env.update(
        AWS_ACCESS_KEY_ID=profile["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=profile["aws_secret_access_key"],
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
    )
    sm.create_secret(Name=name, SecretString="from-env")
    agent = start_agent(write_config(tmp_path), env)
    try:
        status, body = agent.get(f"/v1/{name}")
        assert status == 200 and b"from-env" in body
    finally:
        agent.stop()
