"""``secretsd rotation history <secret>``: the attempts of a secret's rotations, newest last."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime

from secretsd.arguments import add_store_arguments
from secretsd.service import StorageError, open_service


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="secretsd rotation")
    sub = parser.add_subparsers(dest="command", required=True)
    history = sub.add_parser("history", help="show the rotation attempts of a secret")
    history.add_argument("secret", help="name or ARN of the secret")
    add_store_arguments(history)
    history.add_argument("--limit", type=int, default=50, help="newest events shown (50)")
    history.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser


def format_event(at: float, event: dict) -> str:
    when = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")
    parts = [when, event.get("token", "-")[:12], event.get("step") or event.get("kind", "")]
    parts.append(event.get("outcome", ""))
    if "duration_ms" in event:
        parts.append(f"{event['duration_ms']:.0f}ms")
    line = "  ".join(str(p) for p in parts)
    if event.get("error"):
        line += f"\n    error: {event['error']}"
    return line


def main(argv: list[str]) -> int:
    try:
        return _history(build_parser().parse_args(argv))
    except BrokenPipeError:
        # The reader (``| head``) has what it wanted. Point stdout at /dev/null so the
        # interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _history(args: argparse.Namespace) -> int:
    try:
        service = open_service(
            args.data_dir,
            args.database_url,
            schema=args.database_schema,
            master_key_command=args.master_key_command,
            master_key_kms=args.master_key_kms,
        )
    except StorageError as exc:
        print(f"secretsd rotation: {exc}", file=sys.stderr)
        return 1
    try:
        secret = service.find_in_any_region(args.secret)
        if secret is None:
            print(f"secretsd rotation: no secret {args.secret} in the store", file=sys.stderr)
            return 1
        events = service.storage.read_events(secret.arn, args.limit)
    except StorageError as exc:
        print(f"secretsd rotation: {exc}", file=sys.stderr)
        return 1
    finally:
        service.storage.close()
    if not events and not args.json:
        print(f"{secret.name}: no rotation attempts recorded")
        return 0
    for at, raw in events:
        event = json.loads(raw)
        if args.json:
            print(json.dumps({"time": at, **event}))
        else:
            print(format_event(at, event))
    return 0
