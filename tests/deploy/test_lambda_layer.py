"""The self-contained agent layer, run where Lambda would run it and no Python is.

The layer (``make layer``) is unpacked into /opt of a bare Debian bullseye root (glibc 2.31,
older than any runtime we target) and its extension is started there with ``chroot``, as
Lambda starts /opt/extensions/*: against a fake Lambda Extensions API and the shared secretsd
server, both outside the root on 127.0.0.1 (a chroot keeps the host's network).
"""

from __future__ import annotations

import configparser
import contextlib
import http.client
import json
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest

from tests.agent.test_lambda_extension import FakeExtensionsApi, free_port
from tests.support.server import launch_until_listening, stop_process

from .conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy" / "lambda"))
import build_layer  # noqa: E402

SESSION_TOKEN = "lambda-session-token-for-the-layer"
TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"


@pytest.fixture(scope="module")
def layer() -> Path:
    try:
        build_layer.check_host()
    except build_layer.Unavailable as exc:
        unavailable(f"cannot run the layer in a Debian root here: {exc}")
    path = build_layer.cached_layer(build_layer.DEFAULT_CACHE)
    if not path.exists():
        unavailable(f"no agent layer built for these sources: run `make layer` ({path.name})")
    return path


@pytest.fixture(scope="module")
def lambda_root(layer: Path):
    """A copy of the bare bullseye root with the layer in /opt, /proc mounted as on Lambda."""
    base = build_layer.DEFAULT_CACHE / "roots" / f"{build_layer.SUITE}-minbase-x86_64"
    if not base.exists():
        unavailable(f"no bullseye root in the cache: run `make layer` ({base})")
    root = build_layer.DEFAULT_CACHE / "roots" / f"test-{os.getpid()}"
    build_layer.remove_root(root)
    build_layer.copy_root(base, root)
    try:
        build_layer.unpack(layer, root / "opt")
        with build_layer.proc_mounted(root):
            yield root
    finally:
        build_layer.remove_root(root)


def in_root(root: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["chroot", str(root), "/bin/sh", "-c", command],
        capture_output=True,
        text=True,
        env=build_layer.chroot_env(),
        timeout=60,
    )


def test_the_root_is_older_than_the_targets_and_has_no_python(lambda_root):
    glibc = in_root(lambda_root, "ldd --version").stdout.splitlines()[0]
    assert glibc.endswith(" 2.31"), glibc
    found = in_root(lambda_root, "ls /usr/bin /usr/local/bin /bin | grep -i python")
    assert found.stdout == ""
    assert in_root(lambda_root, "command -v python3").returncode != 0


def test_layer_layout(layer):
    with zipfile.ZipFile(layer) as zf:
        names = set(zf.namelist())
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
    assert build_layer.EXTENSION in names
    assert modes[build_layer.EXTENSION] & 0o111
    program = f"{build_layer.PROGRAM_DIR}/secretsd-agent"
    assert modes[program] & 0o111
    # The server's modules stay out: the agent speaks the wire protocol only.
    assert not [n for n in names if "secretsd/server" in n or "secretsd/store" in n]


def _credentials_in_root(shared_server, root: Path) -> str:
    """The server's credentials as a file inside the root; its path there."""
    parser = configparser.ConfigParser()
    parser.read(shared_server.credentials_file)
    target = root / "tmp" / "credentials"
    with target.open("w") as handle:
        parser.write(handle)
    return "/tmp/credentials"


def test_extension_registers_serves_and_exits_on_shutdown(shared_server, sm, lambda_root):
    name = f"layer-test/{uuid.uuid4().hex[:12]}"
    sm.create_secret(Name=name, SecretString="from-the-layer")
    fake = FakeExtensionsApi()
    fake.agent_port = free_port()
    env = {
        **build_layer.chroot_env(),
        "AWS_LAMBDA_RUNTIME_API": fake.address,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",  # Lambda sets both
        "AWS_SHARED_CREDENTIALS_FILE": _credentials_in_root(shared_server, lambda_root),
        "AWS_PROFILE": "secretsd",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": shared_server.endpoint_url,
        "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(fake.agent_port),
    }
    fake.events.put({"eventType": "INVOKE", "requestId": "r1", "deadlineMs": 0})
    command = ["chroot", str(lambda_root), "/opt/extensions/secretsd-agent"]
    process, url, output = launch_until_listening(command, env, "layer agent", timeout=60)
    try:
        assert url == f"http://127.0.0.1:{fake.agent_port}"
        [(headers, body)] = fake.registers
        assert headers["Lambda-Extension-Name"] == "secretsd-agent"
        assert body == {"events": ["INVOKE", "SHUTDOWN"]}
        fake.wait_for_nexts(2)
        assert fake.listening_at_first_next is True
        connection = http.client.HTTPConnection("127.0.0.1", fake.agent_port, timeout=30)
        with contextlib.closing(connection):
            connection.request("GET", "/ping")
            ping = connection.getresponse()
            ping.read()
            assert ping.status == 200
            connection.request("GET", f"/secretsmanager/get?secretId={name}")
            denied = connection.getresponse()
            denied.read()
            assert denied.status == 403
            connection.request(
                "GET", f"/secretsmanager/get?secretId={name}", headers={TOKEN_HEADER: SESSION_TOKEN}
            )
            answer = connection.getresponse()
            payload = answer.read()
        assert answer.status == 200, payload
        assert json.loads(payload)["SecretString"] == "from-the-layer"

        fake.events.put({"eventType": "SHUTDOWN", "shutdownReason": "spindown"})
        assert process.wait(10) == 0
    finally:
        stop_process(process)
        fake.close()
    assert fake.init_errors == []
    assert "listening on" in "".join(output)
