"""``GET /health``: unsigned liveness for load balancers, systemd and ``secretsd status``.

200 ``{"status": "ok", "version": ...}`` while the store answers a read and the master key
can seal; 503 ``{"status": "unavailable", "version": ..., "reason": ...}`` otherwise, the
reason in general words (anyone who can reach the port may ask; the details are logged).

The check runs on a thread of its own, at most one at a time: probes that arrive while one
is running share its answer, so a store that hangs ties up one thread however often the
health is asked. A check slower than ``timeout`` answers 503 at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from .plain import in_thread, refuse_method, respond

log = logging.getLogger("secretsd.api")

SLOW = "the store did not answer within {timeout:g} s"
FAILED = "the health check failed"


class HealthApp:
    def __init__(self, check: Callable[[], str | None], version: str, timeout: float = 2.0):
        # ``check`` returns None when healthy, else the reason.
        self._check = check
        self._version = version
        self._timeout = timeout
        self._running: asyncio.Future[str | None] | None = None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if await refuse_method(scope, send):
            return
        problem = await self._probe()
        body: dict[str, str] = {"status": "ok" if problem is None else "unavailable"}
        body["version"] = self._version
        if problem is not None:
            body["reason"] = problem
        # uvicorn leaves the body out of a HEAD answer, keeping its length.
        payload = json.dumps(body).encode()
        await respond(send, 200 if problem is None else 503, payload, b"application/json")

    async def _probe(self) -> str | None:
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(in_thread(self._check, "secretsd-health"))
        try:
            return await asyncio.wait_for(asyncio.shield(self._running), self._timeout)
        except TimeoutError:
            return SLOW.format(timeout=self._timeout)
        except Exception:
            log.exception("health check failed")
            return FAILED
