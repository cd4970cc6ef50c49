"""``secretsd status``: is the server up, is the agent up, how do rotations stand.

For a person (a table) or a cron job or monitoring system (``--json``, and the exit code:
0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN when the command line is wrong). It talks to the
server over its API with an access key, as any client does, and reads no store.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from . import checks, report

UNKNOWN = 3
DEFAULT_ENDPOINT = "http://127.0.0.1:8787"
DEFAULT_AGENT = "http://127.0.0.1:2773"
PROFILE = "secretsd"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # A monitoring system reads exit 2 as CRITICAL: a bad command line is UNKNOWN.
        self.exit(UNKNOWN, f"{self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="secretsd status",
        description="Check the server, the agent and every rotation; exit 0 OK, 1 WARNING, "
        "2 CRITICAL (3 for a bad command line).",
    )
    parser.add_argument(
        "--endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER")
        or os.environ.get("AWS_ENDPOINT_URL")
        or DEFAULT_ENDPOINT,
        help=f"the server (env AWS_ENDPOINT_URL_SECRETS_MANAGER; {DEFAULT_ENDPOINT})",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("SECRETSD_DATA_DIR", "./data")),
        help="the server's data directory, whose credentials file is used when it exists (./data)",
    )
    parser.add_argument(
        "--credentials-file",
        type=Path,
        default=None,
        help="AWS credentials file to sign with (default: DATA_DIR/credentials if it exists, "
        "else the usual AWS credential chain)",
    )
    parser.add_argument(
        "--profile", default=None, help=f"profile in the credentials file ({PROFILE})"
    )
    parser.add_argument(
        "--region",
        default=os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1",
    )
    parser.add_argument(
        "--agent-url",
        default=os.environ.get("SECRETSD_AGENT_URL", DEFAULT_AGENT),
        help=f"the agent to ping (env SECRETSD_AGENT_URL; {DEFAULT_AGENT})",
    )
    parser.add_argument("--no-agent", action="store_true", help="do not check an agent")
    parser.add_argument(
        "--slow-ms",
        type=float,
        default=1000.0,
        help="answers slower than this are a warning (1000)",
    )
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for each answer (5)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def _credentials(args: argparse.Namespace) -> tuple[Path | None, str | None]:
    path = args.credentials_file
    if path is None:
        candidate = args.data_dir / "credentials"
        if candidate.is_file():
            path = candidate
    if path is None:
        return None, args.profile  # the usual chain: environment, AWS_PROFILE, roles
    return path, args.profile or PROFILE


def gather(args: argparse.Namespace) -> report.Status:
    credentials_file, profile = _credentials(args)
    url = args.endpoint_url.rstrip("/")
    probes = [checks.probe_health(url, args.timeout)]
    rotations: list[checks.Rotation] = []
    try:
        sm = checks.client(url, args.region, args.timeout, credentials_file, profile)
    except BotoCoreError as exc:  # a profile that is not in the file, say
        probes.append(checks.Probe("api", url, False, None, str(exc)))
    else:
        api, entries = checks.probe_api(sm, url)
        if entries is not None:
            try:
                rotations = checks.rotations(sm, entries)
            except (ClientError, BotoCoreError) as exc:
                api = checks.Probe("api", url, False, None, f"DescribeRotation: {exc}")
        probes.append(api)
    if not args.no_agent:
        probes.append(checks.probe_agent(args.agent_url.rstrip("/"), args.timeout))
    return report.Status(datetime.now(UTC), probes, rotations, args.slow_ms)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    status = gather(args)
    try:
        print(report.as_json(status) if args.json else report.table(status), flush=True)
    except BrokenPipeError:
        # The reader (``| head``) has what it wanted; the verdict stands.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return status.code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
