"""Agent fixtures: a live agent in front of the session's live secretsd server."""

from __future__ import annotations

import uuid

import pytest

from tests.rotation.functions.conftest import mysql_users  # noqa: F401

from .support import AgentProcess, start_agent, write_config


@pytest.fixture(scope="module")
def agent(shared_server, tmp_path_factory) -> AgentProcess:
    config = write_config(tmp_path_factory.mktemp("agent"), "ttl_seconds = 300\n")
    process = start_agent(config, shared_server.env)
    yield process
    process.stop()


@pytest.fixture
def name() -> str:
    return f"agent-test/{uuid.uuid4().hex[:12]}"
