"""An application that opens database connections the way the client library will.

Every new connection reads AWSCURRENT fresh. A refused login means a rotation is between
setSecret and finishSecret (the database has the pending password, AWSCURRENT still the
old one) or has just finished: retry with AWSPENDING, then with a fresh AWSCURRENT. With
that, a single-user rotation costs an application no failed connection, and alternating
users need no retry at all. The client library's database connections are to do the same.

``AppLoop`` runs that in a thread and counts what happened, for zero-downtime tests.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from tests.support.wait import wait_for

Credentials = dict[str, Any]
Fetch = Callable[[], Credentials | None]


class LoginRefused(Exception):
    """The database refused the credentials (wrong user or password)."""


def connect_fresh(
    fetch_current: Fetch,
    fetch_pending: Fetch,
    connect: Callable[[Credentials], Any],
    on_retry: Callable[[str], None] | None = None,
    rounds: int = 3,
    backoff: float = 0.05,
) -> Any:
    """A new connection: AWSCURRENT, else AWSPENDING, else a fresh AWSCURRENT.

    ``connect`` raises LoginRefused for a refused login; anything else it raises passes
    through at once (an unreachable database is not fixed by other credentials). When
    rotations follow each other faster than one such sequence, the database may move on
    between two attempts (a pending password refused a moment before its setSecret works a
    moment after): the sequence repeats, at most ``rounds`` times, with a short pause."""
    attempts: list[tuple[str, Fetch]] = [
        ("AWSCURRENT", fetch_current),
        ("AWSPENDING", fetch_pending),
        ("AWSCURRENT again", fetch_current),
    ]
    last: LoginRefused | None = None
    for round_number in range(rounds):
        if round_number:
            time.sleep(backoff * round_number)
        for label, fetch in attempts:
            credentials = fetch()
            if credentials is None:
                continue
            try:
                return connect(credentials)
            except LoginRefused as exc:
                last = exc
                if on_retry is not None:
                    on_retry(label)
    raise last or LoginRefused("no credentials to log in with")


def secret_fetchers(sm: Any, secret_id: str) -> tuple[Fetch, Fetch]:
    """AWSCURRENT and AWSPENDING readers; a label without a value reads as None."""

    def fetch(stage: str) -> Credentials | None:
        try:
            response = sm.get_secret_value(SecretId=secret_id, VersionStage=stage)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return None
            raise
        return json.loads(response["SecretString"])

    return (lambda: fetch("AWSCURRENT")), (lambda: fetch("AWSPENDING"))


@dataclass
class AppLoop:
    """Open, use and close a connection over and over until stopped."""

    fetch_current: Fetch
    fetch_pending: Fetch
    connect: Callable[[Credentials], Any]
    query: Callable[[Any], None]
    pause: float = 0.002
    successes: int = 0
    failures: list[str] = field(default_factory=list)
    retries: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _count_retry(self, label: str) -> None:
        self.retries[label] = self.retries.get(label, 0) + 1

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn = connect_fresh(
                    self.fetch_current, self.fetch_pending, self.connect, self._count_retry
                )
                try:
                    self.query(conn)
                finally:
                    conn.close()
                self.successes += 1
            except Exception as exc:
                # The type and text only: the loop never records a credential.
                self.failures.append(f"{type(exc).__name__}: {exc}")
            time.sleep(self.pause)

    def wait_for_successes(self, more: int, timeout: float = 30.0) -> None:
        """Until ``more`` connections have been used from now on, or one has failed (the
        test's assertions then show why): the loop's pace depends on the machine's load."""
        target = self.successes + more
        wait_for(
            lambda: self.successes >= target or self.failures,
            timeout=timeout,
            message=f"the application loop made {self.successes} of {target} connections",
        )

    def __enter__(self) -> AppLoop:
        self._thread = threading.Thread(target=self._run, name="app-loop", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)
