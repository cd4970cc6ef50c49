"""Writes in groups: one thread, one durable commit for every write queued meanwhile.

A durable commit costs an fsync, milliseconds on most disks, while the work of a write is
tens of microseconds. The writer thread takes every write waiting in its queue, runs them one
after the other inside one group commit of the store, and answers them all once that commit
is on disk. Under load many writes share one fsync; alone, a write pays exactly what it
would without the queue. Each write stays atomic on its own: one that fails is rolled back
without touching the others of its group.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import Any

from secretsd.model import errors
from secretsd.model.identity import Caller

from .authorization import NOWHERE, Origin
from .secrets import SecretsService

log = logging.getLogger("secretsd.service")

MAX_GROUP = 128


class GroupWriter:
    def __init__(self, service: SecretsService, max_group: int = MAX_GROUP) -> None:
        self.service = service
        self.max_group = max_group
        self._queue: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="secretsd-writer", daemon=True)
        self._thread.start()

    async def call(
        self,
        operation: str,
        request: dict[str, Any],
        caller: Caller | None = None,
        origin: Origin = NOWHERE,
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((operation, request, (caller, origin), loop, future))
        return await future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _take_group(self) -> list[tuple] | None:
        first = self._queue.get()
        if first is None:
            return None
        group = [first]
        while len(group) < self.max_group:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # stop after this group
                break
            group.append(item)
        return group

    def _run(self) -> None:
        while (group := self._take_group()) is not None:
            outcomes: list[tuple[bool, Any]] = []
            try:
                with self.service.group_commit():
                    for operation, request, (caller, origin), _, _ in group:
                        outcomes.append(self._one(operation, request, caller, origin))
            except Exception:
                log.exception("group commit failed")
                lost = errors.InternalServiceError("The change could not be stored; try again.")
                outcomes = [(False, lost)] * len(group)
            for (_, _, _, loop, future), (ok, value) in zip(group, outcomes, strict=True):
                loop.call_soon_threadsafe(_settle, future, ok, value)

    def _one(
        self, operation: str, request: dict[str, Any], caller: Caller | None, origin: Origin
    ) -> tuple[bool, Any]:
        try:
            return True, self.service.call(operation, request, caller, origin)
        except errors.SecretsManagerError as exc:
            return False, exc
        except Exception:
            log.exception("internal error in %s", operation)
            return False, errors.InternalServiceError("An internal error occurred.")


def _settle(future: asyncio.Future, ok: bool, value: Any) -> None:
    if future.done():  # the client went away
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
