"""``secretsd up`` as a child process, for the tests that use it as a user would."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import boto3

LISTENING = re.compile(r"(server|agent)\s+(https?://\S+)")


class Up:
    """A running ``secretsd up``: its stdout lines as they come, its stderr, its exit."""

    def __init__(self, data_dir: Path | str, *extra: str, cwd: Path | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "secretsd.cli", "up", "--data-dir", str(data_dir)]
            + ["--port", "0", "--agent-port", "0", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd,
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

    def urls(self) -> dict[str, str]:
        """The server's and the agent's URL, from the summary ``up`` prints."""
        found: dict[str, str] = {}
        for line in self.lines:
            match = LISTENING.match(line.strip())
            if match:
                found.setdefault(match.group(1), match.group(2))
        return found


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
