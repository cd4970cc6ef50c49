"""The Lambda extension's SSM Parameter Store route, live: a real agent in front of a moto
server standing in for SSM, driven over HTTP."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import boto3
import pytest
from botocore.config import Config

from secretsd.agent import config, messages, render
from secretsd.agent.query import QueryError, parse_parameters_route
from tests.support.server import stop_process

from .support import TOKEN, start_agent, write_config

MOTO_SERVER = os.path.join(os.path.dirname(sys.executable), "moto_server")  # the venv's
RUNNING = re.compile(r"Running on (http://\S+)")
ROUTE = "/systemsmanager/parameters/get"
SECURE_VALUE = "s3cr3t-parameter-value-7f1c"
GET_PARAMETER = "GetParameter"


def start_moto() -> tuple[subprocess.Popen, str]:
    """moto_server on an ephemeral port; its URL once it says where it runs."""
    command = [MOTO_SERVER, "-H", "127.0.0.1", "-p", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    found: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            match = RUNNING.search(line)
            if match and not ready.is_set():
                found.append(match.group(1))
                ready.set()
        process.stdout.close()  # type: ignore[union-attr]
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(30) or not found:
        process.kill()
        raise RuntimeError("moto_server did not start")
    return process, found[0]


@pytest.fixture(scope="module")
def moto_url():
    process, url = start_moto()
    yield url
    stop_process(process)


@pytest.fixture(scope="module")
def ssm(moto_url):
    return boto3.client(
        "ssm",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def agent_config(tmp_path_factory, moto_url: str, extra: str = ""):
    # Debug logging, so the check that no value reaches the log covers every line.
    text = f'ssm_endpoint_url = "{moto_url}"\nlog_level = "debug"\n' + extra
    return write_config(tmp_path_factory.mktemp("agent"), text)


@pytest.fixture(scope="module")
def agent(shared_server, tmp_path_factory, moto_url):
    process = start_agent(agent_config(tmp_path_factory, moto_url), shared_server.env)
    yield process
    process.stop()
    assert SECURE_VALUE not in process.log_text()


@pytest.fixture
def name() -> str:
    return f"/agent-test/{uuid.uuid4().hex[:12]}"


def get(agent, **query):
    return agent.get(f"{ROUTE}?{urlencode(query)}")


def calls(agent) -> float:
    return agent.metric("secretsd_agent_backend_calls_total", operation=GET_PARAMETER)


# -- unit: parsing and rendering -----------------------------------------------------------


def test_query_parsing():
    lookup = parse_parameters_route("name=%2Fa%2Fb&version=3&withDecryption=TRUE")
    assert lookup.selector == "/a/b:3" and lookup.with_decryption
    assert parse_parameters_route("name=x&label=prod").selector == "x:prod"
    assert parse_parameters_route("name=x&withDecryption=0").with_decryption is False
    for query, text in [
        ("", messages.MISSING_PARAMETER_NAME),
        ("name=", messages.MISSING_PARAMETER_NAME),
        ("name=x&version=1&label=a", messages.VERSION_AND_LABEL),
        ("name=x&version=abc", messages.INVALID_VERSION),
        ("name=x&withDecryption=yes", messages.INVALID_WITH_DECRYPTION),
        ("name=x&secretId=y", messages.unknown_parameter("secretId")),
    ]:
        with pytest.raises(QueryError) as error:
            parse_parameters_route(query)
        assert error.value.message == text


def test_last_modified_is_rendered_as_the_extension_does():
    utc = dt.UTC
    assert render.last_modified(dt.datetime(2022, 11, 16, 8, 22, 40, 362999, utc)) == (
        "2022-11-16T08:22:40.362Z"
    )
    assert render.last_modified(dt.datetime(2022, 11, 16, 8, 22, 40, 360000, utc)) == (
        "2022-11-16T08:22:40.36Z"
    )
    assert render.last_modified(dt.datetime(2022, 11, 16, 8, 22, 40, 0, utc)) == (
        "2022-11-16T08:22:40Z"
    )
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert render.last_modified(dt.datetime(2022, 11, 16, 10, 0, 0, 5000, plus_two)) == (
        "2022-11-16T08:00:00.005Z"
    )
    assert render.last_modified(None) is None


def test_ssm_settings():
    assert config.load(None, {"AWS_ENDPOINT_URL_SSM": "http://a:1"}).ssm_endpoint_url == (
        "http://a:1"
    )
    assert config.load(None, {"AWS_ENDPOINT_URL": "http://b:2"}).ssm_endpoint_url == "http://b:2"
    assert config.load(None, {}).ssm_endpoint_url is None
    with pytest.raises(config.ConfigError):
        config.from_mapping({"ssm_endpoint_url": "ftp://x"}, {})
    with pytest.raises(config.ConfigError):
        config.from_mapping({"ssm_ttl_seconds": 3601}, {})
    lam = config.from_lambda_environment(
        {
            "SSM_PARAMETER_STORE_TTL": "60",
            "SSM_PARAMETER_STORE_TIMEOUT_MILLIS": "1500",
            "SECRETS_MANAGER_TIMEOUT_MILLIS": "300",
        }
    )
    assert (lam.ssm_ttl_seconds, lam.ssm_deadline_seconds) == (60, 1.5)
    assert lam.backend_deadline_seconds == 0.3
    # Separate there: the Secrets Manager timeout alone leaves SSM at the default.
    alone = config.from_lambda_environment({"SECRETS_MANAGER_TIMEOUT_MILLIS": "300"})
    assert alone.ssm_deadline_seconds == 20.0
    bypass = config.from_lambda_environment({"PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE": "0"})
    assert bypass.ssm_ttl_seconds == 0


# -- live ----------------------------------------------------------------------------------


def test_string_parameter(agent, ssm, name):
    ssm.put_parameter(Name=name, Value="plain-value", Type="String")
    status, body = get(agent, name=name)
    assert status == 200
    assert body.startswith(b'{"Parameter":{"ARN":') and body.endswith(b',"ResultMetadata":{}}')
    document = json.loads(body)
    parameter = document["Parameter"]
    assert list(parameter) == [
        "ARN",
        "DataType",
        "LastModifiedDate",
        "Name",
        "Selector",
        "SourceResult",
        "Type",
        "Value",
        "Version",
    ]
    assert parameter["Name"] == name and parameter["Value"] == "plain-value"
    assert parameter["Type"] == "String" and parameter["Version"] == 1
    assert parameter["ARN"].endswith(f"parameter{name}")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z", parameter["LastModifiedDate"]
    )
    assert parameter["SourceResult"] is None
    assert document["ResultMetadata"] == {}


def test_secure_string_needs_with_decryption(agent, ssm, name):
    ssm.put_parameter(Name=name, Value=SECURE_VALUE, Type="SecureString")
    status, body = get(agent, name=name, withDecryption="true")
    assert status == 200
    assert json.loads(body)["Parameter"]["Value"] == SECURE_VALUE
    status, body = get(agent, name=name)  # another key: not the decrypted entry
    assert status == 200
    encrypted = json.loads(body)["Parameter"]
    assert encrypted["Type"] == "SecureString" and encrypted["Value"] != SECURE_VALUE


def test_version_and_label(agent, ssm, name):
    ssm.put_parameter(Name=name, Value="one", Type="String")
    ssm.put_parameter(Name=name, Value="two", Type="String", Overwrite=True)
    ssm.label_parameter_version(Name=name, ParameterVersion=1, Labels=["stable"])
    latest = json.loads(get(agent, name=name)[1])["Parameter"]
    assert (latest["Value"], latest["Version"]) == ("two", 2)
    first = json.loads(get(agent, name=name, version="1")[1])["Parameter"]
    assert (first["Value"], first["Version"]) == ("one", 1)
    labelled = json.loads(get(agent, name=name, label="stable")[1])["Parameter"]
    assert (labelled["Value"], labelled["Version"]) == ("one", 1)


def test_not_found_renders_as_the_secret_route_does(agent, name):
    status, body = get(agent, name=name)
    assert status == 400
    assert body.startswith(b'{"__type":"ParameterNotFound", "message":')
    status, body = get(agent, name=name)  # an error is not cached as an answer
    assert status == 400


def test_missing_version_is_the_backend_error(agent, ssm, name):
    ssm.put_parameter(Name=name, Value="one", Type="String")
    status, body = get(agent, name=name, version="9")
    assert status == 400
    assert json.loads(body)["__type"] == "ParameterVersionNotFound"


def test_request_errors(agent):
    assert get(agent, name="x", version="1", label="a") == (
        400,
        messages.VERSION_AND_LABEL.encode(),
    )
    assert get(agent, name="x", refreshNow="true") == (
        400,
        messages.unknown_parameter("refreshNow").encode(),
    )
    assert agent.get(ROUTE) == (400, messages.MISSING_PARAMETER_NAME.encode())
    assert agent.get(f"{ROUTE}?name=") == (400, messages.MISSING_PARAMETER_NAME.encode())


def test_checks_come_first(agent):
    assert agent.get(f"{ROUTE}?name=x", token=None) == (403, b"Bad Token")
    assert agent.get(f"{ROUTE}?name=x", token="wrong") == (403, b"Bad Token")
    assert agent.get(f"{ROUTE}?name=x", method="POST") == (405, b"Not allowed")
    forwarded = {"X-Forwarded-For": "10.0.0.1"}
    assert agent.get(f"{ROUTE}?name=x", headers=forwarded) == (400, b"Forwarded")
    # Token checked before the query: a bad query without a token is still 403.
    assert agent.get(f"{ROUTE}?bogus=1", token=None) == (403, b"Bad Token")
    # The second SSRF header works here too.
    vault = {"X-Vault-Token": TOKEN}
    status, body = agent.get(f"{ROUTE}?name=/not/there", headers=vault, token=None)
    assert status == 400 and b"ParameterNotFound" in body


def test_cache_hit_does_not_reach_ssm(agent, ssm, name):
    ssm.put_parameter(Name=name, Value="cached", Type="String")
    before = calls(agent)
    first = get(agent, name=name)
    assert calls(agent) == before + 1
    ssm.put_parameter(Name=name, Value="changed", Type="String", Overwrite=True)
    assert get(agent, name=name) == first  # within the TTL: the cached response
    assert calls(agent) == before + 1


def test_concurrent_misses_make_one_call(agent, ssm, name):
    ssm.put_parameter(Name=name, Value="together", Type="String")
    before = calls(agent)
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: get(agent, name=name), range(40)))
    assert {status for status, _ in answers} == {200}
    assert len({body for _, body in answers}) == 1
    assert calls(agent) == before + 1


def test_ttl_zero_reaches_ssm_every_time(shared_server, tmp_path_factory, moto_url, ssm, name):
    config = agent_config(tmp_path_factory, moto_url, "ssm_ttl_seconds = 0\n")
    agent = start_agent(config, shared_server.env)
    try:
        ssm.put_parameter(Name=name, Value="v1", Type="String")
        before = calls(agent)
        assert json.loads(get(agent, name=name)[1])["Parameter"]["Value"] == "v1"
        ssm.put_parameter(Name=name, Value="v2", Type="String", Overwrite=True)
        assert json.loads(get(agent, name=name)[1])["Parameter"]["Value"] == "v2"
        assert calls(agent) == before + 2
    finally:
        agent.stop()


def test_unreachable_ssm_is_an_error_not_a_crash(shared_server, tmp_path_factory):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    config = agent_config(tmp_path_factory, dead, "backend_max_attempts = 1\n")
    agent = start_agent(config, shared_server.env)
    try:
        status, body = get(agent, name="/anything")
        assert status == 502
        assert json.loads(body) == {"__type": "ConnectionError", "message": "Read Error"}
        assert agent.alive() and agent.get("/ping") == (200, b"healthy")
    finally:
        agent.stop()


def test_stale_value_is_served_when_ssm_fails(shared_server, tmp_path_factory, name):
    moto, url = start_moto()
    client = boto3.client(
        "ssm",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    config = agent_config(tmp_path_factory, url, "ssm_ttl_seconds = 1\nbackend_max_attempts = 1\n")
    agent = start_agent(config, shared_server.env)
    try:
        client.put_parameter(Name=name, Value="kept", Type="String")
        first = get(agent, name=name)
        assert first[0] == 200
        stop_process(moto)
        time.sleep(1.2)
        assert get(agent, name=name) == first
        assert agent.metric("secretsd_agent_parameter_cache_stale_served_total") == 1
    finally:
        agent.stop()
        stop_process(moto)
