"""The agent as a Lambda extension, against a fake Lambda Extensions API: registration,
serving while Lambda invokes, a clean exit on SHUTDOWN, and reported failures."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from secretsd.agent.lambda_extension import extension_name
from tests.support.server import launch_until_listening, stop_process
from tests.support.wait import wait_for

from .support import AgentProcess, agent_command

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = ROOT / "deploy" / "lambda" / "extension" / "secretsd-agent"
SESSION_TOKEN = "lambda-session-token"
IDENTIFIER = "0f4b9a2e-extension-id"


class FakeExtensionsApi:
    """Lambda's side: records every call, answers event/next from a queue of events."""

    def __init__(self, register_status: int = 200) -> None:
        self.register_status = register_status
        self.registers: list[tuple[dict[str, str], dict]] = []
        self.nexts: list[dict[str, str]] = []
        self.init_errors: list[tuple[dict[str, str], dict]] = []
        self.events: queue.Queue[dict] = queue.Queue()
        self.agent_port = 0
        self.listening_at_first_next: bool | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _body(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _reply(self, status: int, body: dict, headers: dict[str, str] | None = None):
                data = json.dumps(body).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                headers = dict(self.headers)
                if self.path == "/2020-01-01/extension/register":
                    fake.registers.append((headers, self._body()))
                    if fake.register_status != 200:
                        body = {"errorMessage": "no", "errorType": "Extension.Forbidden"}
                        self._reply(fake.register_status, body)
                        return
                    info = {"functionName": "f", "functionVersion": "$LATEST", "handler": "h"}
                    self._reply(200, info, {"Lambda-Extension-Identifier": IDENTIFIER})
                elif self.path == "/2020-01-01/extension/init/error":
                    fake.init_errors.append((headers, self._body()))
                    self._reply(202, {"status": "OK"})
                else:
                    self._reply(404, {})

            def do_GET(self) -> None:
                if self.path != "/2020-01-01/extension/event/next":
                    self._reply(404, {})
                    return
                if not fake.nexts:
                    fake.listening_at_first_next = fake.agent_listens()
                fake.nexts.append(dict(self.headers))
                self._reply(200, fake.events.get(timeout=60))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def agent_listens(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.agent_port), timeout=1):
                return True
        except OSError:
            return False

    def wait_for_nexts(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self.nexts) < count:
            assert time.monotonic() < deadline, f"{len(self.nexts)} event/next calls"
            time.sleep(0.01)

    def close(self) -> None:
        for _ in range(4):  # unblock any event/next still waiting
            self.events.put({"eventType": "SHUTDOWN", "shutdownReason": "spindown"})
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def lambda_api():
    fake = FakeExtensionsApi()
    yield fake
    fake.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def lambda_env(shared_server, fake: FakeExtensionsApi, **extra: str) -> dict[str, str]:
    fake.agent_port = free_port()
    env = dict(
        shared_server.env,
        AWS_LAMBDA_RUNTIME_API=fake.address,
        PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=str(fake.agent_port),
        AWS_SESSION_TOKEN=SESSION_TOKEN,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def test_extension_name():
    assert extension_name("/opt/extensions/secretsd-agent", {}) == "secretsd-agent"
    assert extension_name("/x/cli.py", {"SECRETSD_EXTENSION_NAME": "mine"}) == "mine"


def test_registers_serves_and_stops_on_shutdown(shared_server, lambda_api, sm, name):
    sm.create_secret(Name=name, SecretString="during-invoke")
    env = lambda_env(shared_server, lambda_api, SECRETSD_EXTENSION_NAME="secretsd-agent")
    lambda_api.events.put({"eventType": "INVOKE", "requestId": "r1", "deadlineMs": 0})
    process, url, output = launch_until_listening(agent_command(None), env, "agent")
    agent = AgentProcess(process, url, output)
    try:
        assert url == f"http://127.0.0.1:{lambda_api.agent_port}"
        [(headers, body)] = lambda_api.registers
        assert headers["Lambda-Extension-Name"] == "secretsd-agent"
        assert body == {"events": ["INVOKE", "SHUTDOWN"]}
        # The INVOKE was taken and the agent waits for the next event, serving meanwhile.
        lambda_api.wait_for_nexts(2)
        assert lambda_api.listening_at_first_next is True
        assert all(h["Lambda-Extension-Identifier"] == IDENTIFIER for h in lambda_api.nexts)
        status, answer = agent.get(f"/v1/{name}", token=SESSION_TOKEN)
        assert status == 200 and json.loads(answer)["SecretString"] == "during-invoke"
        lambda_api.events.put({"eventType": "SHUTDOWN", "shutdownReason": "spindown"})
        assert process.wait(5) == 0
    finally:
        stop_process(process)
    assert lambda_api.init_errors == []
    assert "listening on" in agent.log_text()


def test_lambda_variables_configure_the_agent(shared_server, lambda_api, tmp_path):
    env = lambda_env(shared_server, lambda_api)
    process = subprocess.Popen(
        agent_command(None),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert f"listening on http://127.0.0.1:{lambda_api.agent_port}" in line
        agent = AgentProcess(process, f"http://127.0.0.1:{lambda_api.agent_port}")
        # Without a wrapper, the name is the executable's file name.
        assert lambda_api.registers[0][0]["Lambda-Extension-Name"] == "cli.py"
        assert agent.get("/v1/nothing-here", token=SESSION_TOKEN)[0] == 400
        idle = [agent.connect() for _ in range(3)]  # the extension's default max_conn is 3
        try:
            # The agent counts a connection once it has accepted it, a moment after connect().
            wait_for(lambda: agent.get("/v1/x", token=SESSION_TOKEN)[0] == 429, timeout=10)
        finally:
            for sock in idle:
                sock.close()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    assert process.returncode == 0  # SIGTERM still stops it cleanly
    assert not (tmp_path / "logs").exists()  # the extension logs to stderr, not to a file


def test_refused_registration_is_reported_and_exits_1(shared_server):
    fake = FakeExtensionsApi(register_status=403)
    try:
        env = lambda_env(shared_server, fake)
        done = subprocess.run(
            agent_command(None), env=env, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 1
        assert "Could not register with the Lambda Extensions API" in done.stderr
        assert "403" in done.stderr
        [(headers, body)] = fake.init_errors
        assert headers["Lambda-Extension-Function-Error-Type"] == "Extension.RegistrationFailed"
        assert body["errorType"] == "Extension.RegistrationFailed"
        assert fake.nexts == [] and "listening on" not in done.stdout
    finally:
        fake.close()


def test_a_failed_start_after_registration_is_reported(shared_server, lambda_api):
    env = lambda_env(shared_server, lambda_api)
    for variable in ("AWS_SESSION_TOKEN", "AWS_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN"):
        env.pop(variable, None)
    done = subprocess.run(agent_command(None), env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "Could not read SSRF token" in done.stderr
    [(headers, body)] = lambda_api.init_errors
    assert headers["Lambda-Extension-Identifier"] == IDENTIFIER
    assert headers["Lambda-Extension-Function-Error-Type"] == "Extension.InitFailed"
    assert "Could not read SSRF token" in body["errorMessage"]


def test_layer_wrapper_registers_under_its_file_name(shared_server, lambda_api):
    env = lambda_env(shared_server, lambda_api, SECRETSD_PYTHON=sys.executable)
    process, _, _ = launch_until_listening([str(WRAPPER)], env, "agent")
    try:
        assert lambda_api.registers[0][0]["Lambda-Extension-Name"] == "secretsd-agent"
        lambda_api.wait_for_nexts(1)
        lambda_api.events.put({"eventType": "SHUTDOWN", "shutdownReason": "spindown"})
        assert process.wait(5) == 0
    finally:
        stop_process(process)
