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
from urllib.parse import parse_qs, urlsplit

import boto3

from tests.support.console import ConsoleClient, over_http


def assert_console_link_signs_in_once(printed: str) -> None:
    link = urlsplit(re.search(r"^  (http://\S+/console/sign-in/link\?\S+)$", printed, re.M)[1])
    server = f"{link.scheme}://{link.netloc}"
    token = parse_qs(link.query)["token"][0]
    for status in (303, 401):
        client = ConsoleClient(over_http(server), server)
        page = client.get(f"{link.path}?{link.query}")
        reply = client.post("/console/sign-in/link", {"csrf": page.csrf, "token": token})
        assert reply.status == status


def test_up_runs_server_and_agent_and_stops_cleanly(tmp_path):
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "secretsd.cli", "up", "--data-dir", str(data_dir)]
        + ["--port", "0", "--agent-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        for line in process.stdout:
            lines.append(line)
            if "agent listening on" in line:
                ready.set()
        ready.set()

    stderr: list[str] = []
    readers = [
        threading.Thread(target=pump, daemon=True),
        threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        assert ready.wait(60), "".join(lines)
        text = "".join(lines)
        agent_url = re.search(r"agent listening on (http://\S+)", text).group(1)
        exports = {}
        for line in text.splitlines():
            if line.strip().startswith("export "):
                for word in shlex.split(line.strip()[len("export ") :]):
                    key, _, value = word.partition("=")
                    exports[key] = value
        token_file = data_dir / "agent-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert exports["AWS_TOKEN"] == f"file://{token_file}"
        assert "aws_secret_access_key" not in text.lower()

        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = exports["AWS_SHARED_CREDENTIALS_FILE"]
        try:
            session = boto3.session.Session(
                profile_name=exports["AWS_PROFILE"], region_name=exports["AWS_DEFAULT_REGION"]
            )
            sm = session.client(
                "secretsmanager", endpoint_url=exports["AWS_ENDPOINT_URL_SECRETS_MANAGER"]
            )
            sm.create_secret(Name="db/app", SecretString='{"password":"up"}')
        finally:
            del os.environ["AWS_SHARED_CREDENTIALS_FILE"]

        # The curl command exactly as printed (two lines joined by a backslash).
        printed = text.splitlines()
        at = next(i for i, line in enumerate(printed) if "curl -H" in line)
        command = printed[at] + "\n" + printed[at + 1]
        assert agent_url in command
        result = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=30, check=True
        )
        assert json.loads(json.loads(result.stdout)["SecretString"]) == {"password": "up"}
        assert_console_link_signs_in_once(text)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
        for reader in readers:
            reader.join(10)
        process.stdout.close()
        process.stderr.close()
    assert code == 0, "".join(stderr)
    assert "Traceback" not in "".join(stderr)
