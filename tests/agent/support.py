"""Run ``secretsd agent`` as a real process and talk HTTP/1.1 to it."""

from __future__ import annotations

import asyncio
import http.client
import re
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from secretsd.agent import config as configuration
from secretsd.agent.metrics import Metrics
from secretsd.agent.run import build, serve
from tests.support.server import launch_until_listening, stop_process

TOKEN = "test-token-0123456789"
TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"


@dataclass
class AgentProcess:
    process: subprocess.Popen
    url: str
    output: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 0

    def request(
        self,
        target: str,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        token: str | None = TOKEN,
        timeout: float = 30,
    ) -> tuple[int, bytes, dict[str, str]]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            sent = dict(headers or {})
            if token is not None:
                sent.setdefault(TOKEN_HEADER, token)
            connection.request(method, target, headers=sent)
            response = connection.getresponse()
            return response.status, response.read(), dict(response.getheaders())
        finally:
            connection.close()

    def get(self, target: str, **kwargs) -> tuple[int, bytes]:
        status, body, _ = self.request(target, **kwargs)
        return status, body

    def metric(self, name: str, **labels: str) -> float:
        status, body = self.get("/metrics")
        assert status == 200
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            metric, _, number = line.rpartition(" ")
            metric_name, _, metric_labels = metric.partition("{")
            if metric_name != name:
                continue
            present = dict(re.findall(r'(\w+)="([^"]*)"', metric_labels))
            if all(present.get(k) == v for k, v in labels.items()) or not wanted:
                total += float(number)
        return total

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        return "".join(self.output)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        return stop_process(self.process, sig, timeout)


def write_config(directory: Path, text: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "agent.toml"
    base = "http_port = 0\nlog_to_file = false\n"
    path.write_text(base + text)
    return path


def agent_command(config: Path | None, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "secretsd.cli", "agent"]
    if config is not None:
        cmd += ["--config", str(config)]
    return cmd + list(extra)


def start_agent(
    config: Path, env: dict[str, str], token: str | None = TOKEN, timeout: float = 20
) -> AgentProcess:
    child_env = dict(env)
    child_env["PYTHONUNBUFFERED"] = "1"
    if token is not None:
        child_env["AWS_TOKEN"] = token
    process, url, output = launch_until_listening(
        agent_command(config), child_env, "agent", timeout
    )
    return AgentProcess(process, url, output)


def run_agent_to_exit(
    config: Path | None, env: dict[str, str], *extra: str, timeout: float = 30
) -> subprocess.CompletedProcess:
    return subprocess.run(
        agent_command(config, *extra),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


class InProcess:
    """An agent in this process around any backend (a fake one, usually), on its own loop
    in a thread: for timings a process cannot shorten and for the Unix socket."""

    def __init__(self, backend, **settings) -> None:
        settings.setdefault("http_port", 0)
        settings.setdefault("log_to_file", False)
        cfg = configuration.from_mapping(settings, {})
        self.agent = build(cfg, TOKEN.encode(), backend, Metrics())
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.ready = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.setblocking(False)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.stop_event = asyncio.Event()
            await serve(
                self.agent, self.sock, on_ready=lambda _: self.ready.set(), stop=self.stop_event
            )

        self.loop.run_until_complete(main())
        self.loop.close()

    def __enter__(self) -> AgentProcess:
        self.thread.start()
        assert self.ready.wait(10)
        port = self.sock.getsockname()[1]
        return AgentProcess(process=None, url=f"http://127.0.0.1:{port}")  # type: ignore[arg-type]

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(10)
