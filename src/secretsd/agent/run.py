"""Start-up and shutdown of the agent: checks in the AWS agent's order, then serve.

Order at start (each failure is one line on stderr and exit status 1): configuration,
logging, SSRF token, backend client and credential check, listening socket. Then the
``listening on`` line on stdout, prefetch in the background, and serving until SIGTERM or
SIGINT, which close the listener and every connection before returning 0.

As a Lambda extension, registration with the Extensions API comes first (a failure is
reported to Lambda, then exit 1), and once the agent listens a thread follows Lambda's
events; SHUTDOWN stops the agent as SIGTERM does.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import logging.handlers
import os
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import NoRegionError

from secretsd import __version__ as VERSION

from . import backend as backends
from . import busy_poll, messages
from .cache import Policy, SecretCache
from .config import AgentConfig
from .http import Front
from .lambda_extension import ExtensionsApiError, Lifecycle
from .metrics import Metrics
from .parameters import ParameterCache
from .token import read_token

log = logging.getLogger("secretsd.agent")

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "none": logging.CRITICAL + 10,
}


class StartupError(Exception):
    """A reason not to start; the message goes to stderr as is."""


def configure_logging(config: AgentConfig) -> None:
    from secretsd.logs import TextFormatter

    if config.log_to_file:
        path = Path(config.log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=10 * 1024 * 1024, backupCount=5, encoding="utf-8"
        )
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextFormatter())
    logger = logging.getLogger("secretsd.agent")
    logger.handlers[:] = [handler]
    logger.setLevel(LEVELS[config.log_level])
    logger.propagate = False
    # botocore logs request details at debug level; keep it at warnings.
    logging.getLogger("botocore").setLevel(logging.WARNING)


def bind(config: AgentConfig) -> socket.socket:
    host = config.http_address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, config.http_port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        address = f"[{host}]:{config.http_port}" if ":" in host else f"{host}:{config.http_port}"
        raise StartupError(messages.could_not_bind(address, exc.strerror or str(exc))) from None
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass
class Agent:
    """A configured agent, ready to serve: tests build one around a fake backend."""

    config: AgentConfig
    cache: SecretCache
    front: Front
    metrics: Metrics
    close_backend: Callable[[], None]


def build(config: AgentConfig, token: bytes, backend: Any, metrics: Metrics) -> Agent:
    cache = SecretCache(backend, Policy.from_config(config), time.monotonic)
    parameters = ParameterCache.from_config(backend, config, time.monotonic)
    front = Front(
        cache,
        token,
        config.ssrf_headers,
        config.path_prefix,
        config.max_conn,
        metrics.render if config.metrics else None,
        parameters,
    )
    metrics.watch(
        cache.counters,
        cache.__len__,
        lambda: front.open_connections,
        lambda: front.poller.polled_ns / 1e9 if front.poller is not None else 0.0,
    )
    metrics.watch_parameters(parameters.counters, parameters.__len__)
    return Agent(config, cache, front, metrics, getattr(backend, "close", lambda: None))


def _failure(config: AgentConfig, message: str) -> StartupError:
    # stderr gets the message from the command; the log file, when there is one, too.
    if config.log_to_file:
        log.error("%s", message)
    return StartupError(message)


def prepare(config: AgentConfig, env: Mapping[str, str]) -> tuple[Agent, socket.socket]:
    """Everything before the event loop; raises StartupError with the message to print."""
    configure_logging(config)
    for notice in config.notices:
        log.warning("%s", notice)
    try:
        token = read_token(config.ssrf_env_variables, env)
    except Exception as exc:
        raise _failure(config, str(exc)) from None
    if config.http_address not in ("127.0.0.1", "::1"):
        log.warning(
            "listening on %s, not loopback: any host that reaches it can try the token",
            config.http_address,
        )
    metrics = Metrics()
    try:
        session = backends.make_session(config)
        client = backends.make_client(session, config)
        if config.validate_credentials:
            backends.validate_credentials(session, client, config)
    except NoRegionError:
        raise _failure(config, messages.NO_REGION) from None
    except Exception as exc:
        raise _failure(config, messages.credentials_invalid(str(exc))) from None
    backend = backends.BotocoreBackend(
        client,
        config.backend_threads,
        config.backend_deadline_seconds,
        metrics.observe_backend,
        ssm=backends.ssm_client_factory(session, config),
        ssm_deadline=config.ssm_deadline_seconds,
    )
    try:
        sock = bind(config)
    except StartupError:
        backend.close()
        raise
    return build(config, token, backend, metrics), sock


async def serve(
    agent: Agent,
    sock: socket.socket,
    on_ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve on ``sock`` (and the Unix socket, if configured) until ``stop`` is set."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    poll_us, why = busy_poll.limit_us(agent.config.busy_poll_us, busy_poll.process_quota)
    log.info("busy polling up to %d us after a request (%s)", poll_us, why)
    if poll_us:
        agent.front.poller = busy_poll.BusyPoller(loop, poll_us * 1000)
    servers = [await loop.create_server(agent.front.protocol, sock=sock, backlog=1024)]
    unix_path = agent.config.unix_socket
    if unix_path:
        # A socket left by an earlier run is replaced; anything else at that path is not ours.
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(unix_path).st_mode):
                os.unlink(unix_path)
        try:
            servers.append(await loop.create_unix_server(agent.front.protocol, unix_path))
        except OSError as exc:
            servers[0].close()
            raise StartupError(messages.could_not_bind(unix_path, str(exc))) from None
        os.chmod(unix_path, 0o660)  # file permissions are the guard
    url = url_of(sock)
    print(messages.listening(VERSION, url), flush=True)
    log.info("%s", messages.listening(VERSION, url))
    if on_ready is not None:
        on_ready(url)
    # Everything built so far lives as long as the agent: keep it out of the collector's
    # sight, so collections triggered on the hot path stay short.
    gc.freeze()
    prefetch = loop.create_task(_prefetch(agent))
    try:
        await stop.wait()
    finally:
        prefetch.cancel()
        for server in servers:
            server.close()
        # A connection accepted just before the close is set up on the next loop turn.
        await asyncio.sleep(0)
        agent.front.close_all()
        for server in servers:
            await server.wait_closed()
        if unix_path and os.path.exists(unix_path):
            os.unlink(unix_path)
        agent.close_backend()
        log.info("agent stopped")


async def _prefetch(agent: Agent) -> None:
    async def one(name: str) -> None:
        try:
            await agent.cache.get((name, None, None))
        except Exception as exc:
            log.warning("prefetch of one secret failed: %s", exc)

    await asyncio.gather(*(one(name) for name in agent.config.prefetch))


def run(config: AgentConfig, env: Mapping[str, str], extension: Lifecycle | None = None) -> int:
    if extension is not None:
        try:
            extension.register()
        except ExtensionsApiError as exc:
            raise StartupError(messages.extension_registration_failed(str(exc))) from None
    try:
        agent, sock = prepare(config, env)
    except StartupError as exc:
        if extension is not None:
            extension.init_failed(str(exc))
        raise

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        def follow_lambda(_url: str) -> None:  # once listening: see lambda_extension
            if extension is not None:
                extension.start(stop.set)

        await serve(agent, sock, on_ready=follow_lambda, stop=stop)

    try:
        import uvloop
    except ImportError:  # not on every platform; asyncio's own loop works, slower
        asyncio.run(main())
    else:
        uvloop.run(main())
    return 1 if extension is not None and extension.failed else 0
