"""Fixtures shared by every test directory: a live secretsd server, database gates."""

from __future__ import annotations

import os
import socket

import pytest
from hypothesis import settings

from tests.support.server import ServerProcess, start_server

REQUIRE_DATABASES = os.environ.get("SECRETSD_REQUIRE_DATABASES") == "1"

# The properties check what code does, not how fast: on a loaded 2-core machine hypothesis's
# per-example deadline (200 ms) fails them at random. Speed is measured in bench/.
settings.register_profile("secretsd", deadline=None)
settings.load_profile("secretsd")


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def require_database(name: str, port: int) -> None:
    """Skip when the database is down, unless CI said databases are required."""
    if _reachable(port):
        return
    if REQUIRE_DATABASES:
        pytest.fail(f"{name} on 127.0.0.1:{port} is required (SECRETSD_REQUIRE_DATABASES=1)")
    pytest.skip(f"{name} on 127.0.0.1:{port} is not running")


@pytest.fixture
def mariadb_available() -> None:
    require_database("MariaDB", 3306)


@pytest.fixture
def postgres_available() -> None:
    require_database("PostgreSQL", 5432)


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    """One server for the whole session: tests must use unique secret names."""
    server = start_server(tmp_path_factory.mktemp("shared-server"))
    yield server
    server.stop()


@pytest.fixture
def server(tmp_path) -> ServerProcess:
    """A fresh server with its own data directory."""
    proc = start_server(tmp_path / "server")
    yield proc
    proc.stop()


@pytest.fixture
def sm(shared_server: ServerProcess):
    """A boto3 secretsmanager client for the shared server."""
    return shared_server.client()
