"""What ``secretsd status`` looks at, each over the wire as any client would.

The server: ``GET /health`` (unsigned) and one signed ListSecrets page, timed. The agent:
``GET /ping``, timed. The rotations: ListSecrets, page by page, for the secrets that
rotate; then, for each that is in progress or past its NextRotationDate, the server's own
word on it through DescribeRotation, a secretsd operation that boto3 learns from the model
extras in ``botocore_data`` (on AWS, which lacks it, those secrets keep what ListSecrets
says).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import HTTPConnection, HTTPSConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

# Model extras that teach boto3 secretsd's DescribeRotation.
DATA_PATH = Path(__file__).parent / "botocore_data"
PENDING = "AWSPENDING"
CURRENT = "AWSCURRENT"


@dataclass
class Probe:
    """One endpoint looked at: reachable or not, how fast, and what it said."""

    name: str
    url: str
    ok: bool
    milliseconds: float | None
    detail: str


@dataclass
class Rotation:
    name: str
    arn: str
    condition: str  # failing | overdue | rotating | ok (model.rotation_state's words)
    enabled: bool
    last_rotated: datetime | None = None
    next_rotation: datetime | None = None
    rotating_since: datetime | None = None
    failing_since: datetime | None = None
    failed_step: str | None = None
    last_error: str | None = None


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = call()
    return result, (time.perf_counter() - started) * 1000


def http_get(url: str, path: str, timeout: float) -> tuple[int, bytes]:
    parts = urlsplit(url)
    kind = HTTPSConnection if parts.scheme == "https" else HTTPConnection
    connection = kind(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def probe_health(url: str, timeout: float) -> Probe:
    try:
        (status, body), ms = _timed(lambda: http_get(url, "/health", timeout))
    except OSError as exc:
        return Probe("server", url, False, None, f"unreachable: {exc}")
    try:
        answer = json.loads(body)
    except ValueError:
        answer = {}
    if status == 200:
        return Probe("server", url, True, ms, f"healthy, version {answer.get('version', '?')}")
    if status == 404:
        # Not a secretsd server (AWS itself, say): the API check says whether it answers.
        return Probe("server", url, True, None, "no /health here")
    return Probe("server", url, False, ms, f"unhealthy ({status}): {answer.get('reason', '')}")


def probe_agent(url: str, timeout: float) -> Probe:
    try:
        (status, _), ms = _timed(lambda: http_get(url, "/ping", timeout))
    except OSError as exc:
        return Probe("agent", url, False, None, f"unreachable: {exc}")
    if status != 200:
        return Probe("agent", url, False, ms, f"/ping answered {status}")
    return Probe("agent", url, True, ms, "healthy")


def client(
    endpoint_url: str,
    region: str,
    timeout: float,
    credentials_file: Path | None = None,
    profile: str | None = None,
):
    """A boto3 Secrets Manager client that also knows DescribeRotation."""
    session = botocore.session.Session(profile=profile)
    # Before anything reads the configuration, which botocore then keeps.
    if credentials_file is not None:
        session.set_config_variable("credentials_file", str(credentials_file))
    existing = os.environ.get("AWS_DATA_PATH")
    paths = [str(DATA_PATH)] + ([existing] if existing else [])
    session.set_config_variable("data_path", os.pathsep.join(paths))
    config = Config(
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=timeout,
        read_timeout=timeout,
        max_pool_connections=8,
    )
    return boto3.Session(botocore_session=session, region_name=region).client(
        "secretsmanager", endpoint_url=endpoint_url, config=config
    )


def _describe_error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}"
    return str(exc)


def _pages(sm) -> Iterator[dict]:
    token = None
    while True:
        request: dict[str, Any] = {"MaxResults": 100}
        if token:
            request["NextToken"] = token
        page = sm.list_secrets(**request)
        yield page
        token = page.get("NextToken")
        if not token:
            return


def _has_pending(entry: dict) -> bool:
    for stages in entry.get("SecretVersionsToStages", {}).values():
        if PENDING in stages and CURRENT not in stages:
            return True
    return False


def _from_listing(entry: dict, now: datetime) -> Rotation:
    next_rotation = entry.get("NextRotationDate")
    enabled = bool(entry.get("RotationEnabled"))
    if _has_pending(entry):
        condition = "rotating"
    elif enabled and entry.get("RotationRules") and next_rotation and next_rotation < now:
        condition = "overdue"
    else:
        condition = "ok"
    return Rotation(
        name=entry["Name"],
        arn=entry["ARN"],
        condition=condition,
        enabled=enabled,
        last_rotated=entry.get("LastRotatedDate"),
        next_rotation=next_rotation if enabled else None,
    )


def _from_describe(found: dict, listed: Rotation) -> Rotation:
    return Rotation(
        name=listed.name,
        arn=listed.arn,
        condition=found.get("Condition", listed.condition),
        enabled=bool(found.get("RotationEnabled")),
        last_rotated=found.get("LastRotatedDate"),
        next_rotation=found.get("NextRotationDate"),
        rotating_since=found.get("RotationStartedDate"),
        failing_since=found.get("FailingSinceDate"),
        failed_step=found.get("FailedStep"),
        last_error=found.get("LastError"),
    )


def probe_api(sm, url: str) -> tuple[Probe, list[dict] | None]:
    """One signed call, timed, and the secrets listed (all pages), or why it failed."""
    entries: list[dict] = []
    try:
        pages = _pages(sm)
        first, ms = _timed(lambda: next(pages))
        entries += first.get("SecretList", [])
        for page in pages:
            entries += page.get("SecretList", [])
    except (ClientError, BotoCoreError) as exc:
        return Probe("api", url, False, None, _describe_error(exc)), None
    listed = f"{len(entries)} secret{'' if len(entries) == 1 else 's'} listed"
    return Probe("api", url, True, ms, listed), entries


def rotations(sm, entries: list[dict], now: datetime | None = None) -> list[Rotation]:
    """The rotating secrets among ``entries``, with the server's word on those that are in
    progress or look overdue."""
    now = now or datetime.now(UTC)
    listed = [
        _from_listing(entry, now)
        for entry in entries
        if entry.get("RotationEnabled") or _has_pending(entry)
    ]
    doubtful = [rotation for rotation in listed if rotation.condition != "ok"]

    def confirm(rotation: Rotation) -> Rotation:
        try:
            found = sm.describe_rotation(SecretId=rotation.arn)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("UnknownOperationException", "ResourceNotFoundException"):
                return rotation  # not a secretsd server, or deleted since the listing
            raise
        return _from_describe(found, rotation)

    with ThreadPoolExecutor(8) as pool:
        confirmed = {r.arn: r for r in pool.map(confirm, doubtful)}
    return sorted((confirmed.get(r.arn, r) for r in listed), key=lambda r: r.name)
