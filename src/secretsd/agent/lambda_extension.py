"""The Lambda Extensions API lifecycle: register, then follow events until SHUTDOWN.

Lambda starts every executable in ``/opt/extensions`` at init, with
``AWS_LAMBDA_RUNTIME_API`` set to the host:port of its local API. The agent is then an
external extension, and the API (AWS Lambda Developer Guide, "Lambda Extensions API") is:

- ``POST /2020-01-01/extension/register`` with ``Lambda-Extension-Name`` (the file name
  Lambda started) and ``{"events": [...]}``; the answer's ``Lambda-Extension-Identifier``
  header names the extension in every later call.
- ``GET /2020-01-01/extension/event/next`` blocks until the next event, a JSON object whose
  ``eventType`` is ``INVOKE`` or ``SHUTDOWN``.
- ``POST /2020-01-01/extension/init/error`` with ``Lambda-Extension-Function-Error-Type``
  (``Category.Reason``) reports that the extension could not start; Lambda fails the init.

Lambda sends the first INVOKE only after every extension has asked for its next event, and
the function may call the agent at once, so the first ``event/next`` waits until the agent
listens. The event loop is plain blocking ``http.client`` in a daemon thread: it is one long
poll at a time, the asyncio loop has nothing to do with it, and the process never waits
for it at exit. SHUTDOWN goes to the event loop as the same stop SIGTERM triggers.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("secretsd.agent.lambda")

BASE = "/2020-01-01/extension"
EVENTS = ("INVOKE", "SHUTDOWN")
NAME_HEADER = "Lambda-Extension-Name"
IDENTIFIER_HEADER = "Lambda-Extension-Identifier"
ERROR_TYPE_HEADER = "Lambda-Extension-Function-Error-Type"
NAME_VARIABLE = "SECRETSD_EXTENSION_NAME"
REGISTRATION_FAILED = "Extension.RegistrationFailed"
INIT_FAILED = "Extension.InitFailed"
# Registration and error reports are quick local calls; only event/next waits (unbounded).
CALL_TIMEOUT_SECONDS = 10.0


class ExtensionsApiError(Exception):
    """A failed call to the Extensions API; the message names the call and the reason."""


def extension_name(argv0: str, env: Mapping[str, str]) -> str:
    """The name Lambda knows us by: the executable's file name, unless a wrapper says."""
    return env.get(NAME_VARIABLE) or os.path.basename(argv0)


class ExtensionsApi:
    """The few calls an external extension makes, over stdlib HTTP."""

    def __init__(self, address: str) -> None:
        self.address = address  # host:port, as AWS_LAMBDA_RUNTIME_API gives it

    def _call(
        self,
        method: str,
        action: str,
        headers: dict[str, str],
        body: Any = None,
        timeout: float | None = CALL_TIMEOUT_SECONDS,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        connection = http.client.HTTPConnection(self.address, timeout=timeout)
        payload = None if body is None else json.dumps(body).encode()
        if payload is not None:
            headers = {**headers, "Content-Type": "application/json"}
        try:
            connection.request(method, f"{BASE}/{action}", body=payload, headers=headers)
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ExtensionsApiError(f"{action}: {str(exc) or type(exc).__name__}") from None
        finally:
            connection.close()

    def register(self, name: str) -> str:
        status, headers, body = self._call(
            "POST", "register", {NAME_HEADER: name}, {"events": list(EVENTS)}
        )
        identifier = headers.get(IDENTIFIER_HEADER)
        if status != 200 or not identifier:
            raise ExtensionsApiError(f"register: HTTP {status}{_error_type(body)}")
        return identifier

    def next_event(self, identifier: str) -> dict[str, Any]:
        status, _, body = self._call(
            "GET", "event/next", {IDENTIFIER_HEADER: identifier}, timeout=None
        )
        if status != 200:
            raise ExtensionsApiError(f"event/next: HTTP {status}{_error_type(body)}")
        try:
            event = json.loads(body)
        except ValueError:
            raise ExtensionsApiError("event/next: not JSON") from None
        if not isinstance(event, dict):
            raise ExtensionsApiError("event/next: not a JSON object")
        return event

    def init_error(self, identifier: str | None, error_type: str, message: str) -> None:
        """Best effort: the agent exits 1 whether or not Lambda heard about it."""
        headers = {ERROR_TYPE_HEADER: error_type}
        if identifier:
            headers[IDENTIFIER_HEADER] = identifier
        body = {"errorMessage": message, "errorType": error_type, "stackTrace": []}
        try:
            status, _, _ = self._call("POST", "init/error", headers, body)
        except ExtensionsApiError as exc:
            log.error("could not report the init error: %s", exc)
            return
        if status >= 300:
            log.error("could not report the init error: HTTP %s", status)


def _error_type(body: bytes) -> str:
    # Lambda's error bodies are {"errorMessage": ..., "errorType": ...}; the type is enough.
    try:
        kind = json.loads(body).get("errorType")
    except (ValueError, AttributeError):
        return ""
    return f" ({kind})" if isinstance(kind, str) and kind else ""


class Lifecycle:
    """Registration at start, the event thread while serving, and how it ended."""

    def __init__(self, api: ExtensionsApi, name: str) -> None:
        self.api = api
        self.name = name
        self.identifier: str | None = None
        self.failed = False  # the event loop broke off: the agent exits 1

    @classmethod
    def from_environment(cls, env: Mapping[str, str], argv0: str) -> Lifecycle:
        return cls(ExtensionsApi(env["AWS_LAMBDA_RUNTIME_API"]), extension_name(argv0, env))

    def register(self) -> None:
        """Register, or report the failure to Lambda and raise ``ExtensionsApiError``."""
        try:
            self.identifier = self.api.register(self.name)
        except ExtensionsApiError as exc:
            self.api.init_error(None, REGISTRATION_FAILED, str(exc))
            raise
        log.info("registered with the Lambda Extensions API as %s", self.name)

    def init_failed(self, message: str) -> None:
        self.api.init_error(self.identifier, INIT_FAILED, message)

    def start(self, stop: Callable[[], None]) -> threading.Thread:
        """Follow events in a thread; ``stop`` runs on the calling (event) loop at the end.

        Call it from the running event loop, once the agent listens.
        """
        loop = asyncio.get_running_loop()
        thread = threading.Thread(
            target=self._follow, args=(loop, stop), name="lambda-extension", daemon=True
        )
        thread.start()
        return thread

    def _follow(self, loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> None:
        assert self.identifier is not None, "register first"
        while True:
            try:
                event = self.api.next_event(self.identifier)
            except ExtensionsApiError as exc:
                # Without events the extension cannot take part in the lifecycle any more.
                log.error("Lambda Extensions API failed, stopping: %s", exc)
                self.failed = True
                break
            if event.get("eventType") == "SHUTDOWN":
                log.info("Lambda shutdown (%s), stopping", event.get("shutdownReason"))
                break
            # INVOKE: nothing to do; the function calls the agent itself.
        # RuntimeError: the loop already ended (a signal stopped the agent first).
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(stop)
