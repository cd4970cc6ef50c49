"""ListSecrets paging and its effect on GetSecretValue, for bench/server.py.

A page is timed from request to parsed response on a plain keep-alive HTTP connection with
one SigV4 signature per call, so client overhead stays small and the same at every store
size. ``fill_store`` writes secrets through the service in this process, on the server's own
data directory (SQLite lets both processes at it), in group commits: 100,000 secrets take
seconds instead of the minutes CreateSecret calls over HTTP would.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGION = "us-east-1"
FILL_GROUP = 2000


class Caller:
    """Signed Secrets Manager calls on one keep-alive connection."""

    def __init__(self, url: str, key: str, secret: str) -> None:
        self.url = url
        self.credentials = Credentials(key, secret)
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)

    def call(self, operation: str, body: dict) -> dict:
        data = json.dumps(body)
        request = AWSRequest(
            method="POST",
            url=self.url + "/",
            data=data,
            headers={
                "X-Amz-Target": f"secretsmanager.{operation}",
                "Content-Type": "application/x-amz-json-1.1",
            },
        )
        SigV4Auth(self.credentials, "secretsmanager", REGION).add_auth(request)
        self.conn.request("POST", "/", body=data, headers=dict(request.headers.items()))
        response = self.conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"{operation} answered {response.status}: {payload[:200]!r}")
        return json.loads(payload)

    def close(self) -> None:
        self.conn.close()


def fill_store(data_dir: Path, start: int, stop: int, value: str) -> float:
    """Create secrets ``start`` to ``stop`` in the store of the server at ``data_dir``;
    return how long it took."""
    from secretsd.service import SecretsService
    from secretsd.store import open_storage

    storage = open_storage(data_dir)
    service = SecretsService(storage)
    began = time.perf_counter()
    try:
        for first in range(start, stop, FILL_GROUP):
            with service.group_commit():
                for i in range(first, min(first + FILL_GROUP, stop)):
                    service.create_secret(
                        {
                            "Name": f"bench/fill/{i:06d}",
                            "SecretString": value,
                            # What an SDK always sends, and the service requires.
                            "ClientRequestToken": str(uuid.uuid4()),
                            "Description": f"Bench secret number {i}",
                            "Tags": [
                                {"Key": "team", "Value": f"team-{i % 50}"},
                                {"Key": "env", "Value": ("prod", "dev", "test")[i % 3]},
                            ],
                        }
                    )
    finally:
        storage.close()
    return time.perf_counter() - began


def walk(caller: Caller, stop: threading.Event | None = None) -> list[float]:
    """Page once through ListSecrets (100 a page); the seconds each page took."""
    times, body = [], {"MaxResults": 100}
    while stop is None or not stop.is_set():
        began = time.perf_counter()
        page = caller.call("ListSecrets", body)
        times.append(time.perf_counter() - began)
        if not page.get("NextToken"):
            break
        body = {"MaxResults": 100, "NextToken": page["NextToken"]}
    return times


def page_latency(target, seconds: float) -> dict[str, float]:
    """Walk ListSecrets again and again for ``seconds`` (at least once); page p50/p99 in ms
    and the time one whole walk took."""
    caller = Caller(target.url, target.key, target.secret)
    try:
        times: list[float] = []
        began = time.perf_counter()
        first = walk(caller)
        whole = time.perf_counter() - began
        times += first
        while time.perf_counter() - began < seconds:
            times += walk(caller)
    finally:
        caller.close()
    cut = statistics.quantiles(times, n=100) if len(times) > 1 else times * 99
    return {
        "p50_ms": statistics.median(times) * 1000,
        "p99_ms": cut[98] * 1000,
        "pages": len(first),
        "walk_s": whole,
    }


class Listers:
    """``count`` clients paging through ListSecrets without pause, until stopped."""

    def __init__(self, target, count: int = 2) -> None:
        self.target = target
        self.stop = threading.Event()
        self.pages = 0
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(count)]

    def _run(self) -> None:
        caller = Caller(self.target.url, self.target.key, self.target.secret)
        try:
            while not self.stop.is_set():
                self.pages += len(walk(caller, self.stop))
        finally:
            caller.close()

    def __enter__(self) -> Listers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()
