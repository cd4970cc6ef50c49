"""The command line as an operator meets it: clear messages and exit codes, no tracebacks,
and a start that fails leaves nothing behind."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from secretsd import __version__
from tests.support.server import start_server

SECRETSD = [sys.executable, "-m", "secretsd.cli"]


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SECRETSD, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_no_command_is_an_error_with_the_usage():
    done = run()
    assert done.returncode == 2
    assert "usage: secretsd <command>" in done.stderr and done.stdout == ""


def test_version():
    done = run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"secretsd {__version__}"


def test_a_port_out_of_range_is_refused_by_the_parser(tmp_path):
    done = run("server", "--port", "99999", "--data-dir", str(tmp_path / "data"))
    assert done.returncode == 2
    assert "'99999' is not a port" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()


def test_a_port_in_use_is_named_and_nothing_is_created(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("server", "--port", str(port), "--data-dir", str(tmp_path / "data"))
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
    # No store, no master key, and no access key printed for a server that never ran.
    assert not (tmp_path / "data").exists()
    assert "AWS_SECRET_ACCESS_KEY" not in done.stdout


def test_in_json_format_every_line_is_json_and_the_new_key_stays_in_its_file(tmp_path):
    server = start_server(tmp_path / "data", "--log-format", "json", "--log-level", "debug")
    try:
        server.client().create_secret(Name="json/lines", SecretString="marker-value-json")
    finally:
        server.stop()
    lines = [line for line in server.output if line.strip()]
    records = [json.loads(line) for line in lines]  # each one parses
    listening = [r for r in records if r["message"].startswith("secretsd server listening on")]
    assert listening and listening[0]["url"] == server.endpoint_url
    assert any("credentials_file" in record for record in records)
    secret_key = server.session().get_credentials().secret_key
    assert not any(secret_key in line for line in lines)
