"""Slow clients against a server held to systemd's default open-file limit (1,024).

Opens ``--clients`` connections that each start a request and never finish it (a byte every
two seconds keeps them going), then sends ``--requests`` ordinary boto3 requests, each on a
new connection, and reports how many were answered and how fast; then how long the server
took to drop the slow clients.

    .venv/bin/python bench/slowloris.py [--clients 1000] [--requests 5] [--request-timeout 20]

``--source DIR`` runs the server from another checkout's ``src`` (to measure a baseline);
``--request-timeout`` is passed to the server only when given.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.server import start_server
from tests.support.slow_clients import SlowClients


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--request-timeout", type=float, default=None)
    parser.add_argument("--open-files", type=int, default=1024)
    parser.add_argument("--source", type=Path, default=None)
    parser.add_argument("--drop-wait", type=float, default=40.0)
    args = parser.parse_args()

    env = dict(os.environ)
    if args.source is not None:
        env["PYTHONPATH"] = str(args.source.resolve() / "src")
    extra = []
    if args.request_timeout is not None:
        extra = ["--request-timeout", str(args.request_timeout)]
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data", *extra, env=env, open_files=args.open_files)
        url = urlsplit(server.endpoint_url)
        slow = SlowClients(url.hostname, url.port)
        stop = threading.Event()
        try:
            started = time.monotonic()
            opened = slow.open(args.clients)
            print(f"slow clients: {opened} connected, {slow.failed} failed to connect")

            def trickle() -> None:
                while not stop.wait(2.0):
                    slow.trickle()

            threading.Thread(target=trickle, daemon=True).start()
            served, latencies = 0, []
            for _ in range(args.requests):
                client = server.client(connect_timeout=5, read_timeout=10)
                began = time.monotonic()
                try:
                    client.list_secrets(MaxResults=1)
                except Exception as exc:
                    print(f"  request failed after {time.monotonic() - began:.2f}s: {exc!r}")
                else:
                    served += 1
                    latencies.append(time.monotonic() - began)
            shown = ", ".join(f"{t * 1000:.0f}" for t in latencies) or "-"
            print(f"legitimate requests served: {served} of {args.requests} (ms: {shown})")
            deadline = time.monotonic() + args.drop_wait
            while slow.still_open() and time.monotonic() < deadline:
                time.sleep(0.5)
            left = slow.still_open()
            print(
                f"slow clients still open {time.monotonic() - started:.1f}s after they "
                f"connected: {left} of {opened}"
            )
        finally:
            stop.set()
            slow.close()
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
