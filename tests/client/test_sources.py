"""SecretsClient against a live server and a live agent in front of it: the agent first,
then the API, then the environment; a definite answer is never masked by the next source."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from secretsd.client import (
    AgentRefused,
    RequestRefused,
    SecretNotFound,
    SecretsClient,
    SourceUnavailable,
    variable_name,
)
from tests.agent.support import TOKEN, start_agent, write_config

VALUE = "s3cr3t-'\";%$-value"


@pytest.fixture
def via_agent(agent, closed_url, closing):
    """Clients whose only working source is the agent (the API is a closed port)."""

    def make(**kwargs) -> SecretsClient:
        kwargs.setdefault("token", TOKEN)
        kwargs.setdefault("env", {})
        return closing(SecretsClient(agent_url=agent.url, endpoint_url=closed_url, **kwargs))

    return make


@pytest.fixture
def via_api(shared_server, closing):
    """Clients that reach the API of the shared server, and the agent at ``agent_url``."""

    def make(agent_url: str, **kwargs) -> SecretsClient:
        kwargs.setdefault("env", {})
        kwargs.setdefault("token", TOKEN)
        client = SecretsClient(
            agent_url=agent_url,
            endpoint_url=shared_server.endpoint_url,
            session=shared_server.session(),
            region_name="us-east-1",
            **kwargs,
        )
        return closing(client)

    return make


@pytest.fixture
def nowhere(closed_url, closing):
    """Clients for which the API is down, and the agent too unless ``agent_url`` is given."""

    def make(env: dict[str, str], **kwargs) -> SecretsClient:
        kwargs.setdefault("agent_url", closed_url)
        client = SecretsClient(endpoint_url=closed_url, env=env, **kwargs)
        return closing(client)

    return make


def test_get_through_the_agent(sm, via_agent, name):
    version = sm.create_secret(Name=name, SecretString=VALUE)["VersionId"]
    client = via_agent()
    secret = client.get(name)
    assert secret.reveal() == VALUE
    assert secret.source == "agent"
    assert secret.version_id == version
    assert client.get(name).reveal() == VALUE  # the same keep-alive connection
    client.close()
    assert client.get(name).reveal() == VALUE  # a new one after close()


def test_get_binary_stage_and_version_through_the_agent(sm, via_agent, name):
    first = sm.create_secret(Name=name, SecretBinary=b"\x00\xffbinary")["VersionId"]
    sm.put_secret_value(SecretId=name, SecretBinary=b"second")
    client = via_agent()
    assert client.get(name).reveal() == b"second"
    assert client.get(name, "AWSPREVIOUS").reveal() == b"\x00\xffbinary"
    secret = client.get(name, version_id=first)
    assert secret.reveal() == b"\x00\xffbinary" and secret.version_id == first


def test_refresh_bypasses_the_agent_cache(sm, via_agent, name):
    sm.create_secret(Name=name, SecretString="one")
    client = via_agent()
    assert client.get(name).reveal() == "one"
    sm.put_secret_value(SecretId=name, SecretString="two")
    assert client.get(name).reveal() == "one"  # cached for ttl_seconds
    assert client.get(name, refresh=True).reveal() == "two"
    assert client.get(name).reveal() == "two"


def test_token_and_agent_url_from_the_environment(sm, agent, closed_url, closing, name, tmp_path):
    sm.create_secret(Name=name, SecretString=VALUE)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    env = {"AWS_TOKEN": f"file://{token_file}", "SECRETSD_AGENT_URL": agent.url}
    client = closing(SecretsClient(endpoint_url=closed_url, env=env))
    secret = client.get(name)
    assert (secret.reveal(), secret.source) == (VALUE, "agent")
    env["AWS_TOKEN"] = TOKEN
    assert closing(SecretsClient(endpoint_url=closed_url, env=env)).get(name).source == "agent"


def test_token_argument_reads_a_file_url(sm, agent, closed_url, closing, name, tmp_path):
    sm.create_secret(Name=name, SecretString=VALUE)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    client = closing(
        SecretsClient(
            agent_url=agent.url, token=f"file://{token_file}", endpoint_url=closed_url, env={}
        )
    )
    assert client.get(name).source == "agent"


def test_a_wrong_token_is_raised_not_hidden(sm, agent, via_api, name, tmp_path):
    sm.create_secret(Name=name, SecretString=VALUE)
    client = via_api(agent.url, token="wrong-token")
    with pytest.raises(AgentRefused) as caught:
        client.get(name)
    assert caught.value.url == agent.url
    assert "403" in caught.value.reason
    assert "wrong-token" not in str(caught.value)
    assert client.usage().sources["api"].requests == 0  # no silent detour
    unreadable = via_api(agent.url, token=f"file://{tmp_path / 'no-such-file'}")
    with pytest.raises(AgentRefused) as caught:
        unreadable.get(name)
    assert caught.value.reason == "token file unreadable: FileNotFoundError"


def test_a_wrong_token_falls_back_only_when_asked_and_says_so_once(
    sm, agent, via_api, name, caplog
):
    sm.create_secret(Name=name, SecretString=VALUE)
    client = via_api(agent.url, token="wrong-token", fall_back_when_refused=True)
    with caplog.at_level(logging.WARNING, logger="secretsd.client"):
        for _ in range(3):
            secret = client.get(name)
            assert (secret.reveal(), secret.source) == (VALUE, "api")
    warnings = [r for r in caplog.records if r.name == "secretsd.client"]
    assert len(warnings) == 1 and "refused this client" in warnings[0].getMessage()
    assert "wrong-token" not in caplog.text and VALUE not in caplog.text
    report = client.health()
    assert (report.agent_available, report.agent_status) == (False, "refusing")
    assert "403" in report.agent_problem
    assert report.usage.fallback_rate == 1


def test_falls_back_to_the_api_when_the_agent_is_down(sm, via_api, closed_url, name):
    sm.create_secret(Name=name, SecretString=VALUE)
    client = via_api(closed_url)
    secret = client.get(name)
    assert (secret.reveal(), secret.source) == (VALUE, "api")
    assert client.get(name, "AWSCURRENT").version_id == secret.version_id


def test_falls_back_to_the_environment_when_agent_and_api_are_down(nowhere, name):
    env = {variable_name(name): VALUE, "AWS_TOKEN": TOKEN, "OTHER": "other-value"}
    secret = nowhere(env).get(name)
    assert (secret.reveal(), secret.source) == (VALUE, "environment")
    assert nowhere(env, env_names={name: "OTHER"}).get(name).reveal() == "other-value"
    # One variable holds one value: it is AWSCURRENT and nothing else.
    with pytest.raises(SourceUnavailable) as caught:
        nowhere(env).get(name, "AWSPENDING")
    assert caught.value.reasons["environment"] == "holds AWSCURRENT only"


def test_all_sources_down_lists_each_reason_and_no_value(nowhere, name):
    env = {"AWS_TOKEN": TOKEN, variable_name("another-secret"): VALUE}
    with pytest.raises(SourceUnavailable) as caught:
        nowhere(env).get(name)
    reasons = caught.value.reasons
    assert list(reasons) == ["agent", "api", "environment"]
    assert reasons["agent"] == "connection failed: Connection refused"
    assert reasons["environment"] == f"{variable_name(name)} is not set"
    assert VALUE not in str(caught.value) and TOKEN not in str(caught.value)


def test_not_found_from_the_agent_is_not_masked(via_agent, name):
    client = via_agent(env={variable_name(name): VALUE})
    with pytest.raises(SecretNotFound) as caught:
        client.get(name)
    assert caught.value.source == "agent" and caught.value.secret_id == name


def test_not_found_from_the_api_is_not_masked(via_api, closed_url, name):
    client = via_api(closed_url, env={variable_name(name): VALUE})
    with pytest.raises(SecretNotFound) as caught:
        client.get(name)
    assert caught.value.source == "api"


def test_a_stage_without_a_version_is_not_found(sm, via_agent, name):
    sm.create_secret(Name=name, SecretString=VALUE)
    with pytest.raises(SecretNotFound):
        via_agent().get(name, "AWSPENDING")


def test_other_definite_answers_are_raised(sm, via_agent, via_api, closed_url, name):
    sm.create_secret(Name=name, SecretString=VALUE)
    sm.delete_secret(SecretId=name)  # marked for deletion: InvalidRequestException
    for client in (via_agent(), via_api(closed_url)):
        with pytest.raises(RequestRefused) as caught:
            client.get(name, refresh=True)
        assert caught.value.code == "InvalidRequestException"
        assert VALUE not in str(caught.value)


def test_json_secret_through_the_agent(sm, via_agent, name):
    document = {"username": "app", "password": VALUE}
    sm.create_secret(Name=name, SecretString=json.dumps(document))
    assert via_agent().get(name).json() == document


def test_a_connection_closed_by_the_agent_is_replaced(
    shared_server, sm, closed_url, closing, name, tmp_path
):
    """An agent restart (or its 61 s connection limit) closes the client's keep-alive
    connection; the next get opens a new one instead of counting the agent as down."""
    sm.create_secret(Name=name, SecretString=VALUE)
    first = start_agent(write_config(tmp_path / "first"), shared_server.env)
    port = first.port
    client = closing(
        SecretsClient(agent_url=first.url, token=TOKEN, endpoint_url=closed_url, env={})
    )
    try:
        assert client.get(name).source == "agent"
    finally:
        first.stop()
    config = tmp_path / "second.toml"
    config.write_text(f"http_port = {port}\nlog_to_file = false\n")
    second = start_agent(config, shared_server.env)
    try:
        assert client.get(name).source == "agent"
    finally:
        second.stop()


def test_threads_share_a_client(sm, via_agent, name):
    sm.create_secret(Name=name, SecretString=VALUE)
    client = via_agent()
    results: list[str] = []

    def read() -> None:
        results.extend(client.get(name).reveal() for _ in range(20))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [VALUE] * 160


def test_an_agent_whose_backend_is_down_passes_the_request_on(
    shared_server, sm, via_api, nowhere, closed_url, name, tmp_path
):
    """The agent is up but cannot reach Secrets Manager (5xx): the API answers instead."""
    sm.create_secret(Name=name, SecretString=VALUE)
    settings = (
        f'endpoint_url = "{closed_url}"\nvalidate_credentials = false\n'
        "backend_max_attempts = 1\nbackend_connect_timeout_seconds = 1\n"
    )
    agent = start_agent(write_config(tmp_path / "agent", settings), shared_server.env)
    try:
        client = via_api(agent.url)
        secret = client.get(name)
        assert (secret.reveal(), secret.source) == (VALUE, "api")
        report = client.health()
        assert (report.agent_available, report.agent_status) == (True, "backend_failing")
        assert report.agent_problem.startswith("its backend answered 50")
        with pytest.raises(SourceUnavailable) as caught:
            nowhere({"AWS_TOKEN": TOKEN}, agent_url=agent.url).get(name)
        assert caught.value.reasons["agent"].startswith("answered 50")
    finally:
        agent.stop()


def test_environment_fields_map_to_variables(nowhere, name):
    fields = {"host": "DB_HOST", "username": "DB_USERNAME", "password": "DB_PASSWORD"}
    env = {"DB_HOST": "db.internal", "DB_USERNAME": "app", "DB_PASSWORD": VALUE}
    secret = nowhere(env, env_names={name: fields}).get(name)
    assert secret.source == "environment"
    assert secret.json() == {"host": "db.internal", "username": "app", "password": VALUE}
    with pytest.raises(SourceUnavailable) as caught:
        nowhere({"DB_HOST": "db.internal"}, env_names={name: fields}).get(name)
    assert caught.value.reasons["environment"] == "DB_USERNAME, DB_PASSWORD not set"
    with pytest.raises(ValueError):
        nowhere(env, env_names={name: {}})


@pytest.mark.parametrize("share", [0.0, 0.25, 0.5, 1.0])
def test_agent_share_sends_that_fraction_through_the_agent(sm, agent, via_api, name, share):
    sm.create_secret(Name=name, SecretString=VALUE)
    client = via_api(agent.url, agent_share=share)
    sources = [client.get(name).source for _ in range(40)]
    assert sources.count("agent") == 40 * share
    assert sources.count("api") == 40 * (1 - share)
    usage = client.usage()
    assert usage.routed_past_agent == 40 * (1 - share)
    assert usage.sources["agent"].requests == 40 * share
    assert usage.sources["agent"].passed_on == 0  # routing past it is not a fallback
    assert usage.to_dict()["routed_past_agent"] == 40 * (1 - share)


def test_agent_share_out_of_range_is_refused():
    with pytest.raises(ValueError):
        SecretsClient(env={}, agent_share=1.5)
