"""``secretsd up``: a server and an agent in front of it, the quick start.

Both run as child processes of this one, which only supervises: it starts the server, reads
its ``listening on`` line, writes the agent's token (mode 0600) and configuration into the
data directory, starts the agent the same way, prints how to call both, and then waits.
SIGTERM or SIGINT stops the agent first and then the server; if either child dies, the
other is stopped and ``up`` exits 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from secretsd.arguments import port
from secretsd.private_file import publish_private_file

LISTENING = re.compile(r"listening on (https?://[^\s\"]+)")
CONSOLE_LINK = re.compile(r"console sign-in link[^:]*: (https?://[^\s\"]+)")
TOKEN_FILE = "agent-token"
# The agent's own key: a user that can only read secrets, never the account's root key.
AGENT_CREDENTIALS = "agent-credentials"
AGENT_USER = "secretsd-agent"
AGENT_PROFILE = "secretsd-agent"
AGENT_POLICY_NAME = "read-secrets"
AGENT_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
                "Resource": "*",
            }
        ],
    },
    indent=2,
)
AGENT_CONFIG = "agent.toml"
PROFILE = "secretsd"
START_SECONDS = 30.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secretsd up",
        description="Run a secretsd server and an agent in front of it.",
        epilog="Every other option of `secretsd server` (--rotation-config, --log-format, "
        "--database-url, ...) is passed on to the server.",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("SECRETSD_DATA_DIR", "./data")),
        help="the server's data directory; the agent's token and config go there too (./data)",
    )
    parser.add_argument("--port", type=port, default=8787, help="server port; 0 = any (8787)")
    parser.add_argument("--agent-port", type=int, default=2773, help="agent port; 0 = any (2773)")
    parser.add_argument("--region", default="us-east-1", help="region of the server (us-east-1)")
    parser.add_argument(
        "--ttl-seconds", type=int, default=300, help="agent cache TTL in seconds (300)"
    )
    return parser


def _root_clients(data_dir: Path, server_url: str, region: str):
    import boto3

    from secretsd.api.credentials import load

    root = load(data_dir / "credentials").primary
    session = boto3.session.Session(
        aws_access_key_id=root.access_key_id,
        aws_secret_access_key=root.secret_access_key,
        region_name=region,
    )
    return session.client("iam", endpoint_url=server_url), session


def _works(path: Path, server_url: str, region: str) -> bool:
    """Whether the key in ``path`` still signs in (the user or its key may have gone)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from secretsd.api.credentials import CredentialsError, load

    try:
        key = load(path).primary
    except CredentialsError:
        return False
    sts = boto3.session.Session(
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
        region_name=region,
    ).client("sts", endpoint_url=server_url)
    try:
        sts.get_caller_identity()
    except (ClientError, BotoCoreError):
        return False
    return True


def ensure_agent_user(data_dir: Path, server_url: str, region: str) -> Path:
    """The agent's credentials file: user ``secretsd-agent``, allowed DescribeSecret and
    GetSecretValue only (its policy ``read-secrets`` can be narrowed, see docs/access.md),
    made on first start and reused while its key works."""
    from botocore.exceptions import ClientError

    from secretsd.api.credentials import AccessKey, render

    path = data_dir / AGENT_CREDENTIALS
    if path.exists() and _works(path, server_url, region):
        return path
    iam, _ = _root_clients(data_dir, server_url, region)
    try:
        iam.create_user(UserName=AGENT_USER)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        # Made by an earlier start: its policy stays as the operator left it.
    else:
        iam.put_user_policy(
            UserName=AGENT_USER, PolicyName=AGENT_POLICY_NAME, PolicyDocument=AGENT_POLICY
        )
    # The key file was lost or its key deleted: make room for a new key.
    for old in iam.list_access_keys(UserName=AGENT_USER)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=AGENT_USER, AccessKeyId=old["AccessKeyId"])
    created = iam.create_access_key(UserName=AGENT_USER)["AccessKey"]
    key = AccessKey(created["AccessKeyId"], created["SecretAccessKey"], AGENT_PROFILE)
    path.unlink(missing_ok=True)
    publish_private_file(path, render(key).encode())
    return path


def ensure_token(path: Path) -> None:
    """Create the agent's SSRF token once: the hex SHA-256 of 32 random bytes, mode 0600."""
    if path.exists():
        return
    token = hashlib.sha256(secrets.token_bytes(32)).hexdigest()
    publish_private_file(path, token.encode("ascii"))


def agent_config(server_url: str, port: int, region: str, ttl: int) -> str:
    return "\n".join(
        (
            "# Written by `secretsd up` at each start; edit the options of `up` instead.",
            f"http_port = {port}",
            "log_to_file = false",
            f"ttl_seconds = {ttl}",
            f'region = "{region}"',
            f'endpoint_url = "{server_url}"',
            'ssrf_env_variables = ["AWS_TOKEN"]',
            "",
        )
    )


class Child:
    """A child process whose stdout is read until its ``listening on`` line, then echoed."""

    def __init__(self, label: str, cmd: list[str], env: dict[str, str]) -> None:
        self.label = label
        self.process = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=None, text=True, env=env
        )
        self.url: str | None = None
        self.console_link: str | None = None
        self._ready = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            match = LISTENING.search(line)
            link = CONSOLE_LINK.search(line)
            if link and self.url is None:
                self.console_link = link.group(1)
            elif match and self.url is None:
                self.url = match.group(1)
                self._ready.set()
            elif self.url is not None:
                # Before the listening line the server may print its new access key; the
                # summary names the credentials file instead, so those lines are not echoed.
                print(f"{self.label} | {line}", end="", flush=True)
        self._ready.set()

    def wait_ready(self, timeout: float) -> str:
        self._ready.wait(timeout)
        if self.url is None:
            self.stop()
            raise RuntimeError(f"the {self.label} did not start")
        return self.url

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def summary(
    data_dir: Path, server_url: str, agent_url: str, region: str, console_link: str | None = None
) -> str:
    q = shlex.quote
    credentials = data_dir / "credentials"
    token = data_dir / TOKEN_FILE
    console = (
        (
            "Open the web console (the link signs in once, within 15 minutes):",
            f"  {console_link}",
            "",
        )
        if console_link
        else ()
    )
    return "\n".join(
        (
            "",
            "secretsd is up.",
            f"  server  {server_url}   access keys: {credentials} (profile {PROFILE})",
            f"  agent   {agent_url}   token: {token} (mode 0600)",
            f"          reads as IAM user {AGENT_USER} (DescribeSecret and GetSecretValue only),"
            f" key in {data_dir / AGENT_CREDENTIALS}",
            "",
            *console,
            "Use the server with the AWS CLI or any SDK:",
            f"  export AWS_SHARED_CREDENTIALS_FILE={q(str(credentials))} AWS_PROFILE={PROFILE}",
            f"  export AWS_DEFAULT_REGION={q(region)}"
            f" AWS_ENDPOINT_URL_SECRETS_MANAGER={q(server_url)}",
            "  aws secretsmanager create-secret --name db/app --secret-string"
            ' \'{"engine":"mysql","host":"127.0.0.1","username":"app","password":"..."}\'',
            "",
            "Read it through the agent (clients of the AWS agent read AWS_TOKEN):",
            f"  export AWS_TOKEN=file://{token}",
            f'  curl -H "X-Aws-Parameters-Secrets-Token: $(cat {q(str(token))})" \\',
            f"       '{agent_url}/secretsmanager/get?secretId=db/app'",
            "",
            "Stop with Ctrl-C or SIGTERM.",
            f"secretsd up: agent listening on {agent_url}",
        )
    )


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """``up``'s own options, and the server's, checked here so a mistake stops nothing."""
    from secretsd.server_options import build_parser as server_parser

    parser = build_parser()
    args, server_args = parser.parse_known_args(argv)
    given = server_parser().parse_args(server_args)
    if given.no_auth:
        parser.error("--no-auth is not for `up`: its agent signs its requests")
    return args, server_args


def main(argv: list[str]) -> int:
    args, server_args = parse(argv)
    data_dir: Path = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    handlers: dict[signal.Signals, Callable | int | None] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        handlers[sig] = signal.signal(sig, lambda *_: stop.set())

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base_env["PYTHONUNBUFFERED"] = "1"
    me = [sys.executable, "-m", "secretsd.cli"]
    server_cmd = me + ["server", "--port", str(args.port), "--data-dir", str(data_dir)]
    server_cmd += ["--region", args.region, "--console-sign-in-link", *server_args]
    server = Child("server", server_cmd, base_env)
    agent: Child | None = None
    try:
        server_url = server.wait_ready(START_SECONDS)
        token_path = data_dir / TOKEN_FILE
        ensure_token(token_path)
        config_path = data_dir / AGENT_CONFIG
        config_path.write_text(
            agent_config(server_url, args.agent_port, args.region, args.ttl_seconds)
        )
        try:
            agent_credentials = ensure_agent_user(data_dir, server_url, args.region)
        except Exception as exc:
            raise RuntimeError(f"cannot set up the agent's user: {exc}") from None
        agent_env = dict(
            base_env,
            AWS_SHARED_CREDENTIALS_FILE=str(agent_credentials),
            AWS_PROFILE=AGENT_PROFILE,
            AWS_DEFAULT_REGION=args.region,
            AWS_CONFIG_FILE=os.devnull,
            AWS_TOKEN=f"file://{token_path}",
        )
        agent = Child("agent", me + ["agent", "--config", str(config_path)], agent_env)
        agent_url = agent.wait_ready(START_SECONDS)
        print(
            summary(data_dir, server_url, agent_url, args.region, server.console_link),
            flush=True,
        )
        while not stop.wait(0.2):
            if server.process.poll() is not None or agent.process.poll() is not None:
                print("secretsd up: a child process exited; stopping", file=sys.stderr)
                return 1
        return 0
    except RuntimeError as exc:
        print(f"secretsd up: {exc}", file=sys.stderr)
        return 1
    finally:
        codes = [agent.stop() if agent is not None else 0, server.stop()]
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        # Exiting by the signal (uvicorn re-raises it after a clean shutdown) is clean; Ctrl-C
        # reaches the children too, as SIGINT.
        clean = (0, -signal.SIGTERM, -signal.SIGINT)
        if stop.is_set() and any(code not in clean for code in codes):
            print(f"secretsd up: children exited with {codes}", file=sys.stderr)
