"""Writes that share a group commit are acknowledged only once they are durable: kill -9 in
the middle of concurrent writers loses none of the acknowledged ones."""

from __future__ import annotations

import secrets
import threading
import time
import uuid

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from tests.support.server import start_server

WRITERS = 8


@pytest.mark.slow
def test_concurrent_acknowledged_puts_survive_kill_9(server):
    names = [f"group/{uuid.uuid4().hex[:10]}" for _ in range(WRITERS)]
    setup = server.client()
    for name in names:
        setup.create_secret(Name=name, SecretString="initial")
    acked: list[tuple[str, str, str]] = []
    lock = threading.Lock()

    def writer(name: str) -> None:
        client = server.client()
        while True:
            version, value = str(uuid.uuid4()), secrets.token_urlsafe(18)
            try:
                client.put_secret_value(
                    SecretId=name, SecretString=value, ClientRequestToken=version
                )
            except (BotoCoreError, ClientError):
                return
            with lock:
                acked.append((name, version, value))

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in names]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acked) < 300:
        assert time.monotonic() < deadline, f"only {len(acked)} writes in a minute"
        time.sleep(0.005)
    server.kill()
    for thread in threads:
        thread.join(30)
    restarted = start_server(server.data_dir)
    try:
        client = restarted.client()
        for name, version, value in acked:
            got = client.get_secret_value(SecretId=name, VersionId=version)
            assert got["SecretString"] == value
    finally:
        restarted.stop()
