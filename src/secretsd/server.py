"""``secretsd server``: the Secrets Manager API on an HTTP port."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from secretsd import __version__, logs
from secretsd.api import guard
from secretsd.api.app import ApiApp, Route
from secretsd.api.credentials import CredentialsError
from secretsd.api.health import HealthApp
from secretsd.api.metrics import (
    MetricsApp,
    MetricsConfigError,
    MetricsOff,
    RequestStats,
    ServerCollector,
    build_registry,
    load_token,
)
from secretsd.model.errors import SecretsManagerError
from secretsd.model.identity import root_caller
from secretsd.rotation.registry import ConfigError
from secretsd.server_options import build_parser, check_transport, is_loopback
from secretsd.service import AccessRecorder, RotationRequests, SecretsService
from secretsd.service.audit_trail import AuditTrail
from secretsd.service.counters import RotationCounters
from secretsd.service.identities import IdentityService
from secretsd.service.timed_storage import TimedStorage
from secretsd.service.writer import GroupWriter
from secretsd.store import (
    CREATE,
    StorageError,
    open_audit_log,
    open_storage,
)

__all__ = ["build_parser", "main", "serve"]

log = logging.getLogger("secretsd.server")

# PostgreSQL connections beyond the readers': the writer thread, the access recorder, the
# scheduler and a rotation, so that readers stuck on a lock never hold up a write.
BACKGROUND_CONNECTIONS = 4
CONSOLE_PREFIX = "/console"


def bind(host: str, port: int, backlog: int = 1024) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it, a response written in two parts (head,
    # body) waits for the client's delayed ACK, about 40 ms a request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        # The address is what the operator needs to find the other process.
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket, scheme: str = "http") -> str:
    host, port = sock.getsockname()[:2]
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def serve(args: argparse.Namespace, on_ready: Callable[[str, Path], None] | None = None) -> int:
    """Run until SIGTERM/SIGINT. ``on_ready(url, credentials_file)`` runs once listening.

    The one place that builds a server: the function registry, the store, the service with
    its collaborators, the scheduler and the HTTP shell, in the order each needs the others.
    """
    from secretsd.rotation.registry import FunctionRegistry

    # The configuration first, then the port: either failing leaves nothing on disk.
    registry = FunctionRegistry.from_config(args.rotation_config)
    if args.database_pool_size < 1:
        raise StorageError("--database-pool-size must be at least 1")
    limits = guard.limits_from(args)
    metrics_token = load_token(args.metrics_token_file) if args.metrics else None
    check_transport(args)
    if not is_loopback(args.host):
        log.warning(
            "listening on %s, beyond this machine: anyone who can reach it may try keys",
            args.host,
        )
    # The port next: a start that cannot listen creates no store and spends no access key.
    sock = bind(args.host, args.port, guard.listen_backlog())
    try:
        return _serve_on(args, sock, registry, limits, on_ready, metrics_token)
    finally:
        sock.close()


def _announce_keys(key, created: bool, url: str, credentials_file: Path, region: str) -> None:
    from secretsd.api import credentials as access_keys

    where = f"access keys: {credentials_file} (profile {key.profile})"
    if logs.json_format():
        # Log collectors keep what they read: the new secret key stays in its private file.
        logs.announce("secretsd.server", where, credentials_file=str(credentials_file))
    elif created:
        # Shown once, when the key is made; later starts name only the file.
        print(access_keys.client_setup(key, url, credentials_file, region))
    else:
        print(where)


def _serve_on(args, sock, registry, limits, on_ready, metrics_token) -> int:
    from secretsd.api import credentials as access_keys
    from secretsd.api.auth import Authenticator
    from secretsd.api.iam import QueryApi

    storage = open_storage(
        args.data_dir,
        args.database_url,
        schema=args.database_schema,
        mode=CREATE,
        master_key_command=args.master_key_command,
        master_key_kms=args.master_key_kms,
        pool_size=args.database_pool_size + BACKGROUND_CONNECTIONS,
    )
    timed = None
    if metrics_token is not None:
        storage = timed = TimedStorage(storage)
    accesses = None
    trail = None
    try:
        keyring, created = access_keys.load_or_create(args.data_dir)
        credentials_file = access_keys.credentials_path(args.data_dir)
        trail = AuditTrail(
            open_audit_log(
                args.data_dir,
                args.database_url,
                schema=args.database_schema,
                max_bytes=args.audit_max_bytes,
            ),
            region=args.region,
            account=args.account,
        )
        accesses = AccessRecorder(storage)
        service = SecretsService(
            storage,
            region=args.region,
            account=args.account,
            knows_function=registry.knows,
            rotation_requests=RotationRequests(),
            accesses=accesses,
        )
        identities = IdentityService(storage, account=args.account)
        authenticate = None
        if not args.no_auth:
            authenticate = Authenticator(
                keyring,
                identities,
                account=args.account,
                region=args.region,
                store_may_block=storage.reads_may_block,
            )

        writer = GroupWriter(service)
        console = (
            None if args.no_console else _console(args, service, writer, keyring, identities, trail)
        )
        url = url_of(sock, "https" if args.tls_cert is not None else "http")
        _announce_keys(keyring.primary, created, url, credentials_file, args.region)
        rotations = RotationCounters()
        scheduler = _start_rotation(
            args, service, registry, url, keyring.primary, rotations, trail, identities.sessions
        )
        routes: dict[str, Route] = {"/health": HealthApp(service.health, __version__)}
        observe = None
        if metrics_token is None:
            routes["/metrics"] = MetricsOff()
        else:
            # IAM's and STS's operations come through the same door and count by name too.
            requests = RequestStats(
                [*service.operations, *identities.operations, "GetCallerIdentity"]
            )
            observe = requests.observe
            collector = ServerCollector(
                service,
                requests,
                rotations,
                timed.timings if timed is not None else None,
                __version__,
                secret_names=args.metrics_secret_names,
                audit=trail,
            )
            routes["/metrics"] = MetricsApp(build_registry(collector), metrics_token)
            metrics_url = f"{url}/metrics"
            logs.announce(
                "secretsd.server",
                f"metrics: {metrics_url} (bearer token required)",
                url=metrics_url,
            )
        if console is not None:
            _announce_console(args, console, url, keyring.primary)
            routes[CONSOLE_PREFIX] = console
        logs.announce("secretsd.server", f"secretsd server listening on {url}", url=url)
        if on_ready is not None:
            on_ready(url, credentials_file)
        # The one choice of where reads run: on threads when the store says they may wait.
        read_threads = args.database_pool_size if storage.reads_may_block else 0
        app = ApiApp(
            service,
            authenticate,
            writer=writer,
            read_threads=read_threads,
            routes=routes,
            observe=observe,
            audit=trail,
            query_api=QueryApi(identities),
        )
        try:
            _run_uvicorn(app, sock, args.log_level, limits, tls=(args.tls_cert, args.tls_key))
        finally:
            scheduler.stop()
            app.close()
    finally:
        if accesses is not None:
            accesses.close()
        if trail is not None:
            trail.close()
        storage.close()
    log.info("server stopped")
    return 0


def _announce_console(args: argparse.Namespace, console, url: str, key) -> None:
    logs.announce("secretsd.server", f"web console: {url}{CONSOLE_PREFIX}/")
    if args.console_sign_in_link:
        # For whoever started the server, as the new access key is: it signs in once, soon.
        link = console.sign_in_link(url, root_caller(args.account, key.access_key_id))
        logs.announce(
            "secretsd.server", f"console sign-in link (one use, expires in 15 minutes): {link}"
        )


def _console(
    args: argparse.Namespace,
    service: SecretsService,
    writer: GroupWriter,
    keyring,
    identities: IdentityService,
    trail,
):
    """The web console, signing in with the keys the SigV4 verifier accepts: the root keys
    of the credentials file and IAM users' active keys."""
    from secretsd.api.console import ConsoleApp, ConsoleOperations, KeyCheck

    def lookup(access_key_id: str):
        secret = keyring.lookup(access_key_id)
        if secret is not None:
            return secret, root_caller(args.account, access_key_id)
        return identities.authenticate(access_key_id)

    check_key = KeyCheck(lookup)
    operations = ConsoleOperations(service, writer, trail)
    return ConsoleApp(operations, check_key, prefix=CONSOLE_PREFIX)


def function_environment(url: str, key, region: str) -> dict[str, str]:
    """What a rotation function needs to reach this server, as Lambda's environment gives it."""
    return {
        "SECRETS_MANAGER_ENDPOINT": url,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": url,
        "AWS_ACCESS_KEY_ID": key.access_key_id,
        "AWS_SECRET_ACCESS_KEY": key.secret_access_key,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


def _start_rotation(
    args: argparse.Namespace,
    service: SecretsService,
    registry,
    url: str,
    key,
    counters: RotationCounters,
    trail: AuditTrail | None,
    sessions,
):
    from secretsd.rotation.orchestrator import Rotator
    from secretsd.rotation.scheduler import Scheduler

    environment = function_environment(url, key, args.region)
    if registry.has_entry_points:
        # User code running in this process builds its boto3 client from os.environ, as on
        # Lambda; only then does the server's key go into the process environment. Built-in
        # functions and commands get it per invocation.
        log.info("in-process rotation functions are configured: exporting the endpoint and key")
        os.environ.update(environment)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
    scheduler = Scheduler(
        service,
        Rotator(
            service,
            registry,
            environment=environment,
            counters=counters,
            audit=trail,
            # Signed requests only: without --no-auth's checks, a session key means nothing.
            sessions=None if args.no_auth else sessions,
        ),
        interval=args.scheduler_interval,
        retry_base=args.rotation_retry_base,
    )
    scheduler.start()
    return scheduler


def _run_uvicorn(
    app: ApiApp,
    sock: socket.socket,
    log_level: str,
    limits: guard.Limits,
    tls: tuple[Path | None, Path | None] = (None, None),
) -> None:
    import uvicorn

    connections = guard.ConnectionGuard(limits)
    log.info(
        "at most %d connections; a request must arrive within %gs",
        connections.cap,
        limits.request_timeout,
    )
    config = uvicorn.Config(
        app,
        http=connections.protocol_class(),
        lifespan="off",
        access_log=False,
        log_config=None,
        log_level=log_level,
        server_header=False,
        date_header=False,
        # uvicorn annotates int but only hands it to loop.call_later, which takes seconds as
        # a float: fractional timeouts work.
        timeout_keep_alive=limits.keep_alive_timeout,  # type: ignore[arg-type]
        ssl_certfile=tls[0],
        ssl_keyfile=tls[1],
    )
    server = uvicorn.Server(config)
    try:
        import uvloop
    except ImportError:  # not on every platform; asyncio's loop works, slower
        asyncio.run(server.serve(sockets=[sock]))
    else:
        uvloop.run(server.serve(sockets=[sock]))


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level, args.log_format == "json")
    try:
        return serve(args)
    except (
        StorageError,
        CredentialsError,
        ConfigError,
        MetricsConfigError,
        SecretsManagerError,
        OSError,
    ) as exc:
        print(f"secretsd server: {exc}", file=sys.stderr)
        return 1
