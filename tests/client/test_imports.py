"""Importing the client loads only what an application needs: `pip install secretsd` brings
no database driver, server library or rotation code, so none may be imported at start."""

from __future__ import annotations

import json
import subprocess
import sys

# Top-level names of what only the server, the agent or a database helper needs.
NOT_LOADED = (
    "pymysql",
    "psycopg",
    "psycopg_pool",
    "uvicorn",
    "uvloop",
    "prometheus_client",
    "cryptography",
    "secretsd.rotation",
    "secretsd.model",
    "secretsd.store",
    "secretsd.service",
    "secretsd.api",
    "secretsd.server",
    "secretsd.agent",
)


def loaded_by(statement: str) -> list[str]:
    # A fresh interpreter: this one has imported half the project by now.
    program = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(result.stdout)


def test_importing_the_client_loads_no_driver_server_or_rotation():
    modules = loaded_by("import secretsd.client")
    assert "secretsd.client" in modules
    loaded = [m for m in modules if any(m == n or m.startswith(n + ".") for n in NOT_LOADED)]
    assert loaded == []


def test_the_check_sees_a_driver_when_one_is_loaded():
    modules = loaded_by("import secretsd.client, pymysql")
    assert "pymysql" in modules
