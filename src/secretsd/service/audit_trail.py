"""The audit trail: every call and rotation step on the chain before anyone hears the result.

Theory of operation. ``record`` shapes a call (``service/audit.py``) and returns once the
record is stored; the wire layer awaits it before it sends the response. When a record
cannot be stored, ``record`` raises ``AuditUnavailable`` (an InternalServiceError, HTTP 500)
and the response is that error instead: the caller is refused, as Vault refuses a request
its audit devices cannot log. From then on the trail is ``failing`` and the wire layer
refuses every call *before* running it, still trying to record each refusal; the first
refusal recorded ends the outage. So at most one change per outage is made without a
record of its outcome, and that one was answered with an error and logged.

Where the append runs follows the log. A local file takes microseconds and never waits on
another process: the record is appended on the calling thread (the event loop included).
A log that may wait (PostgreSQL: the network, another node's turn at the chain head) gets
a thread of its own, which takes every record queued meanwhile and stores the group in one
transaction; each caller waits for its group.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from secretsd.model import errors
from secretsd.model.audit_chain import canonical
from secretsd.store.audit import AuditLog, AuditWriteError

from .audit import ApiCall, CallRenderer, EventIds, shape_service_event

log = logging.getLogger("secretsd.audit")

MAX_GROUP = 512
AUDIT_FAILED = "The request was refused because the audit log could not be written."


class AuditUnavailable(errors.InternalServiceError):
    def __init__(self) -> None:
        super().__init__(AUDIT_FAILED)


class AuditTrail:
    def __init__(
        self,
        audit_log: AuditLog,
        *,
        region: str,
        account: str,
        clock: Callable[[], float] = time.time,
        max_group: int = MAX_GROUP,
    ) -> None:
        self.log = audit_log
        self.region = region
        self.account = account
        self.clock = clock
        self.failing = False
        self._ids = EventIds()
        self._renderer = CallRenderer(region=region, account=account)
        self._max_group = max_group
        self._queue: queue.SimpleQueue[tuple[str, Future[None]] | None] | None = None
        self._thread: threading.Thread | None = None
        if audit_log.appends_may_block:
            self._queue = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._run, name="secretsd-audit", daemon=True)
            self._thread.start()

    # Shaping.

    def call_record(self, call: ApiCall) -> str:
        """The canonical JSON of the record of ``call``."""
        return self._renderer.render(call, at=self.clock(), event_id=self._ids.next())

    def service_event(self, name: str, arn: str, **details: Any) -> dict[str, Any]:
        return shape_service_event(
            name,
            arn,
            details,
            region=self.region,
            account=self.account,
            at=self.clock(),
            event_id=self._ids.next(),
        )

    # Storing.

    async def record(self, call: ApiCall) -> None:
        """Store the record of ``call``; AuditUnavailable when it can't be."""
        record = self.call_record(call)
        if self._queue is None:
            self._append_now(record)
            return
        await asyncio.wrap_future(self._enqueue(record))

    def record_blocking(self, record: Mapping[str, Any]) -> None:
        """Store ``record`` from a thread that may wait (the rotation orchestrator)."""
        body = canonical(record)
        if self._queue is None:
            self._append_now(body)
        else:
            self._enqueue(body).result()

    def _append_now(self, record: str) -> None:
        try:
            self.log.append((record,))
        except AuditWriteError as exc:
            self._failed(exc, 1)
            raise AuditUnavailable() from None
        self.failing = False

    def _enqueue(self, record: str) -> Future[None]:
        assert self._queue is not None
        future: Future[None] = Future()
        self._queue.put((record, future))
        return future

    def _failed(self, exc: Exception, count: int) -> None:
        if not self.failing:
            log.error("audit log write failed: %s; refusing requests until it works", exc)
        self.failing = True
        log.error("%d audit record(s) not written: their requests were refused", count)

    def _run(self) -> None:
        assert self._queue is not None
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < self._max_group:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                group.append(item)
            try:
                self.log.append([record for record, _ in group])
            except Exception as exc:
                self._failed(exc, len(group))
                for _, future in group:
                    future.set_exception(AuditUnavailable())
            else:
                self.failing = False
                for _, future in group:
                    future.set_result(None)
            if stop:
                return

    def close(self) -> None:
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
        self.log.close()
