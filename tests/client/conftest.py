"""Client fixtures: a live agent in front of the session's live server, database users."""

from __future__ import annotations

import socket
import uuid

import pytest

from tests.agent.support import AgentProcess, start_agent, write_config
from tests.rotation.functions.conftest import mysql_users, pg_roles  # noqa: F401


@pytest.fixture(scope="module")
def agent(shared_server, tmp_path_factory) -> AgentProcess:
    settings = "ttl_seconds = 300\n"
    config = write_config(tmp_path_factory.mktemp("client-agent"), settings)
    process = start_agent(config, shared_server.env)
    yield process
    process.stop()


@pytest.fixture
def name() -> str:
    return f"client-test/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def closed_url() -> str:
    """An http URL on a local port nothing listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def closing():
    """Registers clients to be closed after the test: an open keep-alive connection left
    to the garbage collector is a ResourceWarning, an error in this suite."""
    opened = []

    def keep(client):
        opened.append(client)
        return client

    yield keep
    for client in opened:
        client.close()
