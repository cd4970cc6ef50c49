"""Two threads editing one secret: a conflicting commit is retried on fresh data, so no
write is lost and none is applied on a stale view."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from secretsd.store import Change, Conflict, Storage
from tests.service.conftest import SdkService


class MeetBeforeFirstCommit:
    """Passes everything to ``inner``; once armed, the first commit of each of two threads
    waits until both are about to commit. Both have then read the same revision, so one of the two
    commits must conflict: the race is certain, not left to the scheduler's luck."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.barrier = threading.Barrier(2, timeout=10)
        self.armed = False
        self.met: set[int] = set()
        self.conflicts = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def armed_for_two(self):
        self.armed = True
        try:
            yield
        finally:
            self.armed = False

    def commit(self, change: Change, *, durable: bool = True) -> int:
        me = threading.get_ident()
        if self.armed and me not in self.met:
            self.met.add(me)
            self.barrier.wait()
        try:
            return self.inner.commit(change, durable=durable)
        except Conflict:
            with self._lock:
                self.conflicts += 1
            raise

    def __getattr__(self, name: str):
        # Everything but commit goes straight to the store, whatever the interface grows.
        return getattr(self.inner, name)


@pytest.fixture
def racing(storage, clock):
    racing_storage = MeetBeforeFirstCommit(storage)
    return SdkService(racing_storage, clock=clock), racing_storage


def in_two_threads(first: Callable[[], object], second: Callable[[], object]) -> None:
    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(first), pool.submit(second)]:
            future.result(timeout=30)


def labels(service) -> dict[str, list[str]]:
    return service.call("DescribeSecret", {"SecretId": "s"})["VersionIdsToStages"]


def put(service, value: str, token: str) -> None:
    service.call(
        "PutSecretValue", {"SecretId": "s", "SecretString": value, "ClientRequestToken": token}
    )


def test_a_tag_and_a_value_written_at_once_both_stay(racing):
    service, storage = racing
    service.call("CreateSecret", {"Name": "s", "SecretString": "v0"})
    with storage.armed_for_two():
        in_two_threads(
            lambda: service.call(
                "TagResource", {"SecretId": "s", "Tags": [{"Key": "team", "Value": "a"}]}
            ),
            lambda: put(service, "v1", "1" * 32),
        )
    assert storage.conflicts == 1
    meta = service.call("DescribeSecret", {"SecretId": "s"})
    assert meta["Tags"] == [{"Key": "team", "Value": "a"}]
    assert service.call("GetSecretValue", {"SecretId": "s"})["SecretString"] == "v1"


def test_two_puts_at_once_both_become_versions_in_order(racing):
    """The loser of the race runs again after the winner: it becomes AWSCURRENT and the
    winner AWSPREVIOUS. Applied on its stale view, it would have dropped the winner."""
    service, storage = racing
    first = service.call("CreateSecret", {"Name": "s", "SecretString": "v0"})["VersionId"]
    with storage.armed_for_two():
        in_two_threads(lambda: put(service, "a", "a" * 32), lambda: put(service, "b", "b" * 32))
    assert storage.conflicts == 1
    staged = labels(service)
    current = service.call("GetSecretValue", {"SecretId": "s"})["VersionId"]
    winner = ({"a" * 32, "b" * 32} - {current}).pop()
    assert staged == {current: ["AWSCURRENT"], winner: ["AWSPREVIOUS"]}
    listed = service.call("ListSecretVersionIds", {"SecretId": "s", "IncludeDeprecated": True})
    assert {v["VersionId"] for v in listed["Versions"]} == {first, "a" * 32, "b" * 32}


def test_many_edits_from_two_threads_lose_nothing(service):
    service.call("CreateSecret", {"Name": "s", "SecretString": "v0"})
    start = threading.Barrier(2, timeout=10)

    def editor(side: str) -> None:
        start.wait()
        for n in range(20):
            service.call(
                "TagResource", {"SecretId": "s", "Tags": [{"Key": f"{side}{n}", "Value": "x"}]}
            )
            put(service, f"{side}{n}", f"{side}{n:031d}")

    in_two_threads(lambda: editor("a"), lambda: editor("b"))
    meta = service.call("DescribeSecret", {"SecretId": "s"})
    assert {t["Key"] for t in meta["Tags"]} == {f"{side}{n}" for side in "ab" for n in range(20)}
    listed = service.call("ListSecretVersionIds", {"SecretId": "s", "IncludeDeprecated": True})
    assert len(listed["Versions"]) == 41
    assert sorted(len(v) for v in labels(service).values()) == [1, 1]
