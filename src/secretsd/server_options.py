"""``secretsd server``'s options: what it accepts, checked before anything starts.

Kept apart from the composition root so that ``secretsd up`` can check the options it passes
on without loading the server.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import ssl
from pathlib import Path

from secretsd.api import guard
from secretsd.api.metrics import TOKEN_ENV
from secretsd.arguments import port
from secretsd.rotation.registry import ConfigError
from secretsd.store import DEFAULT_AUDIT_MAX_BYTES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secretsd server", description="Run the Secrets Manager API server."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=port, default=8787, help="port; 0 picks a free one (8787)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("SECRETSD_DATA_DIR", "./data")),
        help="directory for the database, master key and credentials (./data)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("SECRETSD_DATABASE_URL"),
        help="postgresql://... to share a PostgreSQL store between nodes (default: SQLite)",
    )
    parser.add_argument(
        "--database-schema",
        default=os.environ.get("SECRETSD_DATABASE_SCHEMA", "secretsd"),
        help="PostgreSQL schema of the store (secretsd)",
    )
    parser.add_argument(
        "--master-key-command",
        default=None,
        help="command (run without a shell) that prints the base64 master key "
        "(env SECRETSD_MASTER_KEY_COMMAND)",
    )
    parser.add_argument(
        "--master-key-kms",
        default=None,
        metavar="KEY_ARN",
        help="KMS key that wraps the master key, kept in DATA_DIR/master.key.kms "
        "(env SECRETSD_MASTER_KEY_KMS)",
    )
    parser.add_argument(
        "--database-pool-size",
        type=int,
        default=int(os.environ.get("SECRETSD_DATABASE_POOL_SIZE", "10")),
        help="PostgreSQL reads served at once, each on a connection of its own (10)",
    )
    parser.add_argument("--region", default=os.environ.get("SECRETSD_REGION", "us-east-1"))
    parser.add_argument("--account", default=os.environ.get("SECRETSD_ACCOUNT", "123456789012"))
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--log-format", default="text", choices=["text", "json"])
    parser.add_argument(
        "--rotation-config",
        type=Path,
        default=None,
        help="TOML file registering rotation functions ([functions.<name>] tables)",
    )
    parser.add_argument(
        "--scheduler-interval",
        type=float,
        default=5.0,
        help="seconds between looks for due rotations (5)",
    )
    parser.add_argument(
        "--rotation-retry-base",
        type=float,
        default=2.0,
        help="first retry delay of a failed rotation in seconds, doubling each time (2)",
    )
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="accept unsigned requests (tests and benchmarks only; never on a shared host)",
    )
    metrics = parser.add_argument_group("metrics")
    metrics.add_argument(
        "--metrics",
        action="store_true",
        help="serve Prometheus metrics at /metrics, to requests bearing the metrics token",
    )
    metrics.add_argument(
        "--metrics-token-file",
        type=Path,
        default=_path_or_none(os.environ.get("SECRETSD_METRICS_TOKEN_FILE")),
        help=f"file holding the metrics bearer token (else env {TOKEN_ENV})",
    )
    metrics.add_argument(
        "--metrics-secret-names",
        action="store_true",
        help="also export each secret's last rotation time, labelled with its name "
        "(one series per secret; reads every secret at each scrape)",
    )
    parser.add_argument(
        "--no-console", action="store_true", help="do not serve the web console at /console"
    )
    parser.add_argument(
        "--console-sign-in-link",
        action="store_true",
        help="print a one-time sign-in link to the web console (secretsd up does)",
    )
    parser.add_argument(
        "--tls-cert", type=Path, default=None, help="PEM certificate (chain): serve HTTPS"
    )
    parser.add_argument("--tls-key", type=Path, default=None, help="PEM private key of --tls-cert")
    parser.add_argument(
        "--insecure-http",
        action="store_true",
        help="allow plain HTTP on an address beyond this machine (keys and values in clear)",
    )
    parser.add_argument(
        "--audit-max-bytes",
        type=int,
        default=DEFAULT_AUDIT_MAX_BYTES,
        help="roll DATA_DIR/audit.log to audit.log.NNNNNN past this size (64 MiB)",
    )
    guard.add_arguments(parser)
    return parser


def _path_or_none(text: str | None) -> Path | None:
    return Path(text) if text else None


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_transport(args: argparse.Namespace) -> None:
    """TLS files that load, and no plain HTTP beyond loopback unless asked for by name."""
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together")
    if args.tls_cert is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load --tls-cert/--tls-key: {exc}") from None
    elif not is_loopback(args.host) and not args.insecure_http:
        raise ConfigError(
            f"refusing to listen on {args.host} without TLS: access keys' signatures and "
            "secret values would cross the network in clear; give --tls-cert and --tls-key, "
            "or --insecure-http to accept that"
        )
