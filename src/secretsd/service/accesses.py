"""LastAccessedDate off the read path: reads note what they read, a thread writes it later.

Theory of operation. Secrets Manager keeps LastAccessedDate at day resolution, so a secret
needs at most one write per day for it. That write is bookkeeping, yet it is a commit: it
takes the store's write lock and, on PostgreSQL, a round trip, so a read that made it
itself would wait for the writer thread's group commit or for a lock on the row. Instead
a read only notes (secret, version, day) in memory; notes coalesce per secret until the
recorder's thread takes them all, and for each secret loads it, moves its dates forward and
commits without waiting for the disk (``durable=False``), re-reading on a conflict.

Reads of a secret see the new date once that commit lands, a few milliseconds later. The
notes live in memory only: a crash can lose the current day's dates, which the next read
notes again. ``flush`` waits until what was noted has landed (tests, shutdown).
"""

from __future__ import annotations

import logging
import threading

from secretsd.model.secret import Secret
from secretsd.store.base import Conflict, Storage, StorageError

from .edits import secret_change

log = logging.getLogger("secretsd.service")

MAX_CONFLICT_RETRIES = 8


def record_access(storage: Storage, arn: str, days: dict[str, float]) -> None:
    """Move the last-accessed dates of ``arn`` and of its versions ``days`` forward."""
    for _ in range(MAX_CONFLICT_RETRIES):
        stored = storage.load_by_arn(arn)
        if stored is None:
            return
        secret = Secret.from_document(stored.document)
        changed = False
        for version_id, day in days.items():
            version = secret.versions.get(version_id)
            if version is None:
                continue
            if version.last_accessed is None or version.last_accessed < day:
                version.last_accessed = day
                changed = True
            if secret.last_accessed is None or secret.last_accessed < day:
                secret.last_accessed = day
                changed = True
        if not changed:
            return
        try:
            # With its index record: lists sort on the last-accessed date.
            storage.commit(secret_change(secret, stored.revision), durable=False)
            return
        except Conflict:
            continue


class AccessRecorder:
    """Coalesces reads' notes per secret and writes them on a thread of its own."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._changed = threading.Condition()
        self._pending: dict[str, dict[str, float]] = {}
        self._writing = False
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="secretsd-accesses", daemon=True)
        self._thread.start()

    def note(self, arn: str, version_id: str, day: float) -> None:
        with self._changed:
            days = self._pending.setdefault(arn, {})
            if days.get(version_id, 0.0) < day:
                days[version_id] = day
            self._changed.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every note taken so far is written; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending and not self._writing, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is pending, then stop the thread."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending or self._closing)
                if not self._pending:
                    return
                taken, self._pending = self._pending, {}
                self._writing = True
            for arn, days in taken.items():
                try:
                    record_access(self.storage, arn, days)
                except StorageError as exc:
                    # A lost date comes back with the next read; the value was never at risk.
                    log.warning("could not record an access: %s", exc, extra={"secret": arn})
                except Exception:
                    log.exception("could not record an access", extra={"secret": arn})
            with self._changed:
                self._writing = False
                self._changed.notify_all()
