"""The HTTP shell: AWS JSON 1.1 over ASGI, in front of ``SecretsService``.

Theory of operation. A request is ``POST /`` with ``X-Amz-Target:
secretsmanager.<Operation>`` and a JSON body. The shell reads the body, checks the SigV4
signature, decodes the JSON, runs the operation and encodes the answer. Every failure
becomes a ``SecretsManagerError`` and is rendered by ``error_response`` alone, so no path
can answer with a stack trace.

Nothing that can wait runs on the event loop, so a slow request delays only itself. Writes
wait for the disk and go to the writer thread. Reads go to ``read_threads`` threads when the
server says the store's reads may block (PostgreSQL: a lock held by another session, the
network); on a store whose reads take microseconds and never wait (SQLite in WAL mode) they
run on the loop itself: measured, a hop to a thread and back costs more CPU per request
and a worse p99 there, and buys nothing. Operations that do not touch the store run on the
loop either way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

from secretsd.api import query
from secretsd.api.auth import Authenticator, NeedsThread
from secretsd.api.iam import QueryApi, service_of
from secretsd.model import errors
from secretsd.model.identity import Caller, root_caller
from secretsd.model.request import RequestFacts
from secretsd.service import SecretsService
from secretsd.service.audit import ApiCall
from secretsd.service.audit_trail import AuditTrail, AuditUnavailable
from secretsd.service.authorization import NOWHERE, Origin, origin_of
from secretsd.service.ids import UniqueIds
from secretsd.service.writer import GroupWriter

log = logging.getLogger("secretsd.api")

TARGET_PREFIX = "secretsmanager."
CONTENT_TYPE = b"application/x-amz-json-1.1"
MAX_BODY = 1 << 20  # secret values are at most 64 KiB; a batch of 20 still fits easily

# Reads whose cost grows with the page they return, and the threads that serve them when
# point reads run on the loop.
BULK_READS = frozenset({"ListSecrets", "BatchGetSecretValue"})
BULK_THREADS = 2

READ_ONLY = frozenset(
    {
        "GetSecretValue",
        "BatchGetSecretValue",
        "DescribeSecret",
        "ListSecrets",
        "ListSecretVersionIds",
        "GetRandomPassword",
        "DescribeRotation",
        "GetResourcePolicy",
        "ValidateResourcePolicy",
    }
)
STORELESS = frozenset({"GetRandomPassword"})
# IAM and STS operations that change nothing, for the audit trail's readOnly.
QUERY_READS = ("Get", "List")

Headers = Sequence[tuple[bytes, bytes]]
# An ASGI application that serves the paths under a prefix (health, metrics, the console).
Route = Callable[[dict, Callable, Callable], Awaitable[None]]
# Told of every API request once answered: (operation, outcome, seconds); on the loop.
Observer = Callable[[str, str, float], None]


def _json_default(value: Any) -> Any:
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# Built once: json.dumps and json.loads with options build a new coder on every call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_json_default)


def encode(body: dict[str, Any]) -> bytes:
    return _ENCODER.encode(body).encode()


def error_response(error: errors.SecretsManagerError) -> tuple[int, bytes]:
    return error.status, encode({"__type": error.code, "Message": error.message})


class ApiApp:
    """The ASGI application."""

    def __init__(
        self,
        service: SecretsService,
        authenticate: Authenticator | None,
        writer: GroupWriter | None = None,
        read_threads: int = 0,
        routes: dict[str, Route] | None = None,
        query_api: QueryApi | None = None,
        observe: Observer | None = None,
        audit: AuditTrail | None = None,
    ) -> None:
        self.service = service
        self.observe = observe
        # Every call is recorded here before its response is sent (None: no audit trail).
        self.audit = audit
        # IAM and STS, over the Query protocol at the same endpoint.
        self.query_api = query_api
        # Who an unsigned request acts as, when the server accepts them (--no-auth).
        self.anonymous = root_caller(service.account, "")
        # AWS clients always send to "/"; any other path goes to the route owning its prefix.
        self.routes = dict(routes or {})
        self.authenticate = authenticate
        self.writer = writer or GroupWriter(service)
        self.request_ids = UniqueIds()
        self.readers = (
            ThreadPoolExecutor(read_threads, thread_name_prefix="secretsd-read")
            if read_threads
            else None
        )
        # A listing page decodes and renders up to a hundred secrets, milliseconds of work:
        # on the loop it would hold up every point read queued behind it. It gets threads
        # of its own even where point reads stay on the loop.
        self.bulk_readers = self.readers or ThreadPoolExecutor(
            BULK_THREADS, thread_name_prefix="secretsd-list"
        )

    def close(self) -> None:
        self.writer.close()
        if self.query_api is not None:
            self.query_api.close()
        self.bulk_readers.shutdown(wait=False, cancel_futures=True)
        if self.readers is not None:
            self.readers.shutdown(wait=False, cancel_futures=True)

    async def _read(
        self, operation: str, request: dict[str, Any], caller: Caller, origin: Origin
    ) -> dict[str, Any]:
        if operation in BULK_READS:
            pool = self.bulk_readers
        elif self.readers is None or operation in STORELESS:
            return self.service.call(operation, request, caller, origin)
        else:
            pool = self.readers
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            pool, self.service.call, operation, request, caller, origin
        )

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] != "/" and self.routes:
            route = self._route(scope["path"])
            if route is not None:
                await route(scope, receive, send)
                return
        request_id = self.request_ids.next()
        started = time.perf_counter()
        context = request_context(scope, request_id)
        operation = "-"
        # "iam" or "sts" once the request is known to speak the Query protocol.
        query_service: str | None = None
        caller: Caller | None = None
        request: dict[str, Any] | None = None
        result: dict[str, Any] | None = None
        payload = b""
        failure: errors.SecretsManagerError | None = None
        try:
            body = await self._read_body(receive)
            if self.query_api is not None and query.is_query(scope):
                query_service = "iam"
                if scope["method"] != "POST":
                    raise errors.InvalidAction("The Query API accepts only POST requests.")
                operation, request = query.decode_form(body)
                query_service = service_of(operation)
                caller, signed_for = await self._authenticate_for(scope, body, True)
                query_service = signed_for or query_service
                self._check_audit()
                result = await self.query_api.call(query_service, operation, request, caller)
                payload = self.query_api.render(query_service, operation, result, request_id)
            else:
                caller = await self._authenticate(scope, body, False)
                operation = self._operation(scope)
                request = self._decode(body, scope.get("query_string", b""))
                self._check_audit()
                # The root is allowed everything: where it called from matters to no policy.
                origin = NOWHERE if caller.is_root else origin_of(context)
                if operation in READ_ONLY:
                    result = await self._read(operation, request, caller, origin)
                else:
                    result = await self.writer.call(operation, request, caller, origin)
                payload = encode(result)
        except errors.SecretsManagerError as exc:
            failure = exc
        except Exception:
            log.exception("internal error in %s", operation)
            failure = errors.InternalServiceError("An internal error occurred.")
        if self.audit is not None:
            if query_service is not None:
                read_only = operation.startswith(QUERY_READS)
            else:
                read_only = operation in READ_ONLY
                operation = operation if operation != "-" else _target_of(scope)
            failure = await self._record(
                ApiCall(
                    query_service or "secretsmanager",
                    operation,
                    caller,
                    context,
                    read_only,
                    request,
                    result,
                    failure.code if failure is not None else None,
                    failure.message if failure is not None else None,
                ),
                failure,
            )
        content_type = CONTENT_TYPE if query_service is None else query.CONTENT_TYPE
        if failure is None:
            status, outcome = 200, "ok"
        elif query_service is not None and self.query_api is not None:
            status, payload = self.query_api.render_error(query_service, failure, request_id)
            outcome = failure.code
        else:
            status, payload = error_response(failure)
            outcome = failure.code
        access_key = caller.access_key_id if caller is not None and failure is None else None
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"x-amzn-requestid", request_id.encode()),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        # Changes are logged at info; reads, the bulk of the traffic, only at debug.
        level = logging.DEBUG if operation in READ_ONLY else logging.INFO
        if log.isEnabledFor(level) or status >= 500:
            log.log(
                logging.ERROR if status >= 500 else level,
                "request",
                extra={
                    "request_id": request_id,
                    "operation": operation,
                    "status": status,
                    "outcome": outcome,
                    "access_key_id": access_key,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                },
            )
        if self.observe is not None:
            self.observe(operation, outcome, time.perf_counter() - started)

    def _check_audit(self) -> None:
        if self.audit is not None and self.audit.failing:
            # Refused before it runs: nothing happens that the trail could not record.
            raise AuditUnavailable()

    async def _record(
        self, call: ApiCall, failure: errors.SecretsManagerError | None
    ) -> errors.SecretsManagerError | None:
        """Record ``call``; the failure to answer with (the call's own, or the audit's)."""
        assert self.audit is not None
        try:
            await self.audit.record(call)
        except AuditUnavailable as exc:
            log.error(
                "request refused: its audit record could not be written",
                extra={
                    "request_id": call.context.request_id,
                    "operation": call.operation,
                    "principal": call.caller.arn if call.caller is not None else None,
                    "outcome": call.error_code or "ok",
                },
            )
            return exc
        return failure

    def _route(self, path: str) -> Route | None:
        for prefix, route in self.routes.items():
            if path == prefix or path.startswith(prefix + "/"):
                return route
        return None

    async def _lifespan(self, receive: Callable, send: Callable[[dict], Awaitable[None]]) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _read_body(receive: Callable) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise errors.SerializationError("The client closed the connection.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                raise errors.ValidationError("The request body is too large.")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    @staticmethod
    def _operation(scope: dict) -> str:
        if scope["method"] != "POST":
            raise errors.UnknownOperation("Secrets Manager accepts only POST requests.")
        target = None
        for name, value in scope["headers"]:
            if name == b"x-amz-target":
                target = value.decode("latin-1")
                break
        if target is None:
            raise errors.UnknownOperation("The request has no X-Amz-Target header.")
        if not target.startswith(TARGET_PREFIX):
            raise errors.UnknownOperation(f"The target {target} is not Secrets Manager.")
        return target[len(TARGET_PREFIX) :]

    async def _authenticate(self, scope: dict, body: bytes, query_protocol: bool) -> Caller:
        return (await self._authenticate_for(scope, body, query_protocol))[0]

    async def _authenticate_for(
        self, scope: dict, body: bytes, query_protocol: bool
    ) -> tuple[Caller, str | None]:
        """The caller, and the service its credential scope names (None when unsigned)."""
        if self.authenticate is None:
            return self.anonymous, None
        args = (
            scope["method"],
            scope.get("raw_path", scope["path"].encode()).decode("latin-1"),
            scope.get("query_string", b"").decode("latin-1"),
            scope["headers"],
            body,
        )
        try:
            return self.authenticate.authenticate(*args, query_protocol=query_protocol, inline=True)
        except NeedsThread:
            # Not a root key, and the store's reads may block: look it up on a thread.
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self.bulk_readers,
                lambda: self.authenticate.authenticate(  # type: ignore[union-attr]
                    *args, query_protocol=query_protocol
                ),
            )

    @staticmethod
    def _decode(body: bytes, query: bytes) -> dict[str, Any]:
        if not body.strip():
            # A presigned URL carries the request members in its query string (top-level
            # string members, as botocore's presigner writes them).
            return {
                name: value
                for name, value in parse_qsl(query.decode("latin-1"))
                if not name.startswith("X-Amz-")
            }
        return decode_json(body)


def request_context(scope: dict, request_id: str) -> RequestFacts:
    """The facts of the connection that authorization and the audit trail read."""
    user_agent = ""
    for name, value in scope["headers"]:
        if name == b"user-agent":
            user_agent = value.decode("latin-1")
            break
    client = scope.get("client")
    return RequestFacts(
        request_id=request_id,
        source_ip=client[0] if client else "",
        user_agent=user_agent,
        # uvicorn says "https" when the connection is TLS; aws:SecureTransport reads this.
        secure_transport=scope.get("scheme") == "https",
    )


def _target_of(scope: dict) -> str:
    """The operation a refused request named, for its audit record ("-" when none)."""
    for name, value in scope["headers"]:
        if name == b"x-amz-target":
            target = value.decode("latin-1")
            return target.removeprefix(TARGET_PREFIX)[:128]
    return "-"


def _reject_constant(name: str) -> Any:
    raise errors.SerializationError(f"The request body is not valid JSON: {name} is not a number.")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


# Surrogates reach a decoded string only through \u escapes (the body must be UTF-8), so the
# walk that looks for unpaired ones runs only when the body has such an escape.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def decode_json(body: bytes) -> dict[str, Any]:
    """The request members, or the SerializationException AWS answers for a body it can't read.

    Python's decoder accepts what the JSON grammar does not (NaN and Infinity literals), and
    an unpaired surrogate escape decodes to a string that can't be encoded again, which would
    fail deep inside an operation; both are refused here, as is nesting too deep to decode.
    """
    try:
        # Strictly, unlike json.loads (surrogatepass): encoded surrogates are not UTF-8.
        decoded = _DECODER.decode(body.decode(json.detect_encoding(body)))
    except (ValueError, UnicodeDecodeError):
        raise errors.SerializationError("The request body is not valid JSON.") from None
    except RecursionError:
        raise errors.SerializationError("The request body is nested too deeply.") from None
    if not isinstance(decoded, dict):
        raise errors.SerializationError("The request body must be a JSON object.")
    if _SURROGATE_ESCAPE.search(body) and _has_unpaired_surrogate(decoded):
        raise errors.SerializationError(
            "The request body is not valid JSON: a string holds an unpaired surrogate."
        )
    return decoded


def _has_unpaired_surrogate(decoded: Any) -> bool:
    # Iterative: the document may be nested almost as deeply as the decoder allows.
    pending = [decoded]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False
