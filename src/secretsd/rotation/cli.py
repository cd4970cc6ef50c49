"""``secretsd rotation history <secret>``: the attempts of a secret's rotations, newest last."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime

from secretsd.arguments import add_store_arguments
from secretsd.service import StorageError, open_service

# More events than rotations write between two looks of --follow, however busy.
FOLLOW_WINDOW = 500


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="secretsd rotation")
    sub = parser.add_subparsers(dest="command", required=True)
    history = sub.add_parser("history", help="show the rotation attempts of a secret")
    history.add_argument("secret", help="name or ARN of the secret")
    add_store_arguments(history)
    history.add_argument("--limit", type=int, default=50, help="newest events shown (50)")
    history.add_argument("--json", action="store_true", help="one JSON object per line")
    history.add_argument(
        "--follow", action="store_true", help="keep printing new events until interrupted"
    )
    history.add_argument(
        "--interval", type=float, default=1.0, help="seconds between looks with --follow (1)"
    )
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
    except KeyboardInterrupt:
        return 0  # how --follow ends
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
        # Following, the first look also reads what it does not print, so that the next
        # look can tell new events from old ones it skipped.
        window = max(args.limit, FOLLOW_WINDOW) if args.follow else args.limit
        events = service.storage.read_events(secret.arn, window)
        if not events and not args.json:
            print(f"{secret.name}: no rotation attempts recorded", flush=True)
        _print_events(events[-args.limit :] if args.limit > 0 else [], args.json)
        seen = set(events)
        while args.follow:
            time.sleep(args.interval)
            events = service.storage.read_events(secret.arn, window)
            _print_events([event for event in events if event not in seen], args.json)
            seen = set(events)
    except StorageError as exc:
        print(f"secretsd rotation: {exc}", file=sys.stderr)
        return 1
    finally:
        service.storage.close()
    return 0


def _print_events(events: list[tuple[float, bytes]], as_json: bool) -> None:
    for at, raw in events:
        event = json.loads(raw)
        if as_json:
            print(json.dumps({"time": at, **event}), flush=True)
        else:
            print(format_event(at, event), flush=True)
