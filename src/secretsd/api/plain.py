"""Plain HTTP answers for the routes beside the AWS API (health, metrics)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable
from typing import Any


async def in_thread(function: Callable[[], Any], name: str) -> Any:
    """``function()`` on a new daemon thread: a call stuck in a store never holds up the
    loop, an executor's shutdown, or the process's exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        error: BaseException | None = None
        result = None
        try:
            result = function()
        except BaseException as exc:
            error = exc
        # The loop may have closed meanwhile (the server stopping): nobody waits any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await future


async def respond(
    send: Callable, status: int, body: bytes, content_type: bytes, extra: tuple = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def refuse_method(scope: dict, send: Callable) -> bool:
    """Answer 405 unless the request is a GET or HEAD; True when it was refused."""
    if scope["method"] in ("GET", "HEAD"):
        return False
    body = json.dumps({"message": f"{scope['method']} is not allowed here: use GET."}).encode()
    await respond(send, 405, body, b"application/json", ((b"allow", b"GET, HEAD"),))
    return True
