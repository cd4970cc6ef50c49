"""Start a real ``secretsd server`` process on an ephemeral port and talk to it with boto3."""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config

LISTENING = re.compile(r"listening on (https?://[^\s\"]+)")
REGION = "us-east-1"
_CLIENT_LOCK = threading.Lock()


@dataclass
class ServerProcess:
    data_dir: Path
    process: subprocess.Popen
    endpoint_url: str
    output: list[str] = field(default_factory=list)
    _session: boto3.session.Session | None = field(default=None, repr=False)

    @property
    def credentials_file(self) -> Path:
        return self.data_dir / "credentials"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a child process (AWS CLI, agent) to reach this server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_SHARED_CREDENTIALS_FILE=str(self.credentials_file),
            AWS_PROFILE="secretsd",
            AWS_DEFAULT_REGION=REGION,
            AWS_ENDPOINT_URL_SECRETS_MANAGER=self.endpoint_url,
            AWS_CONFIG_FILE=os.devnull,
        )
        return env

    def session(self) -> boto3.session.Session:
        # One session per server: building one loads botocore's data again (0.1-0.5 s).
        if self._session is None:
            self._session = self._new_session()
        return self._session

    def _new_session(self) -> boto3.session.Session:
        import configparser

        parser = configparser.ConfigParser()
        parser.read(self.credentials_file)
        profile = parser["secretsd"]
        return boto3.session.Session(
            aws_access_key_id=profile["aws_access_key_id"],
            aws_secret_access_key=profile["aws_secret_access_key"],
            region_name=REGION,
        )

    def client(self, service: str = "secretsmanager", **config):
        """A boto3 client of ``service`` (secretsmanager, iam, sts) signed with the root key."""
        return self.client_as(self.session(), service, **config)

    def client_as(self, session: boto3.session.Session, service: str = "secretsmanager", **config):
        # boto3 sessions are not safe to make clients from in several threads at once.
        with _CLIENT_LOCK:
            return session.client(
                service,
                endpoint_url=self.endpoint_url,
                config=Config(retries={"max_attempts": 1, "mode": "standard"}, **config),
            )

    def client_for_key(self, access_key: dict, service: str = "secretsmanager", **config):
        """A client signing with an access key as CreateAccessKey returns it."""
        session = boto3.session.Session(
            aws_access_key_id=access_key["AccessKeyId"],
            aws_secret_access_key=access_key["SecretAccessKey"],
            region_name=REGION,
        )
        return self.client_as(session, service, **config)

    def log_text(self) -> str:
        return "".join(self.output)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        return stop_process(self.process, sig, timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
    """Send ``sig``, wait up to ``timeout`` seconds, then kill; the exit code."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def launch_until_listening(
    cmd: list[str],
    env: dict[str, str],
    what: str,
    timeout: float = 20,
    preexec_fn: Callable[[], None] | None = None,
) -> tuple[subprocess.Popen, str, list[str]]:
    """Run ``cmd`` and wait for its ``listening on <url>`` line; the output keeps being
    collected in the returned list."""
    process = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        preexec_fn=preexec_fn,
    )
    output: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            match = LISTENING.search(line)
            if match and not found.is_set():
                url.append(match.group(1))
                found.set()
        process.stdout.close()
        found.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not found.wait(0.05):
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{what} did not start:\n" + "".join(output))
    if not url:
        process.wait()
        raise RuntimeError(f"{what} exited before listening:\n" + "".join(output))
    return process, url[0], output


def start_server(
    data_dir: Path,
    *extra_args: str,
    env: dict[str, str] | None = None,
    timeout: float = 20,
    open_files: int | None = None,
) -> ServerProcess:
    """Run ``secretsd server --port 0`` and wait for its ``listening on`` line.

    ``open_files`` sets the server's open-file limit, soft and hard, as systemd would."""
    data_dir.mkdir(parents=True, exist_ok=True)
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    cmd = [sys.executable, "-m", "secretsd.cli", "server", "--port", "0"]
    cmd += ["--data-dir", str(data_dir), *extra_args]
    preexec_fn = None
    if open_files is not None:

        def preexec_fn() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    process, url, output = launch_until_listening(cmd, child_env, "server", timeout, preexec_fn)
    return ServerProcess(data_dir, process, url, output)
