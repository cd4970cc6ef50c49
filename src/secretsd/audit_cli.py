"""``secretsd audit``: check the audit chain, and read the audit log.

``verify`` walks every record in chain order (rolled files, then ``audit.log``; or the
PostgreSQL table) and exits 1 naming the first record that was edited, removed or moved;
otherwise it prints how many records it checked and the last hash, which an operator may
keep elsewhere to detect a log cut short later. ``tail`` prints the last records that match
its filters, as one line each or as the stored JSON, and with ``--follow`` keeps printing
new ones.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from secretsd.model.audit_chain import Line, Problem, check
from secretsd.store import FileFollower, StorageError, audit_lines

POLL_SECONDS = 0.5
Filter = Callable[[dict[str, Any]], bool]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="secretsd audit", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="check the hash chain; exit 1 at the first break")
    tail = sub.add_parser("tail", help="print the last records, filtered")
    tail.add_argument("--user", help="user name, principal ARN, access key id, or 'root'")
    tail.add_argument("--secret", help="secret name or ARN")
    tail.add_argument("--operation", help="event name, e.g. GetSecretValue")
    tail.add_argument("--denied", action="store_true", help="only calls refused as AccessDenied")
    tail.add_argument("-n", "--lines", type=int, default=20, help="how many records (20)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new records")
    tail.add_argument("--json", action="store_true", help="print the stored JSON records")
    for command in (verify, tail):
        command.add_argument(
            "--data-dir", type=Path, default=Path(os.environ.get("SECRETSD_DATA_DIR", "./data"))
        )
        command.add_argument("--database-url", default=os.environ.get("SECRETSD_DATABASE_URL"))
        command.add_argument(
            "--database-schema", default=os.environ.get("SECRETSD_DATABASE_SCHEMA", "secretsd")
        )
    return parser


def _lines(args: argparse.Namespace) -> Iterator[Line]:
    return audit_lines(args.data_dir, args.database_url, schema=args.database_schema)


def verify(args: argparse.Namespace) -> int:
    outcome = check(_lines(args))
    if isinstance(outcome, Problem):
        print(f"audit chain broken: {outcome}", file=sys.stderr)
        return 1
    print(
        f"audit chain intact: {outcome.records} records, last {outcome.head.sequence} "
        f"hash {outcome.head.hash}"
    )
    return 0


def matcher(args: argparse.Namespace) -> Filter:
    tests: list[Filter] = []
    if args.user:
        user = args.user

        def by_user(record: dict[str, Any]) -> bool:
            identity = record.get("userIdentity") or {}
            if user == "root":
                return identity.get("type") == "Root"
            keys = ("userName", "arn", "accessKeyId", "principalId")
            return any(identity.get(key) == user for key in keys)

        tests.append(by_user)
    if args.secret:
        secret = args.secret

        def by_secret(record: dict[str, Any]) -> bool:
            return secret in secrets_of(record)

        tests.append(by_secret)
    if args.operation:
        operation = args.operation.lower()
        tests.append(lambda record: str(record.get("eventName", "")).lower() == operation)
    if args.denied:
        tests.append(lambda record: str(record.get("errorCode") or "").startswith("AccessDenied"))
    return lambda record: all(test(record) for test in tests)


def secrets_of(record: dict[str, Any]) -> set[str]:
    """Every way the record names a secret: ARNs, the names inside them, the ids given."""
    found: set[str] = set()
    for resource in record.get("resources") or ():
        arn = resource.get("ARN")
        if isinstance(arn, str):
            found.add(arn)
            name = arn.split(":secret:", 1)[-1]
            # An ARN ends in -<six random characters> after the name.
            found.add(name[:-7] if len(name) > 7 and name[-7] == "-" else name)
    parameters = record.get("requestParameters") or {}
    for key in ("secretId", "name"):
        if isinstance(parameters.get(key), str):
            found.add(parameters[key])
    return found


def summary(record: dict[str, Any]) -> str:
    identity = record.get("userIdentity") or {}
    who = (
        identity.get("userName")
        or ("root" if identity.get("type") == "Root" else None)
        or identity.get("invokedBy")
        or identity.get("type", "-")
    )
    named = sorted(name for name in secrets_of(record) if not name.startswith("arn:"))
    # A refused console sign-in has only a message, as CloudTrail's ConsoleLogin does.
    outcome = record.get("errorCode") or record.get("errorMessage") or "OK"
    return (
        f"{record.get('eventTime', '-')} {record.get('sequence', '-'):>8} "
        f"{record.get('eventName', '-'):<26} {who:<20} {','.join(named) or '-':<30} "
        f"{outcome} {record.get('sourceIPAddress', '-')}"
    )


def _show(args: argparse.Namespace, text: str, record: dict[str, Any]) -> None:
    print(text if args.json else summary(record), flush=True)


def _parse(text: str) -> dict[str, Any] | None:
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def tail(args: argparse.Namespace) -> int:
    wanted = matcher(args)
    follower = None
    if args.follow and not args.database_url:
        # Opened before the scan, so nothing appended during it is missed.
        follower = FileFollower(args.data_dir)
        follower.start_at_end()
    last: collections.deque[tuple[str, dict[str, Any]]] = collections.deque(
        maxlen=max(0, args.lines)
    )
    seen = 0
    for line in _lines(args):
        record = _parse(line.text)
        if record is None:
            continue
        seen = max(seen, int(record.get("sequence") or 0))
        if wanted(record):
            last.append((line.text, record))
    for text, record in last:
        _show(args, text, record)
    if not args.follow:
        return 0
    try:
        while True:
            fresh = (
                follower.poll()
                if follower is not None
                else [line.text for line in _lines_after(args, seen)]
            )
            for text in fresh:
                record = _parse(text)
                if record is None or int(record.get("sequence") or 0) <= seen:
                    continue
                seen = int(record["sequence"])
                if wanted(record):
                    _show(args, text, record)
            if not fresh:
                time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        return 0
    finally:
        if follower is not None:
            follower.close()


def _lines_after(args: argparse.Namespace, after: int) -> Iterator[Line]:
    from secretsd.store.audit_postgres import PostgresAuditLog

    log = PostgresAuditLog(args.database_url, schema=args.database_schema, create=False)
    try:
        yield from log.lines(after)
    finally:
        log.close()


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return verify(args) if args.command == "verify" else tail(args)
    except StorageError as exc:
        print(f"secretsd audit: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
