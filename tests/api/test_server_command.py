"""The command line as an operator meets it: clear messages and exit codes, no tracebacks,
and a start that fails leaves nothing behind."""

from __future__ import annotations

import socket
import subprocess
import sys

from secretsd import __version__

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
