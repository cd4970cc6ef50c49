"""A Storage that times the calls it passes on, for the store latency metric.

Built by the composition root around the store when metrics are on; everything above
sees a Storage like any other. Each timed call costs two clock reads and a histogram update
in the calling thread's own table (``counters.PerThread``), no lock: about a microsecond.

Point reads (a document, a value) are timed only when the store's reads may block
(PostgreSQL), where they take a network round trip and their latency is worth watching.
On SQLite they take microseconds on the event loop, and timing the two of every
GetSecretValue measured at 1.9% of the request's instructions (bench/request_path.py
--instructions --metrics); there they go straight to the store, and their time shows in
the API's own latency for GetSecretValue.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from time import perf_counter

from secretsd.store.base import (
    Change,
    ListQuery,
    SortKey,
    Storage,
    StoredSecret,
    StoredUser,
    UserChange,
)

from .counters import REQUEST_BUCKETS, PerThread

# The operation label of each timed method: a fixed set, whatever the callers do.
OPERATIONS = (
    "load",
    "read_value",
    "commit",
    "batch",
    "list_page",
    "rotation_candidates",
    "append_event",
    "read_events",
    "check",
)


class TimedStorage(Storage):
    def __init__(self, inner: Storage, *, point_reads: bool | None = None) -> None:
        self._inner = inner
        self.timings = PerThread(REQUEST_BUCKETS)
        self._observe = self.timings.observe
        if point_reads is None:
            point_reads = inner.reads_may_block
        if not point_reads:
            # The inner store's own methods, found before the class's timed ones: no
            # wrapper at all on the hot path.
            self.load_by_name = inner.load_by_name  # type: ignore[method-assign]
            self.load_by_arn = inner.load_by_arn  # type: ignore[method-assign]
            self.read_value = inner.read_value  # type: ignore[method-assign]

    def __repr__(self) -> str:
        return f"TimedStorage({self._inner!r})"

    def load_by_name(self, name: str) -> StoredSecret | None:
        started = perf_counter()
        try:
            return self._inner.load_by_name(name)
        finally:
            self._observe("load", perf_counter() - started)

    def load_by_arn(self, arn: str) -> StoredSecret | None:
        started = perf_counter()
        try:
            return self._inner.load_by_arn(arn)
        finally:
            self._observe("load", perf_counter() - started)

    def read_value(self, arn: str, version_id: str) -> bytes | None:
        started = perf_counter()
        try:
            return self._inner.read_value(arn, version_id)
        finally:
            self._observe("read_value", perf_counter() - started)

    def commit(self, change: Change, *, durable: bool = True) -> int:
        started = perf_counter()
        try:
            return self._inner.commit(change, durable=durable)
        finally:
            self._observe("commit", perf_counter() - started)

    @contextlib.contextmanager
    def _timed_batch(self) -> Iterator[None]:
        started = perf_counter()
        try:
            with self._inner.batch():
                yield
        finally:
            self._observe("batch", perf_counter() - started)

    def batch(self) -> AbstractContextManager[None]:
        return self._timed_batch()

    def list_page(self, query: ListQuery) -> tuple[list[StoredSecret], SortKey | None]:
        started = perf_counter()
        try:
            return self._inner.list_page(query)
        finally:
            self._observe("list_page", perf_counter() - started)

    def rotation_candidates(self, now: float) -> list[StoredSecret]:
        started = perf_counter()
        try:
            return self._inner.rotation_candidates(now)
        finally:
            self._observe("rotation_candidates", perf_counter() - started)

    def append_event(self, arn: str, at: float, event: bytes) -> None:
        started = perf_counter()
        try:
            self._inner.append_event(arn, at, event)
        finally:
            self._observe("append_event", perf_counter() - started)

    def read_events(self, arn: str, limit: int = 100) -> list[tuple[float, bytes]]:
        started = perf_counter()
        try:
            return self._inner.read_events(arn, limit)
        finally:
            self._observe("read_events", perf_counter() - started)

    def check(self) -> None:
        started = perf_counter()
        try:
            self._inner.check()
        finally:
            self._observe("check", perf_counter() - started)

    # Untimed: whole-store walks, whose time says nothing about one round trip, and the
    # settings and locks, which are rare.

    def iter_secrets(self) -> Iterator[StoredSecret]:
        return self._inner.iter_secrets()

    def iter_values(self) -> Iterator[tuple[str, str, bytes]]:
        return self._inner.iter_values()

    def replace_value(self, arn: str, version_id: str, expected: bytes, value: bytes) -> bool:
        return self._inner.replace_value(arn, version_id, expected, value)

    def claim_lock(self, name: str) -> AbstractContextManager[bool]:
        return self._inner.claim_lock(name)

    @property
    def reads_may_block(self) -> bool:
        return self._inner.reads_may_block

    def get_setting(self, key: str) -> bytes | None:
        return self._inner.get_setting(key)

    def put_setting(self, key: str, value: bytes) -> None:
        self._inner.put_setting(key, value)

    # IAM users: rare changes, and a key lookup per user request whose time shows in the
    # API's latency.

    def load_user(self, name: str) -> StoredUser | None:
        return self._inner.load_user(name)

    def list_users(self) -> list[StoredUser]:
        return self._inner.list_users()

    def load_access_key(self, access_key_id: str) -> tuple[StoredUser, bytes] | None:
        return self._inner.load_access_key(access_key_id)

    def user_keys(self, name: str) -> list[tuple[str, bytes]]:
        return self._inner.user_keys(name)

    def commit_user(self, change: UserChange) -> int:
        return self._inner.commit_user(change)

    def change_marker(self) -> object | None:
        return self._inner.change_marker()

    def close(self) -> None:
        self._inner.close()
