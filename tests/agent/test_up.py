"""``secretsd up``: server + agent, a private token file, a printout that works as printed."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import threading

import boto3


class Up:
    """A running ``secretsd up``: its stdout lines as they come, its stderr, its exit."""

    def __init__(self, data_dir, *extra: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "secretsd.cli", "up", "--data-dir", str(data_dir)]
            + ["--port", "0", "--agent-port", "0", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self.stderr: list[str] = []
        self.ready = threading.Event()
        self.readers = [
            threading.Thread(target=self._pump, daemon=True),
            threading.Thread(target=lambda: self.stderr.extend(self.process.stderr), daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            if "agent listening on" in line:
                self.ready.set()
        self.ready.set()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(30)
        for reader in self.readers:
            reader.join(10)
        self.process.stdout.close()
        self.process.stderr.close()
        return code


def exports_of(text: str) -> dict[str, str]:
    exports = {}
    for line in text.splitlines():
        if line.strip().startswith("export "):
            for word in shlex.split(line.strip()[len("export ") :]):
                key, _, value = word.partition("=")
                exports[key] = value
    return exports


def client_of(exports: dict[str, str]):
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = exports["AWS_SHARED_CREDENTIALS_FILE"]
    try:
        session = boto3.session.Session(
            profile_name=exports["AWS_PROFILE"], region_name=exports["AWS_DEFAULT_REGION"]
        )
        return session.client(
            "secretsmanager", endpoint_url=exports["AWS_ENDPOINT_URL_SECRETS_MANAGER"]
        )
    finally:
        del os.environ["AWS_SHARED_CREDENTIALS_FILE"]


def test_up_runs_server_and_agent_and_stops_cleanly(tmp_path):
    data_dir = tmp_path / "data"
    up = Up(data_dir)
    lines, stderr, ready = up.lines, up.stderr, up.ready
    try:
        assert ready.wait(60), "".join(lines)
        text = "".join(lines)
        agent_url = re.search(r"agent listening on (http://\S+)", text).group(1)
        exports = exports_of(text)
        token_file = data_dir / "agent-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert exports["AWS_TOKEN"] == f"file://{token_file}"
        assert "aws_secret_access_key" not in text.lower()

        sm = client_of(exports)
        sm.create_secret(Name="db/app", SecretString='{"password":"up"}')

        # The curl command exactly as printed (two lines joined by a backslash).
        printed = text.splitlines()
        at = next(i for i, line in enumerate(printed) if "curl -H" in line)
        command = printed[at] + "\n" + printed[at + 1]
        assert agent_url in command
        result = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=30, check=True
        )
        assert json.loads(json.loads(result.stdout)["SecretString"]) == {"password": "up"}
    finally:
        code = up.stop()
    assert code == 0, "".join(stderr)
    assert "Traceback" not in "".join(stderr)


def test_up_passes_the_server_options_on(tmp_path):
    # A function only the rotation config names, and the JSON log format: both reach the server.
    config = tmp_path / "rotation.toml"
    config.write_text('[functions.widget]\ncommand = ["/bin/true"]\n')
    up = Up(tmp_path / "data", "--rotation-config", str(config), "--log-format", "json")
    try:
        assert up.ready.wait(60), "".join(up.lines)
        sm = client_of(exports_of("".join(up.lines)))
        sm.create_secret(Name="widget/key", SecretString="v1")
        rotation = {"AutomaticallyAfterDays": 30}
        sm.rotate_secret(
            SecretId="widget/key",
            RotationLambdaARN="widget",
            RotationRules=rotation,
            RotateImmediately=False,
        )
        assert sm.describe_secret(SecretId="widget/key")["RotationEnabled"] is True
    finally:
        code = up.stop()
    assert code == 0, "".join(up.stderr)
    # The agent logs in text (it has no JSON format) to the same stderr; the rest is the
    # server's, and every line of it is JSON.
    server_lines = [line for line in up.stderr if line.strip() and " secretsd.agent " not in line]
    assert server_lines, "the server logged nothing"
    records = [json.loads(line) for line in server_lines]
    assert any(record["logger"].startswith("secretsd") for record in records)
    server_stdout = [line for line in up.lines if line.startswith("server | ")]
    for line in server_stdout:
        json.loads(line.removeprefix("server | "))


def test_up_refuses_a_bad_server_option_before_starting_anything(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "secretsd.cli", "up", "--data-dir", str(tmp_path / "data")]
        + ["--log-format", "yaml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--log-format" in result.stderr and "yaml" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()
