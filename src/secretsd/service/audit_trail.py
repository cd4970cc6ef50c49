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
A log that may wait (PostgreSQL: the network, another node's turn at the chain head) is
appended to from the event loop without blocking it (``append_async``), one group at a
time: the records of calls finishing while a group is on its way wait together and go in
the next group, one statement for all of them. Handing records to a thread instead would
cost each group a wait for the interpreter lock after every round trip, milliseconds under
load (measured: a third of the throughput). Threads that are not the loop (the rotation
orchestrator) append on their own thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from secretsd.model import errors
from secretsd.model.audit_chain import canonical
from secretsd.store.audit import AuditLog, AuditWriteError

from .audit import ApiCall, CallRenderer, shape_service_event
from .ids import UniqueIds

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
        # Records that could not be written (each refused its request), for the metrics.
        # One thread writes it: the caller's for a local file, the trail's own otherwise.
        self.failed_records = 0
        self._ids = UniqueIds()
        self._renderer = CallRenderer(region=region, account=account)
        self._max_group = max_group
        # Records waiting for the group on its way to a log that may block, and whether a
        # group is on its way (only ever touched on the event loop).
        self._waiting: list[tuple[str, asyncio.Future[None]]] = []
        self._sending = False
        self._sender: asyncio.Future[None] | None = None

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
        if not self.log.appends_may_block:
            self._append_now(record)
            return
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((record, future))
        if not self._sending:
            self._sending = True
            self._sender = asyncio.ensure_future(self._send_groups())
        await future

    async def _send_groups(self) -> None:
        try:
            while self._waiting:
                group = self._waiting[: self._max_group]
                del self._waiting[: self._max_group]
                try:
                    await self.log.append_async([record for record, _ in group])
                except Exception as exc:
                    self._failed(exc, len(group))
                    for _, future in group:
                        if not future.done():
                            future.set_exception(AuditUnavailable())
                else:
                    self.failing = False
                    for _, future in group:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._sending = False

    def record_blocking(self, record: Mapping[str, Any]) -> None:
        """Store ``record`` from a thread that may wait (the rotation orchestrator)."""
        self._append_now(canonical(record))

    def _append_now(self, record: str) -> None:
        try:
            self.log.append((record,))
        except AuditWriteError as exc:
            self._failed(exc, 1)
            raise AuditUnavailable() from None
        self.failing = False

    def _failed(self, exc: Exception, count: int) -> None:
        self.failed_records += count
        if not self.failing:
            log.error("audit log write failed: %s; refusing requests until it works", exc)
        self.failing = True
        log.error("%d audit record(s) not written: their requests were refused", count)

    def close(self) -> None:
        self.log.close()
